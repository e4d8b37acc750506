"""Download counts and dependents: the writes of the counter's flush and the reads of the API.

Functions take an open session and never commit. Every count lands in three tables in one
transaction (raw per version, per package, registry-wide), so the roll-ups are always exact.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import false, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.registry.models import Version
from ketch.stats import periods
from ketch.stats.models import Dependent, PackageDownloads, TotalDownloads, VersionDownloads
from ketch.stats.periods import Period

LOCK = "stats:downloads"  # flushes and roll-up rebuilds take turns (PostgreSQL; SQLite serialises writers)
_CHUNK = 500  # names per IN (...) list


def _chunks(names: list[str]):
    unique = list(dict.fromkeys(names))
    for i in range(0, len(unique), _CHUNK):
        yield unique[i:i + _CHUNK]


# -- writes ------------------------------------------------------------------------------------

def roll_up(counts: dict[tuple[str, str, date], int]) -> tuple[dict, dict]:
    """Per (package, day) and per day sums of counts keyed (package, version, day)."""
    packages: dict[tuple[str, date], int] = defaultdict(int)
    days: dict[date, int] = defaultdict(int)
    for (package, _version, day), n in counts.items():
        packages[package, day] += n
        days[day] += n
    return dict(packages), dict(days)


def _upsert(db, table, keys: list[str]):
    insert = sqlite_insert if db.is_sqlite else pg_insert
    stmt = insert(table)
    return stmt.on_conflict_do_update(index_elements=keys, set_={"count": table.count + stmt.excluded.count})


async def add_downloads(db, session: AsyncSession, counts: dict[tuple[str, str, date], int]) -> None:
    """Add ``counts`` (keyed (package, version, day)) to the raw table and both roll-ups.

    Rows are written in key order and behind one lock, so concurrent flushes of other processes
    and nodes neither deadlock nor interleave with a roll-up rebuild."""
    if not counts:
        return
    await db.lock(session, LOCK)
    packages, days = roll_up(counts)
    await session.execute(
        _upsert(db, VersionDownloads, ["package", "version", "day"]),
        [{"package": p, "version": v, "day": d, "count": n} for (p, v, d), n in sorted(counts.items())])
    await session.execute(
        _upsert(db, PackageDownloads, ["package", "day"]),
        [{"package": p, "day": d, "count": n} for (p, d), n in sorted(packages.items())])
    await session.execute(
        _upsert(db, TotalDownloads, ["day"]),
        [{"day": d, "count": n} for d, n in sorted(days.items())])


# -- reads -------------------------------------------------------------------------------------

async def package_days(session: AsyncSession, names: list[str], period: Period) -> dict[str, dict[date, int]]:
    """{name: {day: downloads}} for the days of ``period`` that have any."""
    found: dict[str, dict[date, int]] = {name: {} for name in names}
    for chunk in _chunks(names):
        rows = await session.execute(
            select(PackageDownloads.package, PackageDownloads.day, PackageDownloads.count)
            .where(PackageDownloads.package.in_(chunk), PackageDownloads.day.between(period.start, period.end)))
        for name, day, n in rows.all():
            found[name][day] = n
    return found


async def package_totals(session: AsyncSession, names: list[str], period: Period) -> dict[str, int]:
    totals = {name: 0 for name in names}
    for chunk in _chunks(names):
        rows = await session.execute(
            select(PackageDownloads.package, func.sum(PackageDownloads.count))
            .where(PackageDownloads.package.in_(chunk), PackageDownloads.day.between(period.start, period.end))
            .group_by(PackageDownloads.package))
        for name, n in rows.all():
            totals[name] = int(n or 0)
    return totals


async def registry_days(session: AsyncSession, period: Period) -> dict[date, int]:
    rows = await session.execute(
        select(TotalDownloads.day, TotalDownloads.count).where(TotalDownloads.day.between(period.start, period.end)))
    return dict(rows.all())


async def version_totals(session: AsyncSession, name: str, period: Period) -> dict[str, int]:
    rows = await session.execute(
        select(VersionDownloads.version, func.sum(VersionDownloads.count))
        .where(VersionDownloads.package == name, VersionDownloads.day.between(period.start, period.end))
        .group_by(VersionDownloads.version))
    return {version: int(n or 0) for version, n in rows.all()}


async def weekly_downloads(session: AsyncSession, names: list[str]) -> dict[str, int]:
    """Downloads of each name over the last 7 complete UTC days (0 when none); no access check."""
    return await package_totals(session, names, periods.last_days(7, periods.today()))


async def dependent_counts(session: AsyncSession, names: list[str]) -> dict[str, int]:
    """How many public packages' latest versions depend on each name (any kind; 0 when none)."""
    counts = {name: 0 for name in names}
    for chunk in _chunks(names):
        rows = await session.execute(
            select(Dependent.dependency, func.count(func.distinct(Dependent.dependent_id)))
            .where(Dependent.dependency.in_(chunk), Dependent.private == false())
            .group_by(Dependent.dependency))
        for name, n in rows.all():
            counts[name] = int(n)
    return counts


async def version_numbers(session: AsyncSession, package_id: int) -> list[str]:
    """The live version numbers of a package (for per-version answers that list zeros too)."""
    rows = await session.execute(
        select(Version.version).where(Version.package_id == package_id, Version.unpublished.is_(None)))
    return list(rows.scalars())
