"""Crash safety and `ketch fsck` (adversarial.md R07, R08, R13).

`kill -9` of the whole server process group at random moments of a publish loop (small publishes,
2 MB uploads and dist-tag moves in parallel), restart on the same data, and then: fsck finds nothing, every acknowledged publish downloads with its integrity, and a
client retrying an unacknowledged publish gets either 201 or npm's republish 403 — in which case the
version that survived is byte-identical to that very request. fsck itself must catch each kind of
damage and name it."""

from __future__ import annotations

import json
import random
import threading
import time

import httpx

ROUNDS = 3


class Publisher(threading.Thread):
    """Publishes new versions of one package in a loop until stopped or the server goes away, and
    records which versions were acknowledged (2xx) and which got no answer."""

    def __init__(self, server, user, name: str, major: int, stop: threading.Event, round_no: int, payload: int = 0):
        super().__init__(daemon=True)
        self.server, self.user, self.name, self.major, self.stop, self.round_no = server, user, name, major, stop, round_no
        self.payload = payload  # bytes of incompressible data per tarball: big uploads get killed mid-body
        self.acked: dict[str, str] = {}       # version -> integrity
        self.unanswered: dict[str, dict] = {}  # version -> the body whose answer never came
        self.refused: list[tuple[str, int, str]] = []

    def run(self):
        with self.server.client(timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                version = f"{self.major}.{self.round_no}.{n}"
                files = {"n": version.encode()}
                if self.payload:
                    files["blob.bin"] = random.randbytes(self.payload)
                body = self.server.publish_body(self.name, version, files=files)
                try:
                    resp = self.server.publish(client, self.user, body)
                except httpx.HTTPError:
                    self.unanswered[version] = body
                    return
                if 200 <= resp.status_code < 300:
                    self.acked[version] = self.server.body_integrity(body)
                else:
                    self.refused.append((version, resp.status_code, resp.text[:200]))
                n += 1


class Tagger(threading.Thread):
    """Moves a dist-tag around the acknowledged versions, so packument rebuilds race the kill too."""

    def __init__(self, server, user, name: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.server, self.user, self.name, self.stop = server, user, name, stop

    def run(self):
        with self.server.client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    tags = client.get(f"/-/package/{self.name}/dist-tags")
                    if tags.status_code == 200:
                        client.put(f"/-/package/{self.name}/dist-tags/moving",
                                   content=json.dumps(tags.json()["latest"]).encode(),
                                   headers={"content-type": "application/json", **self.user.auth})
                except httpx.HTTPError:
                    return


def test_r07_r08_kill_9_mid_publish_then_restart(server_factory):
    rng = random.Random(20261125)
    server = server_factory()  # granian's master and its worker: kill -9 takes the whole process group
    user = server.signup("crash")
    names = [server.unique("crash"), f"@{user.name}/{server.unique('cs')}"]
    acked: dict[tuple[str, str], str] = {}
    unanswered: dict[tuple[str, str], dict] = {}
    with server.client() as c:
        for name in names:
            body = server.publish_body(name, "0.0.1")
            assert server.publish(c, user, body).status_code == 201
            acked[(name, "0.0.1")] = server.body_integrity(body)

    for round_no in range(ROUNDS):
        stop = threading.Event()
        threads = [Publisher(server, user, name, major, stop, round_no) for name in names for major in (1, 2)]
        threads.append(Publisher(server, user, names[1], 3, stop, round_no, payload=1_500_000))
        threads.append(Tagger(server, user, names[0], stop))
        for t in threads:
            t.start()
        # let the loop get going (a slow machine must not turn this into a test of nothing), then kill
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(len(t.acked) for t in threads if isinstance(t, Publisher)) < 2:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.8))
        server.kill()  # SIGKILL to the process group, in the middle of whatever it was doing
        stop.set()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive()
        for t in threads:
            if isinstance(t, Publisher):
                # a new version is never refused; at most a lost race the client may retry
                assert all(status == 409 for _, status, _ in t.refused), t.refused
                acked.update({(t.name, v): i for v, i in t.acked.items()})
                unanswered.update({(t.name, v): b for v, b in t.unanswered.items()})
        server.start()  # same data directory, same database

    assert len(acked) > 2 * len(names), "the publish loop acknowledged almost nothing; the test proves little"

    # nothing lost: every acknowledged version is served, with its integrity
    for name in names:
        doc = server.packument(name)
        assert doc is not None
        served = set(doc["versions"])
        expected = {v for (n, v) in acked if n == name}
        assert expected <= served, f"acknowledged but lost: {sorted(expected - served)}"
        assert doc["dist-tags"]["latest"] in served
        assert all(target in served for target in doc["dist-tags"].values()), doc["dist-tags"]
        for version in served:
            dist = doc["versions"][version]["dist"]
            data = server.download(dist["tarball"])
            assert server.integrity_of(data) == dist["integrity"], f"{name}@{version}"
            if (name, version) in acked:
                assert dist["integrity"] == acked[(name, version)]
        # nothing invented: a served version is one that some request actually sent
        sent = expected | {v for (n, v) in unanswered if n == name}
        assert served <= sent, f"versions nobody published: {sorted(served - sent)}"

    # the client's retry of a publish whose answer was lost (R08 / P19)
    with server.client() as c:
        for (name, version), body in unanswered.items():
            resp = server.publish(c, user, body)
            if resp.status_code == 403:
                err = server.assert_npm_error(resp, 403)
                assert err["error"] == f"You cannot publish over the previously published versions: {version}."
                doc = server.packument(name)
                assert doc["versions"][version]["dist"]["integrity"] == server.body_integrity(body)
            else:
                assert resp.status_code == 201, resp.text

    server.stop()
    result = server.fsck()
    assert result.returncode == 0, f"fsck after {ROUNDS} hard kills:\n{result.stdout}\n{result.stderr}"


