"""Download counts end to end: real `npm install`s are counted (flushed in the background by every
worker process) and read back through npm's downloads API under /-/."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from conftest import escaped, unique

pytestmark = pytest.mark.e2e

FLUSH_WAIT = 20.0  # seconds; each worker flushes about every second


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def stats(server, path: str, token: str | None = None) -> httpx.Response:
    with server.http(token) as client:
        return client.get(path.lstrip("/"))


def wait_for_downloads(server, path: str, expected: int, token: str | None = None) -> dict:
    """Poll a point endpoint until it reports ``expected`` downloads (counts land after a flush)."""
    deadline = time.monotonic() + FLUSH_WAIT
    while True:
        resp = stats(server, path, token)
        assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text}"
        body = resp.json()
        if body["downloads"] == expected or time.monotonic() > deadline:
            assert body["downloads"] == expected, f"GET {path}: {body}"
            return body
        time.sleep(0.2)


def test_npm_installs_are_counted(registry, npm, npm_factory, make_package):
    name = unique("counted")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.1.0"))
    first = today()
    for spec in (name, name, f"{name}@1.0.0"):
        consumer = npm_factory()  # a fresh machine and npm cache: the tarball is fetched every time
        consumer.run("install", spec)
    last = today()
    period = f"{first}:{last}"

    body = wait_for_downloads(registry, f"-/downloads/point/{period}/{name}", 3)
    assert body == {"downloads": 3, "start": first, "end": last, "package": name}
    ranged = stats(registry, f"-/downloads/range/{period}/{name}").json()
    assert ranged["package"] == name and sum(d["downloads"] for d in ranged["downloads"]) == 3
    assert ranged["downloads"][-1]["day"] == last
    assert stats(registry, f"-/versions/{name}/{period}").json() == {
        "package": name, "downloads": {"1.0.0": 1, "1.1.0": 2}}
    # npm's own periods end with yesterday, the last complete day
    week = stats(registry, f"-/versions/{name}/last-week").json()
    assert week["package"] == name and set(week["downloads"]) == {"1.0.0", "1.1.0"}
    assert stats(registry, f"-/downloads/point/last-day/{name}").json()["end"] < today()
    total = stats(registry, f"-/downloads/point/{period}").json()
    assert "package" not in total and total["downloads"] >= 3
    bulk = stats(registry, f"-/downloads/point/{period}/{name},{unique('missing')}").json()
    assert bulk[name]["downloads"] == 3 and list(bulk.values())[1] is None


def test_private_package_stats_are_hidden_from_outsiders(registry, npm, npm_factory, make_package, make_user):
    name = f"@{npm.user.name}/{unique('secret')}"
    npm.publish(make_package(name, "1.0.0"), "--access", "restricted")
    first = today()
    npm_factory(npm.user).run("install", name)  # the owner, on another machine
    period = f"{first}:{today()}"
    wait_for_downloads(registry, f"-/downloads/point/{period}/{name}", 1, npm.user.token)
    assert stats(registry, f"-/versions/{escaped(name)}/{period}", npm.user.token).json() == {
        "package": name, "downloads": {"1.0.0": 1}}

    outsider = make_user("outsider")
    missing = f"@{npm.user.name}/{unique('never')}"
    for token in (None, outsider.token):
        for path in (f"-/downloads/point/{period}/{{}}", "-/downloads/range/last-week/{}",
                     "-/versions/{}/last-week"):
            hidden = stats(registry, path.format(name), token)
            absent = stats(registry, path.format(missing), token)
            assert hidden.status_code == absent.status_code == 404, path
            assert hidden.content == absent.content
        assert stats(registry, f"-/downloads/point/{period}/{name},x", token).json()[name] is None


def test_counts_from_several_workers_add_up_and_survive_a_restart(registry_factory, npm_factory, make_package):
    server = registry_factory.new("--workers", "2")
    owner = server.create_user()
    npm = npm_factory(owner, server=server)
    name = unique("busy")
    npm.publish(make_package(name, "1.0.0"))
    url = f"{name}/-/{name}-1.0.0.tgz"

    def fetch(_):
        with server.http() as client:  # a new connection each time, so both workers serve some
            return client.get(url).status_code

    first = today()
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(fetch, range(200))) == {200}
    npm_factory(server=server).run("install", name)
    period = f"{first}:{today()}"
    wait_for_downloads(server, f"-/downloads/point/{period}/{name}", 201)

    # Counted, then a clean stop right away: each worker flushes what it still holds on shutdown.
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(fetch, range(100))) == {200}
    server.stop()
    server.start()
    period = f"{first}:{today()}"
    assert stats(server, f"-/downloads/point/{period}/{name}").json()["downloads"] == 301
    assert stats(server, f"-/versions/{name}/{period}").json()["downloads"] == {"1.0.0": 301}
