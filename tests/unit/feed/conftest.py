import pytest

from ketch.db import Database
from tests.unit.feed.db_support import BACKENDS, migrated_url


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request, tmp_path_factory):
    with migrated_url(request.param, tmp_path_factory.mktemp("feed")) as url:
        yield url


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    yield database
    await database.dispose()
