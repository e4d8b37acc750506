"""A migrated, empty database for service tests, on SQLite and on PostgreSQL, plus the few rows
the tests need (users, published versions) written through the registry's own services.

PostgreSQL: a fresh ``ketch_unit_<random>`` database on KETCH_TEST_DATABASE_URL's server (default
postgresql://postgres@127.0.0.1:5432), dropped afterwards; skipped only when no server answers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import uuid
from collections.abc import Iterator

import pytest

from ketch.accounts.models import User
from ketch.accounts.services import Identity
from ketch.blobs import blob_key
from ketch.db import Database
from ketch.db.base import utcnow
from ketch.db.migrate import upgrade
from ketch.registry import services
from ketch.registry.publish import PublishCommand
from tests.support.databases import scratch_database

BACKENDS = ["sqlite", "postgres"]


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def migrated_url(backend: str, tmp_path) -> Iterator[str]:
    """The URL of a freshly migrated database on ``backend``; dropped at the end (PostgreSQL)."""
    with scratch_database(backend, tmp_path, "ketch_unit_") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request, tmp_path_factory):
    """A migrated database per backend for a test module (import this fixture into it)."""
    with migrated_url(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


async def make_user(db: Database, prefix: str = "u") -> Identity:
    name = unique(prefix)
    async with db.write() as session:
        user = User(name=name, email=f"{name}@example.test", password_hash="x", created=utcnow(), updated=utcnow())
        session.add(user)
        await session.flush()
        return Identity(user.id, name, user.email)


def tarball(name: str, version: str) -> bytes:
    return f"{name}@{version}".encode() * 10


async def publish(db: Database, ident: Identity, name: str, version: str = "1.0.0",
                  access: str | None = None) -> None:
    data = tarball(name, version)
    sha512 = hashlib.sha512(data)
    integrity = "sha512-" + base64.b64encode(sha512.digest()).decode()
    cmd = PublishCommand(name=name, version=version, manifest={"name": name, "version": version}, tags=["latest"],
                         access=access, data=data, sha512_hex=sha512.hexdigest(), integrity=integrity,
                         shasum=hashlib.sha1(data).hexdigest(), blob_key=blob_key(sha512.hexdigest()))
    async with db.write() as session:
        await services.publish(db, session, cmd, ident)
