"""Racing publishes against a real server, with one and with two worker processes (adversarial.md R01, R02).

Races resolve in the database: exactly one publish of a name@version wins, the losers get npm's
403 (or a 409), nothing is listed twice, the served tarball is the winner's, and publishes of
distinct versions never lose one another."""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx


def race(server, jobs: list) -> list[httpx.Response | Exception]:
    """Run ``jobs`` (callables taking a client), one thread each, all at once: every thread connects,
    then waits at a barrier, then sends."""
    threads = len(jobs)
    barrier = threading.Barrier(threads)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    def run(job):
        with server.client(limits=limits) as client:
            client.get("/-/ping")  # connect before the barrier, so the PUTs really overlap
            barrier.wait(timeout=60)
            try:
                return job(client)
            except Exception as exc:  # noqa: BLE001 - a dropped connection is a result too (and a failure below)
                return exc

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, jobs))


def _no_5xx_or_transport_errors(results) -> None:
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"{len(errors)} requests failed at the transport level: {errors[:3]!r}"
    fives = [(r.status_code, r.text[:200]) for r in results if r.status_code >= 500]
    assert not fives, f"{len(fives)} server errors: {fives[:3]}"


def test_r01_50_parallel_publishes_of_one_version_have_one_winner(shared_server):
    server = shared_server
    user = server.signup()
    name = server.unique("r01")  # a new name: creating the package races too
    bodies = [server.publish_body(name, "1.0.0", files={"nonce.txt": f"{i}-{server.unique()}".encode()}) for i in range(50)]
    assert len({server.body_integrity(b) for b in bodies}) == 50
    results = race(server, [lambda c, b=b: server.publish(c, user, b) for b in bodies])
    _no_5xx_or_transport_errors(results)
    statuses = [r.status_code for r in results]
    winners = [i for i, s in enumerate(statuses) if 200 <= s < 300]
    assert len(winners) == 1, f"{len(winners)} publishes of {name}@1.0.0 succeeded: {sorted(statuses)}"
    for i, resp in enumerate(results):
        if i != winners[0]:
            err = server.assert_npm_error(resp, 403, 409)
            if resp.status_code == 403:
                assert err["error"] == "You cannot publish over the previously published versions: 1.0.0.", err
    doc = server.packument(name)
    assert list(doc["versions"]) == ["1.0.0"]
    assert doc["dist-tags"] == {"latest": "1.0.0"}
    winner_integrity = server.body_integrity(bodies[winners[0]])
    assert doc["versions"]["1.0.0"]["dist"]["integrity"] == winner_integrity
    served = server.download(doc["versions"]["1.0.0"]["dist"]["tarball"])
    assert server.integrity_of(served) == winner_integrity
    assert hashlib.sha1(served).hexdigest() == doc["versions"]["1.0.0"]["dist"]["shasum"]
    with server.client() as c:
        abbreviated = c.get("/" + name, headers={"accept": "application/vnd.npm.install-v1+json"}).json()
    assert list(abbreviated["versions"]) == ["1.0.0"]


def test_r01_retry_storm_of_identical_bytes(shared_server):
    """Fifty clients retrying the very same publish: one 201, the rest npm's 403 (the P19 choice)."""
    server = shared_server
    user = server.signup()
    name = server.unique("r01b")
    server_body = server.publish_body(name, "1.0.0")
    results = race(server, [lambda c: server.publish(c, user, server_body)] * 30)
    _no_5xx_or_transport_errors(results)
    assert sorted(r.status_code for r in results) == [201] + [403] * 29, sorted(r.status_code for r in results)
    doc = server.packument(name)
    assert list(doc["versions"]) == ["1.0.0"]
    assert server.integrity_of(server.download(doc["versions"]["1.0.0"]["dist"]["tarball"])) == server.body_integrity(server_body)


def test_r01_users_racing_to_create_one_name_get_one_owner(shared_server):
    server = shared_server
    users = [server.signup() for _ in range(4)]
    name = server.unique("r01c")
    bodies = [server.publish_body(name, "1.0.0", files={"who": u.name.encode()}) for u in users]
    results = race(server, [lambda c, u=u, b=b: server.publish(c, u, b) for u, b in zip(users, bodies)])
    _no_5xx_or_transport_errors(results)
    winners = [i for i, r in enumerate(results) if r.status_code < 300]
    assert len(winners) == 1, [r.status_code for r in results]
    for i, resp in enumerate(results):
        if i != winners[0]:
            server.assert_npm_error(resp, 403, 409)
    doc = server.packument(name)
    assert [m["name"] for m in doc["maintainers"]] == [users[winners[0]].name]
    assert doc["versions"]["1.0.0"]["_npmUser"]["name"] == users[winners[0]].name
    assert doc["versions"]["1.0.0"]["dist"]["integrity"] == server.body_integrity(bodies[winners[0]])


