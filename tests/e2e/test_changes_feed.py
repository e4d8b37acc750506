"""The replication feed (``GET /_changes``) while the real npm client changes packages: the order
and kinds of changes, paging with since/limit, long polling, and private packages."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import unique

pytestmark = pytest.mark.e2e


def feed(registry, token: str | None = None, **params) -> dict:
    with registry.http(token) as client:
        resp = client.get("_changes", params=params, timeout=90.0)
    assert resp.status_code == 200, resp.text
    return resp.json()


def now(registry) -> int:
    return feed(registry, since="now")["last_seq"]


def test_npm_changes_appear_in_order_with_their_kinds_and_page_by_since_and_limit(
        registry, npm, make_user, make_package):
    name = unique("feed")
    start = now(registry)
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.1.0"))
    npm.run("dist-tag", "add", f"{name}@1.0.0", "stable")
    npm.run("dist-tag", "rm", name, "stable")
    npm.run("deprecate", f"{name}@1.0.0", "use 1.1.0")
    npm.run("owner", "add", make_user("co").name, name)
    rev_before_unpublish = registry.packument(name).json()["_rev"]
    npm.run("unpublish", name, "--force")

    everything = feed(registry, since=start)
    ours = [e for e in everything["results"] if e["id"] == name]
    assert [e["kind"] for e in ours] == ["publish", "publish", "dist-tag", "dist-tag", "deprecate", "owner",
                                         "unpublish"]
    assert [e["seq"] for e in ours] == sorted({e["seq"] for e in ours})
    assert ours[-2]["changes"] == [{"rev": rev_before_unpublish}]
    assert ours[-1]["deleted"] is True and not any("deleted" in e for e in ours[:-1])
    assert everything["last_seq"] == everything["results"][-1]["seq"]

    paged, since = [], start
    while True:
        page = feed(registry, since=since, limit=2)
        assert len(page["results"]) <= 2
        if not page["results"]:
            break
        paged += page["results"]
        since = page["last_seq"]
    assert paged == everything["results"]
    newest = feed(registry, descending="true", limit=1)["results"]
    assert newest == everything["results"][-1:]


def test_the_feed_answers_without_parameters_and_refuses_bad_ones(registry):
    with registry.http() as client:
        assert client.get("_changes").status_code == 200
        bad = client.get("_changes", params={"since": "yesterday"})
        assert bad.status_code == 400 and "since" in bad.json()["error"]
        assert client.get("_changes", params={"feed": "continuous"}).status_code == 400


def test_longpoll_wakes_on_a_publish_and_times_out_when_nothing_happens(registry, npm, make_package):
    started = time.monotonic()
    idle = feed(registry, since="now", feed="longpoll", timeout=1500)
    assert idle["results"] == [] and 1.4 <= time.monotonic() - started < 10

    name = unique("poll")
    package = make_package(name, "1.0.0")
    since = now(registry)
    answer: dict = {}
    poller = threading.Thread(target=lambda: answer.update(
        body=feed(registry, since=since, feed="longpoll", timeout=60000), at=time.monotonic()))
    poller.start()
    time.sleep(0.5)
    npm.publish(package)
    published = time.monotonic()
    poller.join(70)
    assert [e["id"] for e in answer["body"]["results"]] == [name]
    assert answer["at"] - published < 5


def test_private_packages_show_only_to_those_who_may_read_them(registry, npm, make_user, make_package):
    owner = npm.user
    secret, public = f"@{owner.name}/{unique('secret')}", unique("open")
    start = now(registry)
    npm.publish(make_package(secret, "1.0.0"), "--access", "restricted")
    npm.publish(make_package(public, "1.0.0"))

    def ids(token=None):
        return [e["id"] for e in feed(registry, token, since=start)["results"]]

    assert ids(owner.token) == [secret, public]
    assert ids() == [public]
    assert ids(make_user("stranger").token) == [public]
    npm.run("access", "set", "status=public", secret)  # now public: its whole history shows
    assert ids() == [secret, public, secret]