# ---- fsck catches and names each kind of damage ------------------------------------------------

def _blob_path(server, integrity: str):
    import base64

    hexdigest = base64.b64decode(integrity.split("-", 1)[1]).hex()
    return server.data_dir / "tarballs" / "sha512" / hexdigest[:2] / hexdigest[2:4] / hexdigest


def test_fsck_names_every_violation(server_factory):
    server = server_factory()
    user = server.signup("fsck")
    kinds = ("corrupt", "deleted", "truncated", "emptied", "edited", "edited-abbrev", "dangling", "untagged",
             "unpublished", "healthy")
    names = {kind: server.unique(kind) for kind in kinds}
    integrity = {}
    with server.client() as c:
        for kind, name in names.items():
            # two versions where the test checks that only the damaged one is blamed
            for version in ("1.0.0", "1.1.0") if kind in ("corrupt", "deleted", "truncated") else ("1.0.0",):
                body = server.publish_body(name, version, files={"k": f"{kind}{version}".encode()})
                assert server.publish(c, user, body).status_code == 201, kind
                integrity[(kind, version)] = server.body_integrity(body)
        gone = names["unpublished"]
        rev = c.get(f"/{gone}?write=true").json()["_rev"]
        assert c.delete(f"/{gone}/-rev/{rev}", headers=user.auth).status_code == 200
    server.stop()
    clean = server.fsck()
    assert clean.returncode == 0, f"fsck of an undamaged registry:\n{clean.stdout}\n{clean.stderr}"

    # 1. stored blobs: bytes flipped, file deleted, truncated, emptied
    path = _blob_path(server, integrity[("corrupt", "1.0.0")])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _blob_path(server, integrity[("deleted", "1.1.0")]).unlink()
    path = _blob_path(server, integrity[("truncated", "1.0.0")])
    path.write_bytes(path.read_bytes()[:10])
    _blob_path(server, integrity[("emptied", "1.0.0")]).write_bytes(b"")
    # 2. stored packument rows edited
    server.db_execute("UPDATE packuments SET \"full\" = :doc WHERE name = :name",
                      doc=json.dumps({"name": names["edited"], "versions": {}}).encode(), name=names["edited"])
    server.db_execute("UPDATE packuments SET abbreviated = :doc WHERE name = :name",
                      doc=b'{"name":"x"}', name=names["edited-abbrev"])
    # 3. a dist-tag points at a version that does not exist; another package lost its latest tag
    server.db_execute("UPDATE dist_tags SET version = '9.9.9' WHERE tag = 'latest' AND package_id = "
                      "(SELECT id FROM packages WHERE name = :name)", name=names["dangling"])
    server.db_execute("DELETE FROM dist_tags WHERE tag = 'latest' AND package_id = "
                      "(SELECT id FROM packages WHERE name = :name)", name=names["untagged"])
    # 4. an unpublished package still has a stored document (copied from a healthy one)
    healthy_id = server.db_execute("SELECT id FROM packages WHERE name = :n", n=names["healthy"])[0][0]
    gone_id = server.db_execute("SELECT id FROM packages WHERE name = :n", n=gone)[0][0]
    row = server.db_execute('SELECT etag, modified, access, "full", abbreviated FROM packuments '
                            "WHERE package_id = :p", p=healthy_id)[0]
    server.db_execute('INSERT INTO packuments (package_id, name, etag, modified, access, "full", abbreviated) '
                      "VALUES (:p, :n, :e, :m, :a, :f, :b)", p=gone_id, n=gone, e=row[0], m=row[1], a=row[2],
                      f=row[3], b=row[4])

    result = server.fsck()
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"fsck exit status {result.returncode}:\n{output}"
    lines = [line for line in result.stdout.splitlines() if line.strip()]

    def named(name: str, *words: str) -> bool:
        return any(name in line and all(w in line for w in words) for line in lines)

    assert named(names["corrupt"], "1.0.0", "integrity"), output
    assert named(names["deleted"], "1.1.0", "missing"), output
    assert named(names["truncated"], "1.0.0"), output
    assert named(names["emptied"], "1.0.0"), output
    assert named(names["edited"], "full packument"), output
    assert named(names["edited-abbrev"], "abbreviated packument"), output
    assert named(names["dangling"], "latest", "9.9.9"), output
    assert named(names["untagged"], "latest"), output
    assert named(gone, "unpublished"), output
    assert not named(names["healthy"]), f"fsck blamed a healthy package:\n{output}"
    for kind in ("corrupt", "truncated"):
        assert not named(names[kind], "1.1.0"), output
    assert not named(names["deleted"], "1.0.0"), output

    # the server still starts and serves what is intact; damage is fsck's to report, not a crash
    server.start()
    assert server.packument(names["healthy"]) is not None
    with server.client() as c:
        resp = c.get(f"/{names['deleted']}/-/{names['deleted']}-1.1.0.tgz")
        assert resp.status_code in (404, 503) and resp.headers["content-type"].startswith("application/json"), resp.text
