"""Rebuild the stats domain's derived tables from the data they derive from (``ketch reindex``).

The dependents table is recomputed from every package's latest version manifest, and both
download roll-ups from the raw per-version counts. Safe while the registry serves: each package
is rewritten under its own write lock, the roll-ups under the lock the counter's flushes take.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from sqlalchemy import delete, func, insert, select

from ketch.db import Database
from ketch.registry.models import Package
from ketch.stats import dependents
from ketch.stats.models import PackageDownloads, TotalDownloads, VersionDownloads
from ketch.stats.services import LOCK

BATCH = 200  # packages per write transaction


async def run(db: Database, progress: Callable[[int, int], object] | None = None) -> None:
    """Rebuild dependents and roll-ups; ``progress(done, total)`` (sync or async) after each step.

    ``total`` is the number of packages plus one for the roll-ups."""
    async with db.read() as session:
        ids = list((await session.execute(select(Package.id).order_by(Package.id))).scalars())
    total = len(ids) + 1
    done = 0
    for i in range(0, len(ids), BATCH):
        async with db.write() as session:
            for package_id in ids[i:i + BATCH]:
                package = await session.get(Package, package_id)
                if package is None:
                    continue
                await db.lock(session, "pkg:" + package.name)  # the registry's per-package write lock
                await session.refresh(package)
                await dependents.update(session, package)
        done += len(ids[i:i + BATCH])
        await _report(progress, done, total)
    async with db.write() as session:
        await rebuild_rollups(db, session)
    await _report(progress, total, total)


async def rebuild_rollups(db: Database, session) -> None:
    """Recompute ``package_downloads`` and ``total_downloads`` from ``version_downloads``."""
    await db.lock(session, LOCK)
    await session.execute(delete(PackageDownloads))
    await session.execute(insert(PackageDownloads).from_select(
        ["package", "day", "count"],
        select(VersionDownloads.package, VersionDownloads.day, func.sum(VersionDownloads.count))
        .group_by(VersionDownloads.package, VersionDownloads.day)))
    await session.execute(delete(TotalDownloads))
    await session.execute(insert(TotalDownloads).from_select(
        ["day", "count"],
        select(VersionDownloads.day, func.sum(VersionDownloads.count)).group_by(VersionDownloads.day)))


async def _report(progress, done: int, total: int) -> None:
    if progress is not None:
        result = progress(done, total)
        if inspect.isawaitable(result):
            await result
