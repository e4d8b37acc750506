"""Telling every process when a package changed, so in-process caches stay correct.

Two mechanisms, chosen by deployment:

* :class:`SlotCounters` (embedded mode, every process on one machine): a small memory-mapped file
  of counters. A writer bumps the counter of each package it changed right after its commit; a
  reader compares the counter with the one it saw when it loaded its cached copy. A read costs one
  memory load. Slot 0 is an epoch that every starting process bumps, so a worker killed between
  its commit and its bump cannot leave other workers serving a stale copy after it restarts.
* :class:`BatchedEtags` (PostgreSQL, many machines): every cache hit is revalidated against the
  database, but concurrent requests share one query. A request joins only a query that starts
  after it arrived, so it always sees every write acknowledged before it.
"""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

SLOTS = 65536
_SIZE = SLOTS * 8
_U64 = struct.Struct("<Q")


def slot_of(name: str) -> int:
    return 1 + zlib.crc32(name.encode()) % (SLOTS - 1)


class SlotCounters:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with _locked(self._fd):
            if os.fstat(self._fd).st_size < _SIZE:
                os.ftruncate(self._fd, _SIZE)
        self._map = mmap.mmap(self._fd, _SIZE)

    def token(self, name: str) -> tuple[int, int]:
        """The state a cached copy of ``name`` must be stamped with, read *before* loading it."""
        m = self._map
        return _U64.unpack_from(m, 0)[0], _U64.unpack_from(m, slot_of(name) * 8)[0]

    def bump(self, names: Iterable[str]) -> None:
        slots = {slot_of(n) for n in names}
        if not slots:
            return
        with _locked(self._fd):
            for slot in slots:
                self._incr(slot)

    def bump_epoch(self) -> None:
        with _locked(self._fd):
            self._incr(0)

    def _incr(self, slot: int) -> None:
        offset = slot * 8
        _U64.pack_into(self._map, offset, _U64.unpack_from(self._map, offset)[0] + 1)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class _locked:
    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)


class BatchedEtags:
    """Coalesces "what is the current ETag of X?" questions into one query per round trip."""

    def __init__(self, fetch: Callable[[list[str]], Awaitable[dict[str, str]]]):
        self._fetch = fetch
        self._pending: dict[str, list[asyncio.Future]] = {}
        self._running = False

    async def etag(self, name: str) -> str | None:
        future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(name, []).append(future)
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                try:
                    found = await self._fetch(list(batch))
                except Exception as exc:  # every waiter of this batch sees the failure
                    for futures in batch.values():
                        for f in futures:
                            if not f.done():
                                f.set_exception(exc)
                    continue
                for name, futures in batch.items():
                    value = found.get(name)
                    for f in futures:
                        if not f.done():
                            f.set_result(value)
        finally:
            self._running = False
