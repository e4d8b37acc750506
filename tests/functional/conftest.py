"""In-process functional tests: the real ASGI app behind Starlette's TestClient.

Each test module gets one app over a fresh data directory (SQLite + files), migrated with Alembic
and started with its lifespan (``with TestClient(app)``). Tests isolate themselves by using fresh
user and package names (:func:`unique`), so they may share that app.

The :class:`Registry` object handed to tests (fixture ``reg``) wraps the client with the few
helpers every test needs: sign up a user, build a real publish body exactly as npm 11 sends it
(npm-protocol.md §4.1: gzipped tar with ``package/package.json``, base64 attachment, sha512
integrity and sha1 shasum), publish, read packuments, and check npm-shaped errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from ketch.app import create_app
from ketch.config import Settings
from ketch.db.migrate import upgrade
from tests.support.publish import NPM_VERSIONS, integrity_of, make_tarball, shasum_of
from tests.support.publish import publish_body as shared_publish_body
from tests.support.server import User, escaped
from tests.support.server import unique as shared_unique

ROOT = Path(__file__).resolve().parents[2]
ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
MANIFEST_CHECK_PRESENT = (ROOT / "ketch" / "registry" / "manifest_check.py").exists()


def unique(prefix: str = "t") -> str:
    """A fresh lower-case name, valid as a user name, package name and scope."""
    return shared_unique(prefix)


# ------------------------------------------------------------------------------------------------
# tarballs and publish bodies
# ------------------------------------------------------------------------------------------------

def default_manifest(name: str, version: str, **extra: Any) -> dict:
    manifest = {"name": name, "version": version, "description": f"test package {name}",
                "main": "index.js", "license": "MIT"}
    manifest.update(extra)
    return manifest


def publish_body(name: str, version: str, *, manifest: dict | None = None, tarball: bytes | None = None,
                 tag: str = "latest", access: str | None = None, readme: str | None = None,
                 files: dict[str, bytes | str] | None = None) -> dict:
    """The exact body `npm publish` (npm 11) sends for ``name@version`` (npm-protocol.md §4.1).

    ``manifest`` is the package.json (default: a minimal one); the tarball is built from it unless
    given. The registry URL in ``dist.tarball`` is the one npm would compute for a local registry.
    """
    return shared_publish_body(
        name, version, manifest=manifest if manifest is not None else default_manifest(name, version),
        tarball=tarball, tag=tag, access=access, readme=readme, files=files, index_js="module.exports = 42;\n",
        extra=NPM_VERSIONS, tarball_url=f"http://testserver/{name}/-/{name}-{version}.tgz")


# ------------------------------------------------------------------------------------------------
# assertions
# ------------------------------------------------------------------------------------------------

def assert_error(resp, *statuses: int, contains: str | None = None) -> dict:
    """An npm-shaped error: one of ``statuses``, JSON content type, a string ``error`` key, no traceback."""
    assert resp.status_code in statuses, (
        f"{resp.request.method} {resp.request.url} answered {resp.status_code}, expected {statuses}: "
        f"{resp.text[:500]}")
    assert resp.status_code != 500
    ctype = resp.headers.get("content-type", "")
    assert ctype.startswith("application/json"), f"error content-type is {ctype!r}: {resp.text[:200]}"
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    assert "Traceback" not in resp.text
    if contains is not None:
        assert contains.lower() in body["error"].lower(), f"{contains!r} not in error {body['error']!r}"
    return body


def assert_ok(resp, *statuses: int) -> dict:
    statuses = statuses or (200, 201)
    assert resp.status_code in statuses, (
        f"{resp.request.method} {resp.request.url} answered {resp.status_code}, expected {statuses}: "
        f"{resp.text[:500]}")
    return resp.json()


# ------------------------------------------------------------------------------------------------
# the registry under test
# ------------------------------------------------------------------------------------------------

class Registry:
    """The app under test plus helpers; ``client`` is the raw TestClient."""

    # The pure helpers, reachable from test modules without importing this conftest by name.
    make_tarball = staticmethod(make_tarball)
    publish_body = staticmethod(publish_body)
    default_manifest = staticmethod(default_manifest)
    integrity_of = staticmethod(integrity_of)
    shasum_of = staticmethod(shasum_of)
    assert_error = staticmethod(assert_error)
    assert_ok = staticmethod(assert_ok)
    unique = staticmethod(unique)
    escaped = staticmethod(escaped)

    def __init__(self, client: TestClient, settings: Settings):
        self.client = client
        self.settings = settings

    # -- accounts --------------------------------------------------------------------------
    def signup(self, prefix: str = "u", password: str | None = None) -> User:
        name = unique(prefix)
        password = password or "pw-" + uuid.uuid4().hex
        email = f"{name}@example.test"
        body = {"_id": f"org.couchdb.user:{name}", "name": name, "password": password, "email": email,
                "type": "user", "roles": [], "date": "2026-01-01T00:00:00.000Z"}
        resp = self.client.put(f"/-/user/org.couchdb.user:{quote(name, safe='')}", json=body)
        assert resp.status_code == 201, f"sign-up of {name} answered {resp.status_code}: {resp.text}"
        data = resp.json()
        assert data.get("ok") and data.get("token"), data
        return User(name=name, password=password, email=email, token=data["token"])

    def readonly_token(self, user: User) -> str:
        resp = self.client.post("/-/npm/v1/tokens", headers=user.auth,
                                json={"password": user.password, "packages_and_scopes_permission": "read-only",
                                      "orgs_permission": "read-only", "cidr_whitelist": []})
        data = assert_ok(resp, 200, 201)
        assert data["readonly"] is True, data
        return data["token"]

    # -- packages --------------------------------------------------------------------------
    def put_json(self, path: str, body: Any, user: User | None = None, headers: dict | None = None):
        h = {"content-type": "application/json", "npm-command": "publish"}
        if user:
            h.update(user.auth)
        h.update(headers or {})
        return self.client.put(path, content=json.dumps(body).encode(), headers=h)

    def publish(self, user: User | None, name: str, version: str = "1.0.0", **kw: Any):
        return self.put_json("/" + escaped(name), publish_body(name, version, **kw), user)

    def publish_ok(self, user: User, name: str, version: str = "1.0.0", **kw: Any) -> dict:
        resp = self.publish(user, name, version, **kw)
        assert resp.status_code in (200, 201), f"publish {name}@{version}: {resp.status_code} {resp.text}"
        return resp.json()

    def packument(self, name: str, user: User | None = None, *, abbreviated: bool = False,
                  write: bool = False, headers: dict | None = None):
        h = {"accept": ABBREVIATED if abbreviated else "application/json"}
        if user:
            h.update(user.auth)
        h.update(headers or {})
        return self.client.get("/" + escaped(name) + ("?write=true" if write else ""), headers=h)

    def doc(self, name: str, user: User | None = None, **kw: Any) -> dict:
        resp = self.packument(name, user, **kw)
        assert resp.status_code == 200, f"GET {name}: {resp.status_code} {resp.text}"
        return resp.json()

    def tarball(self, name: str, version: str, user: User | None = None):
        short = name.rsplit("/", 1)[-1]
        return self.client.get(f"/{name}/-/{short}-{version}.tgz", headers=user.auth if user else {})

    def asgi_timed(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[float, int, bytes]:
        """Call the app directly on its own event loop with the whole body in one ASGI message, and
        time just the app's work: (seconds, status, response body). For big bodies, where the
        in-process HTTP client's own transfer cost would swamp the measurement."""
        app = self.client.app
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict] = []
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in
                       {"host": "testserver", "content-length": str(len(body)), **headers}.items()]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": raw_headers, "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
                 "state": {}}

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        async def call():
            start = time.perf_counter()
            await app(scope, receive, send)
            return time.perf_counter() - start

        elapsed = self.client.portal.call(call)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return elapsed, status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    def dist_tags(self, name: str, user: User | None = None):
        return self.client.get(f"/-/package/{escaped(name)}/dist-tags", headers=user.auth if user else {})


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashing():
    """argon2id with production parameters costs ~0.5 s per sign-up or login on a small machine;
    these tests check behaviour, not hash strength, so they hash with minimal parameters (as Django's
    test settings do). Verification reads the parameters from each stored hash, so nothing else changes.
    Module-scoped, so the real parameters are back before any test outside this directory runs."""
    from argon2 import PasswordHasher

    from ketch.accounts import passwords

    saved = passwords._hasher, passwords._DUMMY
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords._DUMMY = passwords._hasher.hash("ketch-dummy-password")
    yield
    passwords._hasher, passwords._DUMMY = saved


