"""Cross-process locks so that one process, on one node, fetches a given packument or tarball.

Within a process, concurrent misses already share one request (``Proxy._once``). These locks
extend that to every process: the first takes the lock and fetches; the others wait, then find
the copy it stored in the database and do not ask upstream at all.

* Embedded mode (every process on one machine): ``flock`` on one of 256 small lock files beside
  the database, opened per acquisition (so tasks of one process exclude each other too).
* PostgreSQL (many nodes): session-level advisory locks on one dedicated connection per process.

The locks only save upstream requests; they never decide correctness. If a lock cannot be had in
time or the lock service fails, the caller goes ahead without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import time
import zlib
from pathlib import Path

import asyncpg

log = logging.getLogger("ketch.proxy")
_POLL = 0.02
_FILE_SLOTS = 256


class FileLocks:
    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, timeout: float):
        path = self.directory / f"{zlib.crc32(key.encode()) % _FILE_SLOTS}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        break  # go ahead unlocked: at worst one more upstream request
                    await asyncio.sleep(_POLL)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


class PostgresLocks:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self.conn: asyncpg.Connection | None = None
        self.mutex = asyncio.Lock()  # one query at a time on the connection

    @contextlib.asynccontextmanager
    async def hold(self, key: str, timeout: float):
        number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        held = False
        deadline = time.monotonic() + timeout
        try:
            while not held and time.monotonic() <= deadline:
                held = await self._call("SELECT pg_try_advisory_lock($1)", number)
                if held is None:
                    break  # the database is unreachable: go ahead unlocked
                if not held:
                    await asyncio.sleep(_POLL)
            yield
        finally:
            if held:
                await self._call("SELECT pg_advisory_unlock($1)", number)

    async def _call(self, sql: str, number: int) -> bool | None:
        async with self.mutex:
            try:
                if self.conn is None or self.conn.is_closed():
                    self.conn = await asyncpg.connect(self.dsn, timeout=2, command_timeout=10,
                                                      server_settings={"application_name": "ketch-proxy-locks"})
                return bool(await self.conn.fetchval(sql, number))
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as e:
                log.warning("proxy: lock service unavailable: %s", e)
                await self.close()
                return None

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # session-level locks go with the connection


def open_locks(db, settings):
    if db.is_sqlite:
        return FileLocks(settings.data_dir.resolve() / "proxy-locks")
    return PostgresLocks(db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
