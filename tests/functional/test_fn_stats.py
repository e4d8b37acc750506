"""Download counts, npm's downloads API under /-/, and the dependents table (issue 5).

Counting goes through the real tarball routes and the app's own counter, flushed on demand rather
than waited for. History on past days is written through the same upsert the flush uses.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from ketch.accounts.services import Identity
from ketch.stats import dependents, periods, reindex, services
from ketch.stats.models import PackageDownloads, TotalDownloads

TODAY = periods.today()


def _flush(reg) -> None:
    counter = reg.client.app.state.ketch.caches["downloads"]
    assert reg.client.portal.call(counter.flush) is True


def _in_app(reg, fn):
    """Run ``fn(db)`` (a coroutine function) on the app's loop with its database."""
    db = reg.client.app.state.ketch.db
    return reg.client.portal.call(fn, db)


def _add(reg, counts: dict) -> None:
    async def write(db):
        async with db.write() as session:
            await services.add_downloads(db, session, counts)
    _in_app(reg, write)


def _read(reg, fn):
    async def read(db):
        async with db.read() as session:
            return await fn(session)
    return _in_app(reg, read)


def _point(reg, period: str, name: str = "", user=None):
    path = f"/-/downloads/point/{period}" + (f"/{name}" if name else "")
    return reg.client.get(path, headers=user.auth if user else {})


def _day(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


@pytest.fixture(scope="module")
def history(reg, alice):
    """A public package with two versions and downloads on known past days."""
    name = reg.unique("hist")
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "2.0.0")
    _add(reg, {(name, "1.0.0", _day(1)): 5, (name, "2.0.0", _day(1)): 2, (name, "1.0.0", _day(7)): 10,
               (name, "1.0.0", _day(8)): 100, (name, "2.0.0", _day(30)): 1000, (name, "1.0.0", _day(365)): 7})
    return name


@pytest.fixture(scope="module")
def private(reg, alice):
    name = f"@{alice.name}/{reg.unique('secret')}"
    reg.publish_ok(alice, name, "1.0.0", access="restricted")
    _add(reg, {(name, "1.0.0", _day(1)): 3})
    return name


# ---- counting --------------------------------------------------------------------------------

def test_tarball_gets_are_counted_per_version_and_day(reg, alice):
    name = f"@{alice.name}/{reg.unique('count')}"
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "1.1.0")
    for _ in range(3):
        assert reg.tarball(name, "1.0.0").status_code == 200
    assert reg.tarball(name, "1.1.0").status_code == 200
    assert reg.client.head(f"/{name}/-/{name.split('/')[1]}-1.0.0.tgz").status_code == 200  # HEAD: not counted
    assert reg.tarball(name, "9.9.9").status_code == 404  # errors: not counted
    _flush(reg)
    today = TODAY.isoformat()
    assert reg.assert_ok(_point(reg, today, name)) == {"downloads": 4, "start": today, "end": today, "package": name}
    per_version = reg.assert_ok(reg.client.get(f"/-/versions/{reg.escaped(name)}/{today}"))
    assert per_version == {"package": name, "downloads": {"1.0.0": 3, "1.1.0": 1}}


def test_private_tarball_downloads_are_counted_on_the_slow_path(reg, alice, bob, private):
    assert reg.tarball(private, "1.0.0", alice).status_code == 200
    assert reg.tarball(private, "1.0.0", bob).status_code == 404
    _flush(reg)
    today = TODAY.isoformat()
    assert reg.assert_ok(_point(reg, today, private, alice))["downloads"] == 1


# ---- point and range shapes ------------------------------------------------------------------

def test_named_periods_end_yesterday(reg, history):
    expect = {"last-day": (1, 1, 7), "last-week": (7, 1, 17), "last-month": (30, 1, 1117), "last-year": (365, 1, 1124)}
    for period, (days, last, total) in expect.items():
        body = reg.assert_ok(_point(reg, period, history))
        assert body == {"downloads": total, "start": _day(days - 1 + last).isoformat(),
                        "end": _day(last).isoformat(), "package": history}, period


