"""Periods of npm's downloads API, as pure functions of the text and today's UTC date.

``last-day`` is the last *complete* UTC day (yesterday), as on npm, whose counts only land after
midnight; ``last-week``, ``last-month`` and ``last-year`` are the 7, 30 and 365 complete days
ending yesterday. ``YYYY-MM-DD`` and inclusive ``YYYY-MM-DD:YYYY-MM-DD`` may include today (a
partial day).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

LAST = {"last-day": 1, "last-week": 7, "last-month": 30, "last-year": 365}
MAX_DAYS = 548  # "18 months": 365 + 183 days, inclusive
MAX_BULK_DAYS = 365
MAX_BULK_PACKAGES = 128
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
EPOCH = date(1970, 1, 1)


class InvalidPeriod(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


def today() -> date:
    return datetime.now(timezone.utc).date()


def day_number(when: date) -> int:
    """Days since 1970-01-01, the unit the download counter buckets by."""
    return (when - EPOCH).days


def from_day_number(number: int) -> date:
    return EPOCH + timedelta(days=number)


def last_days(count: int, now: date) -> Period:
    """The ``count`` complete days ending yesterday."""
    end = now - timedelta(days=1)
    return Period(end - timedelta(days=count - 1), end)


def _day(text: str) -> date:
    if not _DAY.fullmatch(text):
        raise InvalidPeriod("Invalid period specified")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidPeriod("Invalid period specified") from None


def parse(text: str, now: date, *, bulk: bool = False) -> Period:
    """The period ``text`` names, checked against the limits (365 days in bulk, else 18 months)."""
    if text in LAST:
        period = last_days(LAST[text], now)
    elif ":" in text:
        first, _, last = text.partition(":")
        period = Period(_day(first), _day(last))
        if period.start > period.end:
            raise InvalidPeriod("Invalid period specified: the start date is after the end date")
    else:
        day = _day(text)
        period = Period(day, day)
    if period.days > (MAX_BULK_DAYS if bulk else MAX_DAYS):
        raise InvalidPeriod("Date range requested is too large")
    return period