def test_r02_30_parallel_publishes_of_distinct_versions_lose_nothing(shared_server):
    server = shared_server
    user = server.signup()
    name = server.unique("r02")
    with server.client() as c:  # the package exists first, so the race is purely about versions
        assert server.publish(c, user, server.publish_body(name, "0.0.1")).status_code == 201
    versions = [f"1.{i}.0" for i in range(30)]
    bodies = {v: server.publish_body(name, v) for v in versions}
    results = race(server, [lambda c, b=bodies[v]: server.publish(c, user, b) for v in versions])
    _no_5xx_or_transport_errors(results)
    assert [r.status_code for r in results] == [201] * 30, [(r.status_code, r.text[:100]) for r in results]
    doc = server.packument(name)
    assert set(doc["versions"]) == {"0.0.1", *versions}, sorted(set(versions) - set(doc["versions"]))
    assert set(doc["time"]) >= {"created", "modified", "0.0.1", *versions}
    assert doc["dist-tags"]["latest"] in versions
    for v in (versions[0], versions[-1]):
        assert server.integrity_of(server.download(doc["versions"][v]["dist"]["tarball"])) == server.body_integrity(bodies[v])


def test_r02_parallel_first_publishes_of_distinct_versions(shared_server):
    """The package does not exist yet: 20 versions race to create it. Every one must land."""
    server = shared_server
    user = server.signup()
    name = server.unique("r02b")
    versions = [f"2.{i}.0" for i in range(20)]
    results = race(server, [lambda c, v=v: server.publish(c, user, server.publish_body(name, v)) for v in versions])
    _no_5xx_or_transport_errors(results)
    statuses = [r.status_code for r in results]
    # Every version is new; a publish may only lose a race it can retry (409), never silently vanish.
    assert all(s in (201, 409) for s in statuses), statuses
    doc = server.packument(name)
    landed = {v for v, s in zip(versions, statuses) if s == 201}
    assert set(doc["versions"]) == landed
    assert statuses.count(201) == 20, f"only {statuses.count(201)} of 20 first publishes landed: {statuses}"


def test_r02_mixed_writes_keep_the_documents_consistent(shared_server):
    """Publishes, dist-tag moves and deprecations racing on one package; the stored documents must
    equal what the rows say (checked by fsck at module teardown) and no publish may be lost."""
    server = shared_server
    user = server.signup()
    name = server.unique("r02c")
    with server.client() as c:
        assert server.publish(c, user, server.publish_body(name, "0.1.0")).status_code == 201
    versions = [f"3.{i}.0" for i in range(12)]

    def tag(c, i):
        return c.put(f"/-/package/{name}/dist-tags/t{i}", content=b'"0.1.0"',
                     headers={"content-type": "application/json", **user.auth})

    def deprecate(c, i):
        doc = c.get(f"/{name}?write=true").json()
        doc["versions"]["0.1.0"]["deprecated"] = f"msg {i}"
        return c.put(f"/{name}", content=json.dumps(doc).encode(),
                     headers={"content-type": "application/json", **user.auth})

    jobs = [lambda c, v=v: server.publish(c, user, server.publish_body(name, v)) for v in versions]
    jobs += [lambda c, i=i: tag(c, i) for i in range(6)]
    jobs += [lambda c, i=i: deprecate(c, i) for i in range(6)]
    results = race(server, jobs)
    _no_5xx_or_transport_errors(results)
    assert [r.status_code for r in results[:12]] == [201] * 12
    assert all(r.status_code in (200, 201) for r in results[12:18]), [r.text for r in results[12:18]]
    # a deprecate PUT carries the _rev it read: losing that race is a 409, which npm reports
    assert all(r.status_code in (200, 201, 409) for r in results[18:]), [r.text for r in results[18:]]
    doc = server.packument(name)
    assert set(doc["versions"]) == {"0.1.0", *versions}
    assert {f"t{i}" for i in range(6)} <= set(doc["dist-tags"])