def test_explicit_ranges_are_inclusive(reg, history):
    body = reg.assert_ok(_point(reg, f"{_day(8)}:{_day(7)}", history))
    assert body["downloads"] == 110
    assert reg.assert_ok(_point(reg, _day(8).isoformat(), history))["downloads"] == 100


def test_range_lists_every_day_ascending_with_zeros(reg, history):
    resp = reg.client.get(f"/-/downloads/range/last-week/{history}")
    body = reg.assert_ok(resp)
    assert list(body) == ["downloads", "start", "end", "package"]
    assert body["start"] == _day(7).isoformat() and body["end"] == _day(1).isoformat()
    assert body["downloads"] == [{"day": _day(d).isoformat(), "downloads": {7: 10, 1: 7}.get(d, 0)}
                                 for d in range(7, 0, -1)]


def test_registry_wide_totals_have_no_package_key(reg, history, private):
    point = reg.assert_ok(_point(reg, "last-day"))
    assert set(point) == {"downloads", "start", "end"}
    assert point["downloads"] >= 7 + 3  # private packages count towards the registry total
    ranged = reg.assert_ok(reg.client.get("/-/downloads/range/last-week"))
    assert set(ranged) == {"downloads", "start", "end"} and len(ranged["downloads"]) == 7
    assert ranged["downloads"][-1]["downloads"] == point["downloads"]


def test_unknown_package_with_no_downloads_is_404_known_one_is_zero(reg, alice):
    name = reg.unique("quiet")
    reg.assert_error(_point(reg, "last-week", name), 404)
    reg.publish_ok(alice, name, "1.0.0")
    assert reg.assert_ok(_point(reg, "last-week", name))["downloads"] == 0


# ---- bulk ------------------------------------------------------------------------------------

def test_bulk_point_and_range_keyed_by_name_scoped_included(reg, alice, history, private):
    scoped = f"@{alice.name}/{reg.unique('bulk')}"
    reg.publish_ok(alice, scoped, "1.0.0")
    _add(reg, {(scoped, "1.0.0", _day(2)): 4})
    missing = reg.unique("missing")
    body = reg.assert_ok(_point(reg, "last-week", f"{history},{scoped},{missing},{private}"))
    assert list(body) == [history, scoped, missing, private]
    assert body[history] == {"downloads": 17, "start": _day(7).isoformat(), "end": _day(1).isoformat(),
                             "package": history}
    assert body[scoped]["downloads"] == 4 and body[scoped]["package"] == scoped
    assert body[missing] is None and body[private] is None  # the private one reads exactly like a missing one
    assert reg.assert_ok(_point(reg, "last-week", f"{scoped},{private}", alice))[private]["downloads"] == 3
    ranged = reg.assert_ok(reg.client.get(f"/-/downloads/range/last-week/{history},{scoped}"))
    assert [d["downloads"] for d in ranged[scoped]["downloads"]] == [0, 0, 0, 0, 0, 4, 0]
    assert ranged[history]["package"] == history and len(ranged[history]["downloads"]) == 7


def test_bulk_limits(reg, history):
    names = ",".join([history] + [f"n{i}" for i in range(127)])
    assert len(reg.assert_ok(_point(reg, "last-day", names))) == 128
    reg.assert_error(_point(reg, "last-day", names + ",one-more"), 400, contains="128")
    reg.assert_error(_point(reg, f"{_day(400)}:{_day(35)}", f"{history},x"), 400, contains="too large")
    assert reg.assert_ok(_point(reg, f"{_day(400)}:{_day(35)}", history))["downloads"] == 7  # 366 days alone: fine
    reg.assert_error(_point(reg, f"{_day(600)}:{_day(1)}", history), 400, contains="too large")


