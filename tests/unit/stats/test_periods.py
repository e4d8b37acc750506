from datetime import date

import pytest

from ketch.stats import periods
from ketch.stats.periods import InvalidPeriod, Period

TODAY = date(2024, 3, 1)  # the day after a leap day


class TestParse:
    @pytest.mark.parametrize("text, start, end", [
        ("last-day", date(2024, 2, 29), date(2024, 2, 29)),
        ("last-week", date(2024, 2, 23), date(2024, 2, 29)),
        ("last-month", date(2024, 1, 31), date(2024, 2, 29)),
        ("last-year", date(2023, 3, 2), date(2024, 2, 29)),
        ("2024-03-01", date(2024, 3, 1), date(2024, 3, 1)),  # today, a partial day, may be asked for
        ("2023-01-01:2023-01-31", date(2023, 1, 1), date(2023, 1, 31)),
        ("2023-01-05:2023-01-05", date(2023, 1, 5), date(2023, 1, 5)),
    ])
    def test_periods(self, text, start, end):
        assert periods.parse(text, TODAY) == Period(start, end)

    @pytest.mark.parametrize("text", [
        "", "yesterday", "last-days", "all-time", "2023-1-01", "2023-02-30", "20230101", "2023-01-01:",
        ":2023-01-01", "2023-01-01:2023-01-02:2023-01-03", "2023-01-31:2023-01-01", "２０２３-01-01",
        "2023-01-01 ", "-2023-01-01",
    ])
    def test_invalid(self, text):
        with pytest.raises(InvalidPeriod):
            periods.parse(text, TODAY)

    def test_the_named_periods_have_npm_lengths(self):
        assert [periods.parse(p, TODAY).days for p in ("last-day", "last-week", "last-month", "last-year")] == [
            1, 7, 30, 365]

    def test_eighteen_months_at_most(self):
        assert periods.parse("2022-01-01:2023-07-02", TODAY).days == 548
        with pytest.raises(InvalidPeriod, match="too large"):
            periods.parse("2022-01-01:2023-07-03", TODAY)

    def test_bulk_is_limited_to_365_days(self):
        assert periods.parse("last-year", TODAY, bulk=True).days == 365
        assert periods.parse("2023-01-01:2023-12-31", TODAY, bulk=True).days == 365
        with pytest.raises(InvalidPeriod, match="too large"):
            periods.parse("2024-01-01:2024-12-31", TODAY, bulk=True)  # a leap year has 366 days
        assert periods.parse("2024-01-01:2024-12-31", TODAY).days == 366


class TestPeriod:
    def test_each_day_is_inclusive_and_ascending(self):
        days = Period(date(2023, 12, 30), date(2024, 1, 2)).each_day()
        assert days == [date(2023, 12, 30), date(2023, 12, 31), date(2024, 1, 1), date(2024, 1, 2)]

    def test_day_numbers_round_trip(self):
        for day in (date(1970, 1, 1), date(2000, 2, 29), date(2038, 1, 20)):
            assert periods.from_day_number(periods.day_number(day)) == day
        assert periods.day_number(date(1970, 1, 2)) == 1
