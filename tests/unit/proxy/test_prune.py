"""`ketch cache prune`: which cached rows go, and which blobs may go with them (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from ketch.blobs import blob_key
from ketch.blobs.files import FileBlobStore
from ketch.db import Database
from ketch.db.base import utcnow
from ketch.proxy import prune, store
from ketch.proxy.documents import rewrite
from ketch.proxy.models import CachedPackument, CachedTarball
from tests.unit.feed.db_support import database_url, make_user, publish, tarball, unique  # noqa: F401 (fixture)


@pytest.fixture
async def db(database_url):
    database = Database(database_url)
    async with database.write() as session:  # every test starts with an empty cache
        await session.execute(CachedPackument.__table__.delete())
        await session.execute(CachedTarball.__table__.delete())
    yield database
    await database.dispose()


@pytest.fixture
def blobs(tmp_path):
    return FileBlobStore(tmp_path / "blobs")


async def cache(db, blobs, name: str, days_ago: float, data: bytes | None = None, pinned: bool = False) -> str:
    """A cached packument and one tarball of ``name``, last used ``days_ago``; returns the blob key."""
    when = utcnow() - timedelta(days=days_ago)
    data = data if data is not None else name.encode() * 50
    raw = ('{"name": "%s", "versions": {"1.0.0": {"name": "%s", "version": "1.0.0", "dist": '
           '{"tarball": "http://up/%s/-/%s-1.0.0.tgz", "shasum": "%s"}}}}'
           % (name, name, name, name, hashlib.sha1(data).hexdigest())).encode()
    async with db.write() as session:
        await store.save_packument(session, name, "up", rewrite(name, raw), None, pinned=pinned, fetched=when)
        key = await store.save_tarball(session, blobs, name, f"{name}-1.0.0.tgz", data, "sha1-x", pinned=pinned)
        await session.execute(update(CachedTarball).where(CachedTarball.name == name).values(last_used=when))
    return key


async def test_max_age_drops_old_unpinned_rows_only(db, blobs):
    old, recent, pinned = unique("old"), unique("recent"), unique("pinned")
    await cache(db, blobs, old, 40)
    await cache(db, blobs, recent, 1)
    await cache(db, blobs, pinned, 400, pinned=True)
    plan = await prune.plan(db, max_age=timedelta(days=30))
    assert {(i.name, i.filename) for i in plan.drop} == {(old, None), (old, f"{old}-1.0.0.tgz")}


async def test_max_size_drops_least_recently_used_first_until_it_fits(db, blobs):
    names = [unique("lru") for _ in range(4)]
    for age, name in zip((4, 3, 2, 1), names):
        await cache(db, blobs, name, age)
    await cache(db, blobs, unique("pinned"), 9, pinned=True)
    async with db.read() as session:
        sizes = {n: s for n, s in (await session.execute(select(CachedPackument.name, CachedPackument.size)))}
        sizes_t = {n: s for n, s in (await session.execute(select(CachedTarball.name, CachedTarball.size)))}
    per_name = {n: sizes[n] + sizes_t[n] for n in names}
    limit = per_name[names[2]] + per_name[names[3]]
    plan = await prune.plan(db, max_size=limit)
    assert {i.name for i in plan.drop} == set(names[:2])
    assert plan.kept_bytes == limit
    assert (await prune.plan(db, max_size=limit * 10)).drop == []


async def test_apply_deletes_rows_and_only_blobs_nothing_else_names(db, blobs):
    owner = await make_user(db)
    published = unique("local")
    await publish(db, owner, published)
    alone, shared, kept, local = (unique(p) for p in ("alone", "shared", "kept", "local-copy"))
    alone_key = await cache(db, blobs, alone, 50)
    shared_key = await cache(db, blobs, shared, 50, data=b"same bytes" * 20)
    await cache(db, blobs, kept, 1, data=b"same bytes" * 20)  # a recent row names the same blob
    local_key = await cache(db, blobs, local, 50, data=tarball(published, "1.0.0"))  # so does a version
    assert local_key == blob_key(hashlib.sha512(tarball(published, "1.0.0")).hexdigest())
    forgotten: list[set] = []
    db.after_commit.append(forgotten.append)

    plan = await prune.plan(db, max_age=timedelta(days=30))
    assert await prune.apply(db, blobs, plan.drop) == 1
    assert not await blobs.exists(alone_key)
    assert await blobs.exists(shared_key) and await blobs.exists(local_key)
    async with db.read() as session:
        left = set((await session.execute(select(CachedPackument.name))).scalars())
    assert left == {kept}
    assert {alone, shared, local} <= set().union(*forgotten)  # every process's cache forgets them


async def test_a_row_used_again_after_the_plan_is_kept(db, blobs):
    name = unique("busy")
    await cache(db, blobs, name, 50)
    plan = await prune.plan(db, max_age=timedelta(days=30))
    async with db.write() as session:
        await store.mark_used(session, {name}, {(name, f"{name}-1.0.0.tgz")})
    await prune.apply(db, blobs, plan.drop)
    async with db.read() as session:
        assert await store.get_packument(session, name) is not None
        assert await store.get_tarball(session, name, f"{name}-1.0.0.tgz") is not None


@pytest.mark.parametrize("text, size", [("10GB", 10 * 1024**3), ("500mb", 500 * 1024**2), ("1.5g", 3 * 1024**3 // 2),
                                        ("4096", 4096), ("2K", 2048)])
def test_sizes(text, size):
    assert prune.parse_size(text) == size


@pytest.mark.parametrize("text, age", [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)),
                                       ("90m", timedelta(minutes=90)), ("2w", timedelta(weeks=2))])
def test_ages(text, age):
    assert prune.parse_age(text) == age


@pytest.mark.parametrize("text", ["", "GB", "ten", "-5GB", "5XB"])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        prune.parse_size(text)


@pytest.mark.parametrize("text", ["", "30", "d", "30y", "-1d"])
def test_bad_ages(text):
    with pytest.raises(ValueError):
        prune.parse_age(text)
