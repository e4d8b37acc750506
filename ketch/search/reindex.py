"""Rebuild the search index from the packages tables (``ketch reindex``).

Each package is re-indexed under the registry's per-package write lock, in batches of short
transactions, so it is safe while the registry serves. Rows of packages that are gone are
dropped, then popularity and maintenance are recomputed for all (they are relative to the
registry's largest download and dependent counts, which only the whole pass knows).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from sqlalchemy import select

from ketch.db import Database
from ketch.registry.models import Package
from ketch.search import index
from ketch.search.models import SearchDocument

BATCH = 200


async def run(db: Database, progress: Callable[[int, int], object] | None = None) -> int:
    """Re-index every live package; ``progress(done, total)`` after each batch. Returns the count indexed.

    ``total`` counts the packages twice: once for indexing, once for the score refresh."""
    async with db.read() as session:
        ids = list((await session.execute(select(Package.id).order_by(Package.id))).scalars())
        indexed = set((await session.execute(select(SearchDocument.package_id))).scalars())
    total = 2 * len(ids)
    done = 0
    for start in range(0, len(ids), BATCH):
        async with db.write() as session:
            for package_id in ids[start:start + BATCH]:
                package = await session.get(Package, package_id)
                if package is None:
                    continue
                await db.lock(session, "pkg:" + package.name)
                await session.refresh(package)
                await index.update(session, package)
        done += len(ids[start:start + BATCH])
        await _report(progress, done, total)
    gone = sorted(indexed - set(ids))
    if gone:
        async with db.write() as session:
            await index.remove(session, gone)

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    count = await index.refresh(db, step)
    await _report(progress, total, total)
    return count


async def _report(progress, done: int, total: int) -> None:
    if progress is not None:
        result = progress(done, total)
        if inspect.isawaitable(result):
            await result
