"""A migrated database holding the generated corpus, on SQLite and (when reachable) PostgreSQL.

PostgreSQL: a fresh ``ketch_search_<random>`` database on KETCH_TEST_DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432), dropped afterwards; skipped only when no server answers.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from ketch.config import async_url
from ketch.db import Database
from ketch.db.migrate import upgrade
from tests.search.corpus import generate
from tests.search.load import load

PG_SERVER = os.environ.get("KETCH_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
CORPUS_SIZE = 5000


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_SERVER + "/postgres", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def database_url(backend: str, tmp_path) -> tuple[str, callable]:
    """(URL, cleanup) of an empty database for ``backend``."""
    if backend == "sqlite":
        return async_url(f"sqlite:///{tmp_path / 'search.sqlite3'}"), lambda: None
    name = "ketch_search_" + uuid.uuid4().hex[:10]
    try:
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncio.TimeoutError) as e:
        pytest.skip(f"PostgreSQL at {PG_SERVER} is unreachable: {e}")
    return async_url(f"{PG_SERVER}/{name}"), lambda: asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def corpus_db(request, tmp_path_factory):
    """(backend name, database URL) with the corpus loaded."""
    url, cleanup = database_url(request.param, tmp_path_factory.mktemp("search"))
    try:
        upgrade(url)

        async def fill() -> None:
            db = Database(url)
            try:
                await load(db, generate(CORPUS_SIZE))
            finally:
                await db.dispose()

        asyncio.run(fill())
        yield request.param, url
    finally:
        cleanup()
