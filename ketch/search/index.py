"""Keeping the index in step with packages.

:func:`update` runs inside every package write transaction (from ``registry.events``), so the
index commits or rolls back with the change and a search sees a publish, deprecate or unpublish
as soon as it commits. Downloads and dependents change without any publish, so :func:`refresh`
recomputes popularity (and maintenance, which decays with time) for every row; ``ketch reindex``
runs it, and :func:`refresh_if_due` runs it in the background at most every REFRESH_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

import orjson
from sqlalchemy import delete, func, insert, select, update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.db.base import utcnow
from ketch.search import document, scoring
from ketch.search.backend import backend_for
from ketch.search.models import SearchDocument, SearchMeta

log = logging.getLogger("ketch.search")
REFRESH_SECONDS = 3600
REFRESH_BATCH = 2000
_next_check = 0.0
_running: asyncio.Task | None = None


async def popularity_inputs(session: AsyncSession, names: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Weekly downloads and dependents per name, from the stats domain."""
    from ketch.stats import services as stats

    return await stats.weekly_downloads(session, names), await stats.dependent_counts(session, names)


async def maxima(session: AsyncSession) -> tuple[int, int]:
    """The registry's largest weekly downloads and dependents: popularity is relative to them."""
    # Two queries: each single max() is one index lookup; together in one SELECT they scan the table.
    weekly = (await session.execute(select(func.max(SearchDocument.weekly_downloads)))).scalar()
    dependents = (await session.execute(select(func.max(SearchDocument.dependents)))).scalar()
    return weekly or 0, dependents or 0


async def facts_of(session: AsyncSession, package, rows=None) -> document.Facts | None:
    """What the index needs of ``package``; ``rows`` when the caller has already loaded them."""
    if rows is None:
        from ketch.registry import services as registry  # registry imports this module through events

        rows = await registry.load_rows(session, package)
    latest = next((v for v in rows.versions if v.version == rows.dist_tags.get("latest")), None)
    if latest is None:
        return None
    return document.Facts(
        name=package.name, access=package.access, latest=latest.version, manifest=latest.manifest,
        readme=rows.readme, deprecated=latest.deprecated, releases=[v.created for v in rows.versions],
        maintainers=rows.maintainers, modified=package.modified)


async def update(session: AsyncSession, package, rows=None) -> None:
    """Re-index ``package`` (or drop it when unpublished) inside the caller's transaction; ``rows``
    are its registry rows when the caller has loaded them already (every package write has)."""
    await session.flush()  # the registry session does not autoflush; read what this write changed
    facts = None if package.unpublished is not None else await facts_of(session, package, rows)
    if facts is None:
        await remove(session, [package.id])
        return
    weekly, dependents = await popularity_inputs(session, [package.name])
    top_weekly, top_dependents = await maxima(session)
    w, d = weekly.get(package.name, 0), dependents.get(package.name, 0)
    values = document.row(facts, utcnow(), weekly=w, dependents=d,
                          max_weekly=max(top_weekly, w), max_dependents=max(top_dependents, d))
    await save(session, [{"package_id": package.id, **values}])


async def save(session: AsyncSession, rows: list[dict]) -> None:
    """Replace the index rows (and their full-text entries) for ``rows``; the bulk path too."""
    ids = [r["package_id"] for r in rows]
    for start in range(0, len(ids), 500):
        await session.execute(delete(SearchDocument).where(SearchDocument.package_id.in_(ids[start:start + 500])))
    if rows:
        await session.execute(insert(SearchDocument), rows)
    await backend_for(session).save(session, rows)


async def remove(session: AsyncSession, package_ids: list[int]) -> None:
    await session.execute(delete(SearchDocument).where(SearchDocument.package_id.in_(package_ids)))
    await backend_for(session).remove(session, package_ids)


async def refresh(db, progress=None) -> int:
    """Recompute popularity and maintenance of every row, in batches of short write transactions
    (a long one would hold SQLite's write lock against publishes). Returns the rows refreshed."""
    async with db.read() as session:
        ids = list((await session.execute(select(SearchDocument.package_id).order_by(SearchDocument.package_id)))
                   .scalars())
    # Popularity is relative to the largest values, so first gather every package's inputs.
    inputs: dict[int, tuple[int, int]] = {}
    for start in range(0, len(ids), REFRESH_BATCH):
        async with db.read() as session:
            names = dict((await session.execute(select(SearchDocument.package_id, SearchDocument.name)
                                                .where(SearchDocument.package_id.in_(ids[start:start + REFRESH_BATCH]))))
                         .all())
            weekly, dependents = await popularity_inputs(session, list(names.values()))
        for package_id, name in names.items():
            inputs[package_id] = (weekly.get(name, 0), dependents.get(name, 0))
    top_weekly = max((w for w, _ in inputs.values()), default=0)
    top_dependents = max((d for _, d in inputs.values()), default=0)
    now = utcnow()
    done = 0
    for start in range(0, len(ids), REFRESH_BATCH):
        batch = ids[start:start + REFRESH_BATCH]
        async with db.write() as session:
            rows = (await session.execute(select(SearchDocument.package_id, SearchDocument.releases,
                                                 SearchDocument.deprecated)
                                          .where(SearchDocument.package_id.in_(batch)))).all()
            values = []
            for package_id, releases, deprecated in rows:
                facts = orjson.loads(releases)
                dates = [datetime.fromisoformat(x) for x in facts["dates"]]
                w, d = inputs.get(package_id, (0, 0))
                values.append({
                    "package_id": package_id, "weekly_downloads": w, "dependents": d,
                    "popularity": scoring.popularity(w, d, top_weekly, top_dependents),
                    "maintenance": scoring.maintenance(dates, now, deprecated=bool(deprecated),
                                                       finished=facts["finished"]),
                })
            if values:  # ORM bulk UPDATE by primary key: one executemany
                await session.execute(sql_update(SearchDocument), values)
        done += len(batch)
        if progress is not None:
            progress(len(batch))
    return done


async def claim_refresh(db, every: float = REFRESH_SECONDS) -> bool:
    """Whether this process should refresh now: one compare-and-set on ``search_meta`` per period,
    so among many workers and nodes exactly one does it."""
    now = utcnow()
    async with db.write() as session:
        row = await session.get(SearchMeta, "popularity")
        if row is None:
            session.add(SearchMeta(key="popularity", refreshed=now))
            return True
        claimed = await session.execute(
            sql_update(SearchMeta).where(SearchMeta.key == "popularity",
                                         SearchMeta.refreshed < now - timedelta(seconds=every))
            .values(refreshed=now))
        return claimed.rowcount == 1


def refresh_if_due(db) -> None:
    """Called on each search: at most once a minute per process, check whether a refresh is due and
    run it as a background task (the search itself never waits for it)."""
    global _next_check, _running
    if time.monotonic() < _next_check or (_running is not None and not _running.done()):
        return
    _next_check = time.monotonic() + 60

    async def run() -> None:
        try:
            if await claim_refresh(db):
                count = await refresh(db)
                log.info("search: refreshed popularity of %d packages", count)
        except Exception:  # a failed refresh must not break searches; the next period retries
            log.exception("search: popularity refresh failed")

    _running = asyncio.get_running_loop().create_task(run())
