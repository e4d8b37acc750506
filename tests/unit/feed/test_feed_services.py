"""The replication feed's rows, written by the registry's services and read back per caller."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from sqlalchemy import select

from ketch.feed import services as feed
from ketch.feed.models import Change
from ketch.registry import services
from ketch.registry.models import Packument
from tests.unit.feed.db_support import make_user, publish, unique


async def page(db, ident=None, **kw):
    kw.setdefault("since", 0)
    kw.setdefault("limit", 1000)
    async with db.read() as session:
        return await feed.changes(session, ident, **kw)


async def rows_of(db, name):
    async with db.read() as session:
        return list((await session.execute(select(Change).where(Change.name == name).order_by(Change.seq))).scalars())


async def test_every_kind_of_change_is_logged_in_order_with_the_packument_rev(db):
    owner, other = await make_user(db), await make_user(db)
    name = unique("pkg")
    await publish(db, owner, name, "1.0.0")
    await publish(db, owner, name, "1.1.0")
    async with db.write() as session:
        await services.add_dist_tag(db, session, name, "beta", "1.0.0", owner)
    async with db.write() as session:
        await services.remove_dist_tag(db, session, name, "beta", owner)
    async with db.write() as session:
        await services.update_document(db, session, name, {"versions": {"1.0.0": {"deprecated": "old"}}}, owner, None)
    async with db.write() as session:
        package = await services.get_package(session, name)
        body = {"maintainers": [{"name": owner.name}, {"name": other.name}]}
        await services.update_document(db, session, name, body, owner, f"{package.rev}-x")
    async with db.read() as session:
        package = await services.get_package(session, name)
        stored = (await session.execute(select(Packument.full).where(Packument.name == name))).scalar_one()
    rows = await rows_of(db, name)
    assert [r.kind for r in rows] == ["publish", "publish", "dist-tag", "dist-tag", "deprecate", "owner"]
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert rows[-1].rev == orjson.loads(stored)["_rev"] and rows[-1].rev.startswith(f"{package.rev}-")
    assert not any(r.deleted for r in rows)

    async with db.write() as session:
        await services.unpublish_package(db, session, name, owner, None)
    last = (await rows_of(db, name))[-1]
    assert (last.kind, last.deleted, last.rev) == ("unpublish", True, f"{package.rev + 1}-deleted")
    entries = [e for e in (await page(db)).results if e["id"] == name]
    assert entries[-1] == {"seq": last.seq, "id": name, "changes": [{"rev": last.rev}], "kind": "unpublish",
                           "deleted": True}
    assert "deleted" not in entries[0]


async def test_since_and_limit_page_through_the_feed(db):
    owner = await make_user(db)
    names = [unique("page") for _ in range(5)]
    start = (await page(db)).last_seq
    for name in names:
        await publish(db, owner, name)
    seen, since = [], start
    while True:
        got = await page(db, since=since, limit=2)
        if not got.results:
            assert got.last_seq == since
            break
        assert len(got.results) <= 2 and got.last_seq == got.results[-1]["seq"]
        seen += [e["id"] for e in got.results]
        since = got.last_seq
    assert seen == names
    newest = await page(db, since=None, limit=3, descending=True)
    assert [e["id"] for e in newest.results] == names[::-1][:3]
    older = await page(db, since=newest.last_seq, limit=10, descending=True)
    assert [e["id"] for e in older.results][:2] == names[::-1][3:]


async def test_private_packages_are_visible_only_to_those_who_may_read_them(db):
    owner, stranger = await make_user(db), await make_user(db)
    private, public = f"@{owner.name}/{unique('secret')}", unique("open")
    before = (await page(db)).last_seq
    await publish(db, owner, private, access="restricted")
    await publish(db, owner, public)

    def ids(p):
        return [e["id"] for e in p.results]

    assert ids(await page(db, owner, since=before)) == [private, public]
    for caller in (None, stranger):
        got = await page(db, caller, since=before)
        assert ids(got) == [public]
        assert got.last_seq > before
    # Once everything visible is consumed, hidden rows still move the cursor on.
    assert (await page(db, None, since=before, limit=1)).results[0]["id"] == public
    async with db.write() as session:
        await services.set_access(db, session, private, {"access": "public"}, owner)
    assert ids(await page(db, None, since=before)) == [private, public, private]
    assert (await rows_of(db, private))[-1].kind == "access"


async def test_one_row_per_package_and_transaction_and_none_on_rollback(db):
    owner = await make_user(db)
    name = unique("once")
    await publish(db, owner, name)
    async with db.write() as session:  # a transfer rebuilds twice in one transaction
        package = await services.get_package(session, name)
        await services.rebuild(session, package, "owner")
        await services.rebuild(session, package)
    assert [r.kind for r in await rows_of(db, name)] == ["publish", "owner"]
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            await services.add_dist_tag(db, session, name, "next", "1.0.0", owner)
            raise RuntimeError("rolled back")
    assert len(await rows_of(db, name)) == 2


async def test_a_follower_polling_during_concurrent_writes_misses_nothing(db):
    owner = await make_user(db)
    start = (await page(db)).last_seq
    names = [unique("race") for _ in range(24)]
    done = asyncio.Event()
    seen: list[int] = []

    async def follow():
        since = start
        while True:
            finished = done.is_set()
            got = await page(db, since=since)
            seen.extend(e["seq"] for e in got.results)
            since = got.last_seq
            if finished:
                return

    async def write(chunk):
        for name in chunk:
            await publish(db, owner, name)

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write(names[i::6]) for i in range(6)))
    done.set()
    await follower
    async with db.read() as session:
        committed = list((await session.execute(select(Change.seq).where(Change.seq > start))).scalars())
    assert sorted(seen) == sorted(committed) and len(committed) == len(names)


async def test_the_watcher_wakes_on_a_commit_and_times_out_without_one(db):
    watcher = feed.Watcher(db, interval=0.05)
    seen = (await page(db)).last_seq
    loop = asyncio.get_running_loop()
    started = loop.time()
    await watcher.wait(seen, 0.3)
    assert loop.time() - started >= 0.29

    owner = await make_user(db)
    waiting = asyncio.create_task(watcher.wait(seen, 10))
    await asyncio.sleep(0.05)
    started = loop.time()
    await publish(db, owner, unique("wake"))
    await asyncio.wait_for(waiting, 5)
    assert loop.time() - started < 2

    other = feed.Watcher(db, interval=0.05)  # as in another process: learns of it by polling
    other.latest = 0
    await asyncio.wait_for(other.wait(seen, 10), 5)
