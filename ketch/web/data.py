"""The download figures of a package page (weekly count, sparkline, per-version), cached briefly.

Lists of packages come from ketch.search.listings; access is never decided here.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from ketch.stats import periods, services as stats

SPARK_WEEKS = 52
STATS_TTL = 60.0  # seconds a package's download figures are reused on the page
_MAX_STATS = 10_000


# -- download figures ------------------------------------------------------------------------------

class DownloadFigures:
    __slots__ = ("weekly", "weeks", "dependents")

    def __init__(self, weekly: int, weeks: list[int], dependents: int):
        self.weekly = weekly
        self.weeks = weeks
        self.dependents = dependents

    def sparkline(self, width: int = 100, height: int = 30) -> tuple[str, str] | None:
        """(polyline points, polygon points) in a ``0 0 width height`` box, or None with no data."""
        if not any(self.weeks):
            return None
        top = max(self.weeks)
        step = width / max(1, len(self.weeks) - 1)
        pts = [(round(i * step, 2), round(height - 1 - (n / top) * (height - 2), 2)) for i, n in enumerate(self.weeks)]
        line = " ".join(f"{x},{y}" for x, y in pts)
        return line, f"0,{height} {line} {width},{height}"


async def download_figures(caches: dict, session_factory, name: str) -> DownloadFigures:
    """Weekly downloads (the last 7 complete UTC days, as npm's ``last-week``), a year of weekly
    sums ending with today's partial day (so a new package's first downloads show at once), and the
    public dependents count of ``name``, reused for :data:`STATS_TTL` seconds (counts change once a
    flush lands; a minute late is fine)."""
    store: dict = caches.setdefault("web-downloads", {})
    now = time.monotonic()
    hit = store.get(name)
    if hit is not None and hit[0] > now:
        return hit[1]
    today = periods.today()
    period = periods.Period(today - timedelta(days=SPARK_WEEKS * 7 - 1), today)
    async with session_factory() as session:
        days = (await stats.package_days(session, [name], period))[name]
        dependents = (await stats.dependent_counts(session, [name]))[name]
    weeks = []
    for w in range(SPARK_WEEKS):
        start = period.start + timedelta(days=7 * w)
        weeks.append(sum(days.get(start + timedelta(days=d), 0) for d in range(7)))
    last_week = periods.last_days(7, today)
    weekly = sum(n for day, n in days.items() if last_week.start <= day <= last_week.end)
    figures = DownloadFigures(weekly, weeks, dependents)
    if len(store) >= _MAX_STATS:
        store.clear()
    store[name] = (now + STATS_TTL, figures)
    return figures


async def version_downloads(session: AsyncSession, name: str) -> dict[str, int]:
    return await stats.version_totals(session, name, periods.last_days(7, periods.today()))
