"""Throw-away databases for the tests.

Real-server tests (:func:`create_test_database`): with ``KETCH_TEST_DATABASE_URL=postgresql://user@host:port``
(a server URL without a database name) each server gets a freshly created database, dropped at
teardown; without it, None (the server uses the embedded SQLite under its data directory).

In-process tests (:func:`scratch_database`) run on SQLite and on PostgreSQL: KETCH_TEST_DATABASE_URL's
server, by default the local one, and are skipped only when no server answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432"


def pg_server_url() -> str | None:
    url = os.environ.get("KETCH_TEST_DATABASE_URL", "").strip()
    return url.rstrip("/") or None


async def execute(url: str, sql: str, timeout: float = 10) -> None:
    """One statement on the database at ``url`` (asyncpg, a Ketch dependency)."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=timeout)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_test_database(prefix: str = "ketch_e2e_") -> tuple[str, str] | None:
    """A fresh database when KETCH_TEST_DATABASE_URL is set: (db name, full URL); else None."""
    server = pg_server_url()
    if not server:
        return None
    name = prefix + uuid.uuid4().hex[:12]
    asyncio.run(execute(server + "/postgres", f'CREATE DATABASE "{name}"'))
    return name, f"{server}/{name}"


def drop_test_database(name: str) -> None:
    server = pg_server_url()
    if server:
        asyncio.run(execute(server + "/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def scratch_database(backend: str, tmp_path: Path, prefix: str) -> Iterator[str]:
    """The (async) URL of an empty database: ``sqlite``, a file under ``tmp_path``; ``postgres``, a
    fresh ``<prefix><random>`` database, dropped at the end (the test is skipped if no server answers)."""
    from ketch.config import async_url

    if backend == "sqlite":
        yield async_url(f"sqlite:///{tmp_path / 'ketch.sqlite3'}")
        return
    server = os.environ.get("KETCH_TEST_DATABASE_URL", LOCAL_PG).rstrip("/")
    name = prefix + uuid.uuid4().hex[:10]
    try:
        asyncio.run(execute(server + "/postgres", f'CREATE DATABASE "{name}"', timeout=5))
    except (OSError, asyncio.TimeoutError) as e:
        pytest.skip(f"PostgreSQL at {server} is unreachable: {e}")
    try:
        yield async_url(f"{server}/{name}")
    finally:
        asyncio.run(execute(server + "/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', timeout=5))
