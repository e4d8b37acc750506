"""A migrated database holding the generated corpus, on SQLite and (when reachable) PostgreSQL.

PostgreSQL: a fresh ``ketch_search_<random>`` database on KETCH_TEST_DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432), dropped afterwards; skipped only when no server answers
(:func:`tests.support.databases.scratch_database`).
"""

from __future__ import annotations

import asyncio

import pytest

from ketch.db import Database
from ketch.db.migrate import upgrade
from tests.search.corpus import generate
from tests.search.load import load
from tests.support.databases import scratch_database

CORPUS_SIZE = 5000


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def corpus_db(request, tmp_path_factory):
    """(backend name, database URL) with the corpus loaded."""
    with scratch_database(request.param, tmp_path_factory.mktemp("search"), "ketch_search_") as url:
        upgrade(url)

        async def fill() -> None:
            db = Database(url)
            try:
                await load(db, generate(CORPUS_SIZE))
            finally:
                await db.dispose()

        asyncio.run(fill())
        yield request.param, url
