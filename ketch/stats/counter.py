"""Download counting: a per-process in-memory buffer, flushed to the database in batches.

The tarball routes call :func:`count` (a dict increment, well under a microsecond); a background
task started in the app lifespan writes the buffer every ``interval`` seconds, or sooner once
``batch`` downloads are waiting, as upsert-increments in one transaction (``services.add_downloads``),
so any number of processes and nodes can count at once.

What can be lost: a crash (kill -9, power loss) loses what this process counted since its last
successful flush — normally under ``interval`` seconds of downloads and never more than about
``batch`` plus the downloads arriving during one flush. While the database is unreachable the
buffer is kept and retried with backoff; it holds at most ``max_keys`` distinct (package, file,
day) keys (each with any count), and downloads of new keys beyond that are dropped and counted in
``ketch_download_counts_total{result="dropped"}``. A clean shutdown flushes what is left.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter

from ketch.stats import periods, services

log = logging.getLogger("ketch.stats")
COUNTS = Counter("ketch_download_counts_total", "Tarball downloads counted", ["result"])
FLUSHED = COUNTS.labels("flushed")
DROPPED = COUNTS.labels("dropped")
MAX_BACKOFF = 30.0
STOP_TIMEOUT = 10.0


class DownloadCounter:
    def __init__(self, db, *, interval: float = 1.0, batch: int = 10_000, max_keys: int = 50_000):
        self.db = db
        self.interval = interval
        self.batch = batch
        self.max_keys = max_keys
        # (UTC day number, package name, tarball file name) -> downloads not yet written
        self.pending: dict[tuple[int, str, str], int] = {}
        self.waiting = 0
        self.failures = 0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    def add(self, name: str, filename: str) -> None:
        key = (int(time.time()) // 86400, name, filename)
        pending = self.pending
        n = pending.get(key)
        if n is None:
            if len(pending) >= self.max_keys:
                DROPPED.inc()
                return
            pending[key] = 1
        else:
            pending[key] = n + 1
        self.waiting += 1
        if self.waiting == self.batch:
            self._wake.set()

    async def flush(self) -> bool:
        """Write what is pending; on failure keep it for the next attempt. Raises only on cancellation."""
        if not self.pending:
            return True
        taken, self.pending, self.waiting = self.pending, {}, 0
        try:
            async with self.db.write() as session:
                await services.add_downloads(self.db, session, to_rows(taken))
        except BaseException as exc:  # noqa: BLE001 - a flush must never fail a request or the loop
            self._put_back(taken)
            if not isinstance(exc, Exception):
                raise
            self.failures += 1
            log.warning("could not write %d download counts (attempt %d), keeping them: %s",
                        sum(taken.values()), self.failures, exc)
            return False
        self.failures = 0
        FLUSHED.inc(sum(taken.values()))
        return True

    def _put_back(self, taken: dict) -> None:
        pending = self.pending
        for key, n in taken.items():
            if key in pending:
                pending[key] += n
            elif len(pending) < self.max_keys:
                pending[key] = n
            else:
                DROPPED.inc(n)
        self.waiting += sum(taken.values())

    async def run(self) -> None:
        while not self._stop.is_set():
            if self.failures:  # back off while the database is unreachable (woken early only to stop)
                await _wait(self._stop, min(MAX_BACKOFF, self.interval * 2 ** min(self.failures, 8)))
            else:
                await _wait(self._wake, self.interval)
            self._wake.clear()
            await self.flush()
        await self.flush()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Flush what is left and end the background task (bounded by STOP_TIMEOUT)."""
        if self._task is None:
            return
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(self._task, STOP_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            log.warning("download counts not written at shutdown: %d", sum(self.pending.values()))
        self._task = None


async def _wait(event: asyncio.Event, timeout: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        pass


def to_rows(pending: dict[tuple[int, str, str], int]) -> dict:
    """Buffer keys → (package, version, day) keys; the version is read from the tarball file name."""
    rows: dict = {}
    for (day_number, name, filename), n in pending.items():
        unscoped = name.rsplit("/", 1)[-1]
        version = filename[len(unscoped) + 1:-4]
        key = (name, version, periods.from_day_number(day_number))
        rows[key] = rows.get(key, 0) + n
    return rows


def start(ctx) -> DownloadCounter:
    """Create this process's counter for the app context ``ctx`` and start its flush task."""
    counter = DownloadCounter(ctx.db)
    ctx.caches["downloads"] = counter
    counter.start()
    return counter


def count(ctx, scope, name: str, filename: str) -> None:
    """One download of ``filename`` of package ``name``, if this request was a GET."""
    if scope["method"] == "GET":
        counter = ctx.caches.get("downloads")
        if counter is not None:
            counter.add(name, filename)