def fsck(settings: Settings) -> list[str]:
    from ketch.registry.fsck import run_fsck

    return asyncio.run(run_fsck(settings))


@contextlib.contextmanager
def running_registry(settings: Settings):
    upgrade(settings.resolved_database_url)
    # raise_server_exceptions=False: an unhandled error must surface as the app's own 500 answer,
    # which the tests then see and fail on, rather than as an exception inside the client.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Registry(client, settings)
    # Whatever a module's tests did — refused, raced or half-sent requests included — the data
    # directory must hold no partial state: `ketch fsck` finds nothing.
    problems = fsck(settings)
    assert not problems, "fsck after the module's tests:\n" + "\n".join(problems)


# Every request of these tests comes from one client address; brute-force limits are not what they test.
NO_RATE_LIMITS = {"login_rate_limit": 1_000_000, "signup_rate_limit": 1_000_000}


@pytest.fixture(scope="module")
def reg(tmp_path_factory) -> Registry:
    settings = Settings(data_dir=tmp_path_factory.mktemp("ketch-functional"), **NO_RATE_LIMITS)
    with running_registry(settings) as registry:
        yield registry


@pytest.fixture(scope="module")
def small_reg(tmp_path_factory) -> Registry:
    """A registry with small body caps, to test 413 without building 50 MB bodies."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("ketch-small"), max_body_size=200_000, max_json_body=4096,
                        **NO_RATE_LIMITS)
    with running_registry(settings) as registry:
        yield registry


# Users are shared by the tests of a module (sign-up costs an argon2 hash); tests use fresh package names.
@pytest.fixture(scope="module")
def alice(reg: Registry) -> User:
    return reg.signup("alice")


@pytest.fixture(scope="module")
def bob(reg: Registry) -> User:
    return reg.signup("bob")
