"""Two stateless nodes on one PostgreSQL and one bucket behave as one registry."""

from __future__ import annotations

import concurrent.futures
import hashlib
import base64
import time

import httpx

ABBREVIATED = "application/vnd.npm.install-v1+json"


def test_publish_through_a_is_visible_through_b_at_once(cluster):
    a, b = cluster
    user = a.signup("rw")
    name = a.unique("rw")
    with a.client() as ca, b.client() as cb:
        for i in range(60):
            version = f"1.{i}.0"
            body = a.publish_body(name, version)
            assert a.publish(ca, user, body).status_code == 201
            # The very next request on the other node must see it: no stale in-process copy.
            full = cb.get("/" + name)
            corgi = cb.get("/" + name, headers={"accept": ABBREVIATED})
            assert full.status_code == 200 and version in full.json()["versions"], f"stale full packument at {version}"
            assert version in corgi.json()["versions"], f"stale abbreviated packument at {version}"
        tarball = cb.get(full.json()["versions"]["1.59.0"]["dist"]["tarball"])
        assert tarball.status_code == 200
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.content).digest()).decode()
        assert digest == full.json()["versions"]["1.59.0"]["dist"]["integrity"]


def test_racing_publishes_across_nodes_have_one_winner(cluster):
    a, b = cluster
    user = a.signup("race")
    name = a.unique("race")
    bodies = [a.publish_body(name, "1.0.0", files={"index.js": f"module.exports = {i};".encode()}) for i in range(16)]

    def put(i: int) -> int:
        node = (a, b)[i % 2]
        with node.client() as c:
            return node.publish(c, user, bodies[i]).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(put, range(16)))
    assert statuses.count(201) == 1, statuses
    assert all(s in (403, 409) for s in statuses if s != 201), statuses
    with b.client() as cb:
        doc = cb.get("/" + name).json()
    assert list(doc["versions"]) == ["1.0.0"]
    winner = next(bodies[i] for i, s in enumerate(statuses) if s == 201)
    assert doc["versions"]["1.0.0"]["dist"]["integrity"] == a.body_integrity(winner)


def test_distinct_versions_through_both_nodes_are_all_kept(cluster):
    a, b = cluster
    user = a.signup("many")
    name = a.unique("many")

    def put(i: int) -> int:
        node = (a, b)[i % 2]
        with node.client() as c:
            return node.publish(c, user, a.publish_body(name, f"2.{i}.0")).status_code

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(put, range(24)))
    assert statuses == [201] * 24
    for node in (a, b):
        with node.client() as c:
            assert len(c.get("/" + name).json()["versions"]) == 24


def test_login_and_revocation_reach_every_node(cluster):
    a, b = cluster
    user = a.signup("sess")
    with a.client() as ca, b.client() as cb:
        assert cb.get("/-/whoami", headers=user.auth).json() == {"username": user.name}
        listed = ca.get("/-/npm/v1/tokens", headers=user.auth).json()["objects"]
        key = listed[0]["key"]
        assert ca.delete(f"/-/npm/v1/tokens/token/{key}", headers=user.auth).status_code == 204
        deadline = time.monotonic() + 1.5  # revocation must reach every node within a second
        while time.monotonic() < deadline and cb.get("/-/whoami", headers=user.auth).status_code == 200:
            time.sleep(0.05)
        assert cb.get("/-/whoami", headers=user.auth).status_code == 401


def test_web_login_started_on_one_node_finishes_on_another(cluster):
    a, b = cluster
    user = a.signup("web")
    with a.client() as ca, httpx.Client(trust_env=False, timeout=30) as browser:
        start = ca.post("/-/v1/login", json={}).json()
        page = browser.get(start["loginUrl"].replace(a.url, b.url))
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        done = browser.post(start["loginUrl"].replace(a.url, b.url),
                            data={"csrf": csrf, "username": user.name, "password": user.password})
        assert done.status_code == 200, done.text
        token = ca.get(start["doneUrl"]).json()["token"]
    with b.client() as cb:
        assert cb.get("/-/whoami", headers={"authorization": f"Bearer {token}"}).json()["username"] == user.name