# ---- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("period", ["last-decade", "2023-02-30", "2023-01-31:2023-01-01", "all-time", "2023-1-1"])
def test_invalid_periods_are_400_with_an_error(reg, history, period):
    reg.assert_error(_point(reg, period, history), 400, contains="period")
    reg.assert_error(reg.client.get(f"/-/downloads/range/{period}"), 400, contains="period")
    reg.assert_error(reg.client.get(f"/-/versions/{history}/{period}"), 400, contains="period")


# ---- private packages ------------------------------------------------------------------------

def _headers_without_date(resp) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in resp.headers.multi_items() if k.lower() != "date")


def test_private_package_stats_are_the_registrys_404_for_outsiders(reg, alice, bob, private):
    missing = private + "-never-existed"
    for user in (None, bob):
        for path in ("/-/downloads/point/last-week/{}", "/-/downloads/range/last-week/{}",
                     "/-/versions/{}/last-week"):
            headers = user.auth if user else {}
            hidden = reg.client.get(path.format(private), headers=headers)
            absent = reg.client.get(path.format(missing), headers=headers)
            assert hidden.status_code == absent.status_code == 404
            assert hidden.content == absent.content == reg.packument(missing).content
            assert _headers_without_date(hidden) == _headers_without_date(absent)
    assert reg.assert_ok(_point(reg, "last-day", private, alice))["downloads"] == 3
    assert reg.assert_ok(reg.client.get(f"/-/versions/{reg.escaped(private)}/last-week", headers=alice.auth)) == {
        "package": private, "downloads": {"1.0.0": 3}}


# ---- per version -----------------------------------------------------------------------------

def test_versions_last_week_lists_every_live_version(reg, alice, history):
    body = reg.assert_ok(reg.client.get(f"/-/versions/{history}/last-week"))
    assert body == {"package": history, "downloads": {"1.0.0": 15, "2.0.0": 2}}
    name = f"@{alice.name}/{reg.unique('ver')}"
    reg.publish_ok(alice, name, "1.0.0")
    for path in (f"/-/versions/{reg.escaped(name)}/last-week", f"/-/versions/{name.replace('/', '%2F')}/last-week",
                 f"/-/versions/{name}/last-week"):
        assert reg.assert_ok(reg.client.get(path)) == {"package": name, "downloads": {"1.0.0": 0}}, path


# ---- dependents ------------------------------------------------------------------------------

def test_dependents_follow_the_latest_version(reg, alice):
    lib, other = reg.unique("lib"), reg.unique("lib2")
    app, secret = reg.unique("app"), f"@{alice.name}/{reg.unique('app')}"
    for name in (lib, other):
        reg.publish_ok(alice, name, "1.0.0")
    manifest = reg.default_manifest(app, "1.0.0", dependencies={lib: "^1"}, peerDependencies={lib: "*"},
                                    optionalDependencies={other: "1"})
    reg.publish_ok(alice, app, "1.0.0", manifest=manifest)
    reg.publish_ok(alice, secret, "1.0.0", access="restricted",
                   manifest=reg.default_manifest(secret, "1.0.0", dependencies={lib: "1"}))

    async def state(session):
        return (await services.dependent_counts(session, [lib, other, app]),
                await dependents.dependents_of(session, lib, None))

    counts, anonymous = _read(reg, state)
    assert counts == {lib: 1, other: 1, app: 0}  # the private dependent is not counted
    assert anonymous == [app]

    # a newer latest without dependencies replaces the rows; a non-latest tag does not count
    reg.publish_ok(alice, app, "2.0.0")
    reg.publish_ok(alice, app, "3.0.0-beta", tag="beta",
                   manifest=reg.default_manifest(app, "3.0.0-beta", dependencies={other: "1"}))
    counts, anonymous = _read(reg, state)
    assert counts == {lib: 0, other: 0, app: 0} and anonymous == []

    # the private dependent is counted, and listed to anyone, once it is public
    reg.publish_ok(alice, secret, "1.1.0", access="public",
                   manifest=reg.default_manifest(secret, "1.1.0", dependencies={lib: "1"}))
    counts, anonymous = _read(reg, state)
    assert counts[lib] == 1 and anonymous == [secret]


