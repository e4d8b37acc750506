"""Moving a registry's data with the operator commands, end to end on real processes.

* ``ketch migrate-storage``: an embedded registry (SQLite + files), built through the HTTP API by a
  real server, is copied into a fresh PostgreSQL database on the machine's server and a SeaweedFS
  bucket; Ketch started on the target serves the same documents and bytes, keeps accounts, tokens,
  organisations and access rules, and the real npm installs from it. Its verification pass names a
  blob that is missing or corrupt in the target; a non-empty target database is refused; a run
  that fails half-way leaves the target database empty, so running it again just works.
* ``ketch backup`` while the server runs, then ``ketch restore`` into an empty data dir.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.integrity.conftest import KetchServer, User
from tests.scale.conftest import SHARED_PG, Node, _sql
from tests.support.seaweed import ACCESS_KEY, REGION, SECRET_KEY

BUCKET = "ketch-migrate"
CLI_TIMEOUT = 300
ABBREVIATED = "application/vnd.npm.install-v1+json"


class EmbeddedServer(KetchServer):
    """Always SQLite + files under its data dir, whatever KETCH_TEST_DATABASE_URL says."""

    def __init__(self, base: Path, workers: int = 1):
        self.base = base
        self.data_dir = base / "data"
        self.log_path = base / "server.log"
        self.workers = workers
        self.extra_env = {}
        self.proc = None
        self.port = 0
        self.database = None
        self.database_url = None


def _s3_env(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION}


def ketch_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("KETCH_", "AWS_"))}
    full_env.update(env or {})
    full_env["COLUMNS"] = "1000"  # rich wraps its messages at the terminal width (80 without one)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                           os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "ketch", *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=CLI_TIMEOUT, check=False)


def _out(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


# ---- the source registry -------------------------------------------------------------------------

@dataclass
class Source:
    server: EmbeddedServer
    alice: User          # org owner, publishes everything
    bob: User            # plain user, outside the org
    readonly_token: str  # a named read-only token of alice's
    org: str
    lib: str             # public: deprecated, unpublished, prerelease-tagged versions
    app: str             # public, depends on lib
    secret: str          # @org/…, restricted
    unpublished: str     # a whole package unpublished
    tarballs: dict[str, bytes] = field(default_factory=dict)   # integrity -> bytes
    documents: dict = field(default_factory=dict)              # (name, accept) -> JSON text as alice saw it
    anonymous: dict = field(default_factory=dict)              # name -> status for an anonymous GET

    @property
    def live(self) -> list[str]:
        return [self.lib, self.app, self.secret]


def _tarball(name: str, version: str, extra: dict | None = None) -> tuple[dict, bytes]:
    manifest = {"name": name, "version": version, "description": f"{name} {version}", "license": "MIT",
                "main": "index.js", **(extra or {})}
    files = {"index.js": f"module.exports = {json.dumps(name + '@' + version)};\n".encode(),
             "data.bin": os.urandom(2048)}
    return manifest, KetchServer.make_tarball(manifest, files)


def _publish(server: KetchServer, c: httpx.Client, user: User, name: str, version: str, *, tag: str = "latest",
             access: str | None = None, extra: dict | None = None, tarballs: dict | None = None) -> None:
    manifest, tarball = _tarball(name, version, extra)
    body = server.publish_body(name, version, manifest=manifest, tarball=tarball, tag=tag)
    body["access"] = access
    resp = server.publish(c, user, body)
    assert resp.status_code == 201, f"publish {name}@{version}: {resp.status_code} {resp.text}"
    if tarballs is not None:
        tarballs[server.body_integrity(body)] = tarball


def _build_source(base: Path) -> Source:
    server = EmbeddedServer(base)
    server.start()
    alice, bob = server.signup("alice"), server.signup("bob")
    org = server.unique("org")
    created = ketch_cli("org", "create", org, "--owner", alice.name, "--data-dir", str(server.data_dir))
    assert created.returncode == 0, _out(created)
    src = Source(server=server, alice=alice, bob=bob, readonly_token="", org=org, lib=server.unique("lib"),
                 app=server.unique("app"), secret=f"@{org}/secret", unpublished=server.unique("gone"))
    t = src.tarballs
    with server.client() as c:
        resp = c.put(f"/-/org/{org}/user", json={"user": bob.name, "role": "developer"}, headers=alice.auth)
        assert resp.status_code == 201, resp.text
        resp = c.request("DELETE", f"/-/org/{org}/user", json={"user": bob.name}, headers=alice.auth)
        assert resp.status_code == 200, resp.text  # bob was in, and left: both ends audited
        resp = c.post("/-/npm/v1/tokens", json={"password": alice.password, "readonly": True, "name": "ci"},
                      headers=alice.auth)
        assert resp.status_code == 201, resp.text
        src.readonly_token = resp.json()["token"]

        for version in ("1.0.0", "1.1.0", "1.2.0"):
            _publish(server, c, alice, src.lib, version, tarballs=t)
        _publish(server, c, alice, src.lib, "2.0.0-beta.1", tag="beta", tarballs=t)
        resp = c.put(f"/-/package/{src.lib}/dist-tags/stable", content=b'"1.0.0"',
                     headers={"content-type": "application/json", **alice.auth})
        assert resp.status_code in (200, 201), resp.text
        # npm deprecate: the write view back, with a message on 1.0.0
        doc = c.get(f"/{src.lib}?write=true", headers=alice.auth).json()
        doc["versions"]["1.0.0"]["deprecated"] = "use 1.2 instead"
        resp = c.put(f"/{src.lib}", content=json.dumps(doc).encode(),
                     headers={"content-type": "application/json", **alice.auth})
        assert resp.status_code in (200, 201), resp.text
        # npm unpublish lib@1.1.0: the document without that version, under its _rev
        doc = c.get(f"/{src.lib}?write=true", headers=alice.auth).json()
        del doc["versions"]["1.1.0"]
        resp = c.put(f"/{src.lib}/-rev/{doc['_rev']}", content=json.dumps(doc).encode(),
                     headers={"content-type": "application/json", **alice.auth})
        assert resp.status_code in (200, 201), resp.text

        _publish(server, c, alice, src.app, "1.0.0", extra={"dependencies": {src.lib: "^1.0.0"}}, tarballs=t)
        _publish(server, c, alice, src.secret, "1.0.0", access="restricted", tarballs=t)
        _publish(server, c, alice, src.secret, "1.1.0", tarballs=t)
        _publish(server, c, alice, src.unpublished, "1.0.0", tarballs=t)
        rev = c.get(f"/{src.unpublished}?write=true", headers=alice.auth).json()["_rev"]
        assert c.delete(f"/{src.unpublished}/-rev/{rev}", headers=alice.auth).status_code == 200
        assert c.put(f"/{src.lib}", json={"_id": src.lib, "users": {bob.name: True}},
                     headers={"npm-command": "star", **bob.auth}).status_code in (200, 201)

    lib = server.packument(src.lib)
    assert sorted(lib["versions"]) == ["1.0.0", "1.2.0", "2.0.0-beta.1"], lib["versions"].keys()
    assert lib["versions"]["1.0.0"]["deprecated"] == "use 1.2 instead"
    assert lib["dist-tags"] == {"latest": "1.2.0", "beta": "2.0.0-beta.1", "stable": "1.0.0"}
    src.documents = snapshot(server, src)
    src.anonymous = anonymous_statuses(server, src)
    assert src.anonymous[src.secret] == 404 and src.anonymous[src.unpublished] == 404
    server.stop()
    fsck = server.fsck()
    assert fsck.returncode == 0, _out(fsck)
    return src


def snapshot(server: KetchServer, src: Source) -> dict:
    """Every live package's full and abbreviated packument as alice sees it, as text with this
    server's own address replaced by a placeholder (tarball URLs follow the request's Host)."""
    docs = {}
    with server.client() as c:
        for name in src.live:
            for accept in ("application/json", ABBREVIATED):
                resp = c.get("/" + server.escaped(name), headers={"accept": accept, **src.alice.auth})
                assert resp.status_code == 200, f"{name}: {resp.status_code} {resp.text}"
                docs[(name, accept)] = resp.text.replace(server.url, "http://REGISTRY")
    return docs


def anonymous_statuses(server: KetchServer, src: Source) -> dict[str, int]:
    with server.client() as c:
        return {name: c.get("/" + server.escaped(name)).status_code
                for name in [*src.live, src.unpublished]}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Source:
    src = _build_source(tmp_path_factory.mktemp("source"))
    yield src
    src.server.stop()


# ---- targets ---------------------------------------------------------------------------------

@dataclass
class Target:
    database: str
    database_url: str
    storage_url: str
    env: dict[str, str]
    base: Path

    def node(self) -> Node:
        return Node(self.base / f"node-{uuid.uuid4().hex[:6]}", database_url=self.database_url,
                    storage_url=self.storage_url, s3_endpoint=self.env["AWS_ENDPOINT_URL"])

    def migrate(self, src: Source, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return ketch_cli("migrate-storage", "--data-dir", str(src.server.data_dir),
                         "--to-database-url", self.database_url, "--to-storage-url", self.storage_url, *extra,
                         env={**self.env, **(env or {})})

    def blob_store(self):
        from ketch.blobs.s3 import S3BlobStore

        return S3BlobStore.from_url(self.storage_url, endpoint_url=self.env["AWS_ENDPOINT_URL"],
                                    access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, region=REGION)


@pytest.fixture(scope="module")
def new_target(tmp_path_factory, seaweed):
    """``new_target()`` → a fresh PostgreSQL database on the machine's server and a fresh bucket
    prefix in this module's SeaweedFS; the databases are dropped at the end."""
    endpoint, _ = seaweed
    created: list[str] = []

    def make() -> Target:
        name = "ketch_migrate_" + uuid.uuid4().hex[:10]
        try:
            asyncio.run(_sql(SHARED_PG + "/postgres", f'CREATE DATABASE "{name}"'))
        except OSError as exc:
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required for the migration tests: {exc}")
        created.append(name)
        return Target(database=name, database_url=f"{SHARED_PG}/{name}", storage_url=f"s3://{BUCKET}/{name}",
                      env=_s3_env(endpoint), base=tmp_path_factory.mktemp(name))

    yield make
    for name in created:
        asyncio.run(_sql(SHARED_PG + "/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def migrated(source, new_target):
    """The source migrated once (the run must succeed and say so), and a node serving the target."""
    target = new_target()
    result = target.migrate(source)
    assert result.returncode == 0, _out(result)
    assert "migration verified: no problems found" in result.stderr, _out(result)
    assert "copying tarballs" in result.stderr  # the progress display
    node = target.node()
    node.start()
    yield target, node
    node.stop()


# ---- migrate-storage ---------------------------------------------------------------------------

def test_migrated_registry_serves_the_same_documents_and_bytes(source, migrated):
    _, node = migrated
    assert snapshot(node, source) == source.documents  # byte for byte, up to the server's address
    assert anonymous_statuses(node, source) == source.anonymous
    with node.client() as c:
        for name in source.live:
            doc = c.get("/" + node.escaped(name), headers=source.alice.auth).json()
            for version, meta in doc["versions"].items():
                dist = meta["dist"]
                assert dist["tarball"].startswith(node.url), dist["tarball"]
                resp = c.get(dist["tarball"], headers=source.alice.auth)
                assert resp.status_code == 200, f"{name}@{version}: {resp.status_code}"
                data = resp.content
                assert hashlib.sha1(data).hexdigest() == dist["shasum"]
                assert "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode() == dist["integrity"]
                assert source.tarballs[dist["integrity"]] == data
        # what is gone stays gone: the unpublished version's file and the unpublished package
        assert c.get(f"/{source.lib}/-/{source.lib}-1.1.0.tgz").status_code == 404
        assert c.get(f"/{source.unpublished}/-/{source.unpublished}-1.0.0.tgz").status_code == 404
        # the private package: not even its tarball for anonymous or for bob
        secret_tgz = f"/{source.secret}/-/secret-1.0.0.tgz"
        assert c.get(secret_tgz).status_code == 404
        assert c.get(secret_tgz, headers=source.bob.auth).status_code == 404
        assert c.get("/" + node.escaped(source.secret), headers=source.bob.auth).status_code == 404
        assert c.get(secret_tgz, headers=source.alice.auth).status_code == 200


def test_accounts_tokens_and_orgs_survive_the_migration(source, migrated):
    _, node = migrated
    with node.client() as c:
        for user in (source.alice, source.bob):
            resp = c.get("/-/whoami", headers=user.auth)
            assert resp.status_code == 200 and resp.json()["username"] == user.name, resp.text
        readonly = {"authorization": f"Bearer {source.readonly_token}"}
        assert c.get("/-/whoami", headers=readonly).json()["username"] == source.alice.name
        assert c.get("/" + node.escaped(source.secret), headers=readonly).status_code == 200
        refused = node.publish(c, User(source.alice.name, "", source.readonly_token),
                               node.publish_body(source.lib, "9.0.0"))
        assert refused.status_code == 403, refused.text
        # passwords (their hashes) came along: a fresh login works
        resp = c.put(f"/-/user/org.couchdb.user:{source.bob.name}",
                     json={"name": source.bob.name, "password": source.bob.password})
        assert resp.status_code == 201, resp.text
        members = c.get(f"/-/org/{source.org}/user", headers=source.alice.auth)
        assert members.status_code == 200 and members.json() == {source.alice.name: "owner"}, members.text
        # the target keeps going: new rows get fresh ids (PostgreSQL sequences moved past the copy)
        carol = node.signup("carol")
        later, mine = f"@{source.org}/later", node.unique("new")
        _publish(node, c, source.alice, later, "1.0.0", access="restricted")  # the org's scope is still hers
        _publish(node, c, carol, mine, "1.0.0")
        assert c.get("/-/whoami", headers=carol.auth).json()["username"] == carol.name
        assert c.get("/" + node.escaped(later)).status_code == 404
        assert c.get("/" + node.escaped(later), headers=source.alice.auth).status_code == 200
    assert list(node.packument(mine)["versions"]) == ["1.0.0"]


def test_npm_installs_from_the_migrated_registry(source, migrated, tmp_path):
    _, node = migrated
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("`npm` is not on PATH; this test drives the real client", pytrace=False)
    home, project = tmp_path / "home", tmp_path / "project"
    for d in (home / ".config", home / ".cache", home / "tmp", project):
        d.mkdir(parents=True)
    npmrc = home / ".npmrc"
    npmrc.write_text(f"registry={node.url}/\n//127.0.0.1:{node.port}/:_authToken={source.alice.token}\n"
                     "update-notifier=false\naudit=false\nfund=false\nprogress=false\n")
    (tmp_path / "global-npmrc").write_text("")
    (project / "package.json").write_text(json.dumps({"name": "consumer", "version": "1.0.0", "private": True}))
    dead_proxy = "http://127.0.0.1:9"  # any host but loopback fails at once: no real network
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(home / "tmp"),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"), "NO_COLOR": "1",
           "http_proxy": dead_proxy, "https_proxy": dead_proxy, "HTTP_PROXY": dead_proxy,
           "HTTPS_PROXY": dead_proxy, "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    cmd = [npm, "install", source.app, f"{source.secret}@1.0.0", f"{source.lib}@beta",
           "--userconfig", str(npmrc), "--globalconfig", str(tmp_path / "global-npmrc"),
           "--cache", str(tmp_path / "npm-cache")]
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, f"npm install failed\n{proc.stdout}\n{proc.stderr}\n{node.log_tail()}"

    def installed(*path: str) -> dict:
        return json.loads(project.joinpath("node_modules", *path, "package.json").read_text())

    assert installed(source.app)["version"] == "1.0.0"
    assert installed(*source.secret.split("/"))["version"] == "1.0.0"
    assert installed(source.lib)["version"] == "2.0.0-beta.1"  # the top level asked for the beta tag
    # so app's own ^1.0.0 is nested: the newest 1.x, never the unpublished 1.1.0
    nested = project / "node_modules" / source.app / "node_modules" / source.lib / "package.json"
    assert json.loads(nested.read_text())["version"] == "1.2.0"
    lock = json.loads((project / "package-lock.json").read_text())
    for path, meta in lock["packages"].items():
        if path:
            assert meta["resolved"].startswith(node.url + "/"), (path, meta)
            assert meta["integrity"] in source.tarballs, (path, meta)


def test_verification_names_missing_and_corrupt_blobs(source, new_target):
    target = new_target()
    first = target.migrate(source)
    assert first.returncode == 0, _out(first)
    lib = json.loads(source.documents[(source.lib, "application/json")])
    keys = {v: _key(lib["versions"][v]["dist"]["integrity"]) for v in ("1.2.0", "2.0.0-beta.1")}
    store = target.blob_store()

    async def damage() -> None:
        await store.delete(keys["1.2.0"])
        data = bytearray(await store.get(keys["2.0.0-beta.1"]))
        data[len(data) // 2] ^= 0xFF
        await store.put(keys["2.0.0-beta.1"], bytes(data))

    asyncio.run(damage())
    check = target.migrate(source, "--verify-only")
    assert check.returncode == 1, _out(check)
    fails = [line for line in check.stdout.splitlines() if line.startswith("FAIL ")]
    assert f"FAIL blob {keys['1.2.0']}: missing in the target" in fails, _out(check)
    assert f"FAIL blob {keys['2.0.0-beta.1']}: content does not match its SHA-512 key in the target" in fails, \
        _out(check)
    assert f"FAIL {source.lib}@1.2.0: tarball blob {keys['1.2.0']} is missing" in fails, _out(check)
    assert f"FAIL {source.lib}@2.0.0-beta.1: tarball blob does not match its integrity" in fails, _out(check)
    assert len(fails) == 4, _out(check)
    assert "migration finished with 4 problem(s)" in check.stderr


def test_a_corrupt_source_blob_is_reported_by_the_migration(source, new_target, tmp_path):
    """Bit rot in the source is not laundered into the target: the migration copies it, and its
    verification names the blob and says the source already had it."""
    copy = EmbeddedServer(tmp_path / "copy")
    shutil.copytree(source.server.data_dir, copy.data_dir)
    rotten = copy.data_dir / "tarballs" / _key(json.loads(source.documents[(source.app, "application/json")])
                                               ["versions"]["1.0.0"]["dist"]["integrity"])
    data = bytearray(rotten.read_bytes())
    data[10] ^= 0x01
    rotten.write_bytes(bytes(data))
    target = new_target()
    result = target.migrate(Source(**{**source.__dict__, "server": copy}))
    assert result.returncode == 1, _out(result)
    key = str(rotten.relative_to(copy.data_dir / "tarballs"))
    assert f"FAIL blob {key}: content does not match its SHA-512 key in the target (and in the source)" \
        in result.stdout, _out(result)
    assert f"FAIL {source.app}@1.0.0: tarball blob does not match its integrity" in result.stdout, _out(result)


def test_an_interrupted_migration_can_be_rerun_and_a_finished_one_is_not_overwritten(source, new_target):
    target = new_target()
    # The bucket is unreachable (nothing listens on the discard port): the tarball copy fails.
    broken = target.migrate(source, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert broken.returncode != 0, _out(broken)
    assert "copying tarballs failed" in broken.stderr and "left empty" in broken.stderr, _out(broken)
    assert "Traceback" not in broken.stderr, _out(broken)

    async def rows() -> int:
        import asyncpg

        conn = await asyncpg.connect(target.database_url)
        try:
            return await conn.fetchval("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM packages)"
                                       " + (SELECT count(*) FROM versions)")
        finally:
            await conn.close()

    assert asyncio.run(rows()) == 0
    again = target.migrate(source)
    assert again.returncode == 0, _out(again)
    rows_after = asyncio.run(rows())
    assert rows_after > 0

    # Once a migration has succeeded, its target is no longer empty: another run is refused, clearly,
    # and changes nothing; --verify-only checks the finished migration again instead.
    third = target.migrate(source)
    assert third.returncode == 1, _out(third)
    assert "target database is not empty" in third.stderr and "--verify-only" in third.stderr, _out(third)
    assert "Traceback" not in third.stderr, _out(third)
    assert asyncio.run(rows()) == rows_after
    check = target.migrate(source, "--verify-only")
    assert check.returncode == 0, _out(check)
    assert "copying" not in check.stderr and "migration verified: no problems found" in check.stderr

    node = target.node()
    node.start()
    try:
        assert snapshot(node, source) == source.documents
    finally:
        node.stop()


def _key(integrity: str) -> str:
    from ketch.blobs import blob_key

    return blob_key(base64.b64decode(integrity.removeprefix("sha512-")).hex())


# ---- backup and restore ------------------------------------------------------------------------

def test_backup_while_serving_then_restore(source, tmp_path):
    server = source.server
    server.start()
    try:
        archive = tmp_path / "ketch-backup.tar"
        made = ketch_cli("backup", str(archive), "--data-dir", str(server.data_dir))
        assert made.returncode == 0, _out(made)
        assert f"backup written to {archive}" in made.stderr
        assert server.alive()
    finally:
        server.stop()
    assert not archive.with_name(archive.name + ".partial").exists()

    restored = EmbeddedServer(tmp_path / "restored")
    result = ketch_cli("restore", str(archive), "--data-dir", str(restored.data_dir))
    assert result.returncode == 0, _out(result)
    assert "restore verified: no problems found" in result.stderr
    assert restored.blob_files() == server.blob_files()

    refused = ketch_cli("restore", str(archive), "--data-dir", str(restored.data_dir))
    assert refused.returncode != 0 and "already exists" in refused.stderr, _out(refused)

    restored.start()
    try:
        assert snapshot(restored, source) == source.documents
        assert anonymous_statuses(restored, source) == source.anonymous
        with restored.client() as c:
            assert c.get("/-/whoami", headers=source.alice.auth).json()["username"] == source.alice.name
            _publish(restored, c, source.alice, source.lib, "1.3.0")
    finally:
        restored.stop()
    fsck = restored.fsck()
    assert fsck.returncode == 0, _out(fsck)
