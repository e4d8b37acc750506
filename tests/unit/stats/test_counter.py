"""The counter against a real SQLite database: batching, failure and retry, the memory bound."""

import asyncio
import time
from datetime import date, datetime, timezone

from sqlalchemy import select

from ketch.db import Database
from ketch.db.migrate import upgrade
from ketch.stats.counter import DownloadCounter
from ketch.stats.models import PackageDownloads, TotalDownloads, VersionDownloads


def _today() -> date:
    return datetime.fromtimestamp(time.time(), timezone.utc).date()


async def _rows(db: Database, model) -> list:
    async with db.read() as session:
        return list((await session.execute(select(model))).scalars())


async def test_counts_survive_a_failed_flush_and_land_once(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}"
    db = Database(url)
    try:
        c = DownloadCounter(db)
        for _ in range(3):
            c.add("a", "a-1.0.0.tgz")
        c.add("@s/b", "b-2.0.0.tgz")
        assert await c.flush() is False  # no tables yet: the database refuses the write
        assert sum(c.pending.values()) == 4 and c.failures == 1
        c.add("a", "a-1.0.0.tgz")
        await asyncio.to_thread(upgrade, url)  # (Alembic runs its own event loop)
        assert await c.flush() is True
        assert c.pending == {} and c.failures == 0
        assert await c.flush() is True  # nothing left: no double counting
        today = _today()
        raw = {(r.package, r.version, r.day): r.count for r in await _rows(db, VersionDownloads)}
        assert raw == {("a", "1.0.0", today): 4, ("@s/b", "2.0.0", today): 1}
        assert {(r.package, r.day): r.count for r in await _rows(db, PackageDownloads)} == {
            ("a", today): 4, ("@s/b", today): 1}
        assert [(r.day, r.count) for r in await _rows(db, TotalDownloads)] == [(today, 5)]
        c.add("a", "a-1.0.0.tgz")
        assert await c.flush() is True  # increments, not overwrites
        assert {r.package: r.count for r in await _rows(db, PackageDownloads)} == {"a": 5, "@s/b": 1}
    finally:
        await db.dispose()


async def test_memory_is_bounded_by_distinct_keys(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}")
    try:
        c = DownloadCounter(db, max_keys=2)
        c.add("a", "a-1.0.0.tgz")
        c.add("b", "b-1.0.0.tgz")
        c.add("c", "c-1.0.0.tgz")  # a third key: dropped
        for _ in range(100):
            c.add("a", "a-1.0.0.tgz")  # known keys keep counting
        assert len(c.pending) == 2 and sum(c.pending.values()) == 102
        assert await c.flush() is False
        assert len(c.pending) == 2 and sum(c.pending.values()) == 102
    finally:
        await db.dispose()


async def test_background_task_flushes_on_its_own_and_at_stop(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    try:
        c = DownloadCounter(db, interval=0.05, batch=3)
        c.start()
        c.add("a", "a-1.0.0.tgz")
        deadline = time.monotonic() + 5
        while c.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert not c.pending
        c.add("a", "a-1.0.0.tgz")
        c.interval = 3600  # only the stop can write this one now
        await asyncio.sleep(0.1)
        c.add("a", "a-1.0.0.tgz")
        await c.stop()
        assert [r.count for r in await _rows(db, PackageDownloads)] == [3]
    finally:
        await db.dispose()