def test_private_dependents_only_for_readers(reg, alice, bob):
    lib = reg.unique("lib")
    secret = f"@{alice.name}/{reg.unique('app')}"
    reg.publish_ok(alice, lib, "1.0.0")
    reg.publish_ok(alice, secret, "1.0.0", access="restricted",
                   manifest=reg.default_manifest(secret, "1.0.0", dependencies={lib: "1"}))

    async def seen_by(session):
        from ketch.accounts.models import User
        from sqlalchemy import select

        ids = dict((await session.execute(select(User.name, User.id).where(
            User.name.in_([alice.name, bob.name])))).all())
        as_alice = Identity(user_id=ids[alice.name], name=alice.name, email=None)
        as_bob = Identity(user_id=ids[bob.name], name=bob.name, email=None)
        return [await dependents.dependents_of(session, lib, who) for who in (None, as_bob, as_alice)]

    assert _read(reg, seen_by) == [[], [], [secret]]


def test_unpublished_package_leaves_the_dependents(reg, alice):
    lib, app = reg.unique("lib"), reg.unique("app")
    reg.publish_ok(alice, lib, "1.0.0")
    reg.publish_ok(alice, app, "1.0.0", manifest=reg.default_manifest(app, "1.0.0", dependencies={lib: "1"}))
    assert _read(reg, lambda s: services.dependent_counts(s, [lib])) == {lib: 1}
    rev = reg.doc(app, alice)["_rev"]
    resp = reg.client.delete(f"/{app}/-rev/{rev}", headers=alice.auth)
    assert resp.status_code == 200, resp.text
    assert _read(reg, lambda s: services.dependent_counts(s, [lib])) == {lib: 0}


# ---- interfaces for search, and the rebuild ---------------------------------------------------

def test_weekly_downloads(reg, history):
    assert _read(reg, lambda s: services.weekly_downloads(s, [history, "no-such-name"])) == {
        history: 17, "no-such-name": 0}


def test_reindex_rebuilds_rollups_and_dependents(reg, alice, history):
    lib, app = reg.unique("lib"), reg.unique("app")
    reg.publish_ok(alice, lib, "1.0.0")
    reg.publish_ok(alice, app, "1.0.0", manifest=reg.default_manifest(app, "1.0.0", dependencies={lib: "1"}))
    before = reg.assert_ok(_point(reg, "last-year"))["downloads"]

    async def wipe(db):
        from sqlalchemy import delete

        from ketch.stats.models import Dependent

        async with db.write() as session:
            for model in (PackageDownloads, TotalDownloads, Dependent):
                await session.execute(delete(model))
    _in_app(reg, wipe)
    assert reg.assert_ok(_point(reg, "last-year"))["downloads"] == 0
    assert reg.assert_ok(_point(reg, "last-year", history))["downloads"] == 0

    seen: list[tuple[int, int]] = []

    async def run(db):
        async def progress(done, total):
            seen.append((done, total))
        await reindex.run(db, progress)
    _in_app(reg, run)
    assert reg.assert_ok(_point(reg, "last-year"))["downloads"] == before
    assert reg.assert_ok(_point(reg, "last-year", history))["downloads"] == 1124
    assert _read(reg, lambda s: services.dependent_counts(s, [lib])) == {lib: 1}
    assert seen and seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_concurrent_flushes_add_up(reg, alice):
    """Several flushes at once (as several workers would) neither lose nor double counts."""
    name = reg.unique("race")
    reg.publish_ok(alice, name, "1.0.0")

    async def flushes(db):
        async def one(i):
            async with db.write() as session:
                await services.add_downloads(db, session, {(name, "1.0.0", _day(3)): 1, (name, "1.0.0", _day(2)): i})
        await asyncio.gather(*(one(i) for i in range(10)))
    _in_app(reg, flushes)
    assert reg.assert_ok(_point(reg, "last-week", name))["downloads"] == 10 + sum(range(10))
