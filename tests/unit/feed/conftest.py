import pytest

from ketch.db import Database
from tests.unit.feed.db_support import database_url  # noqa: F401 (fixture)


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    yield database
    await database.dispose()
