"""Integrity tests: a real ``python -m ketch serve`` subprocess, real sockets, real ``kill -9``.

Each server runs on a free loopback port with its own data directory, in its own process group (so
a hard kill takes its workers down with it). With ``KETCH_TEST_DATABASE_URL=postgresql://user@host:port``
every server gets a freshly created PostgreSQL database (dropped at teardown); otherwise the embedded
SQLite under the data directory is used. ``ketch fsck`` is run the same way an operator would.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.databases import create_test_database, drop_test_database
from tests.support.publish import NPM_VERSIONS, integrity_of, make_tarball
from tests.support.publish import publish_body as shared_publish_body
from tests.support.server import NO_RATE_LIMITS, ServerProcess, User, escaped
from tests.support.server import unique as shared_unique

START_TIMEOUT = 40.0


def unique(prefix: str = "i") -> str:
    return shared_unique(prefix)


# ---- publish bodies (the npm 11 shape, npm-protocol.md §4.1) -------------------------------------

def publish_body(name: str, version: str, *, files: dict[str, bytes] | None = None, tag: str = "latest",
                 manifest: dict | None = None, tarball: bytes | None = None) -> dict:
    manifest = manifest or {"name": name, "version": version, "description": "integrity test", "license": "MIT"}
    return shared_publish_body(name, version, manifest=manifest, files=files, tag=tag, tarball=tarball,
                               extra=NPM_VERSIONS, tarball_url=f"http://127.0.0.1/{name}/-/{name}-{version}.tgz")


def body_integrity(body: dict) -> str:
    (version,) = body["versions"].values()
    return version["dist"]["integrity"]


def assert_npm_error(resp: httpx.Response, *statuses: int) -> dict:
    assert resp.status_code in statuses, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:300]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body


# ---- the server --------------------------------------------------------------------------------

class KetchServer(ServerProcess):
    """One ``python -m ketch serve`` process group on a loopback port, with a database of its own."""

    # The pure helpers, reachable from test modules without importing this conftest by name.
    unique = staticmethod(unique)
    escaped = staticmethod(escaped)
    make_tarball = staticmethod(make_tarball)
    integrity_of = staticmethod(integrity_of)
    publish_body = staticmethod(publish_body)
    body_integrity = staticmethod(body_integrity)
    assert_npm_error = staticmethod(assert_npm_error)

    start_timeout = START_TIMEOUT
    poll_interval = 0.05

    def __init__(self, base: Path, *, workers: int = 1, env: dict[str, str] | None = None):
        self.base = base
        self.data_dir = base / "data"
        self.log_path = base / "server.log"
        self.workers = workers
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.database: str | None = None
        self.database_url: str | None = None
        created = create_test_database("ketch_integrity_")
        if created:
            self.database, self.database_url = created

    @property
    def url(self) -> str:
        return self.base_url

    def server_env(self) -> dict[str, str]:
        env = super().server_env()
        env.update(NO_RATE_LIMITS)
        env.update(self.extra_env)
        return env

    def _db_args(self) -> list[str]:
        return ["--database-url", self.database_url] if self.database_url else []

    def serve_args(self) -> list[str]:
        return ["--workers", str(self.workers), *self._db_args()]

    def close(self) -> None:
        self.stop()
        if self.database:
            try:
                drop_test_database(self.database)
            except Exception as exc:  # noqa: BLE001 - best-effort cleanup
                print(f"could not drop {self.database}: {exc!r}", file=sys.stderr)

    # -- operator commands ---------------------------------------------------------------------
    def fsck(self) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "ketch", "fsck", "--data-dir", str(self.data_dir), *self._db_args()]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.server_env(), cwd=self.base, timeout=120,
                              check=False)

    def db_execute(self, sql: str, **params: Any) -> list:
        """Run one SQL statement against this server's database (to simulate corruption)."""
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        from ketch.config import async_url

        url = async_url(self.database_url or f"sqlite:///{self.data_dir / 'ketch.sqlite3'}")

        async def run():
            engine = create_async_engine(url)
            try:
                async with engine.begin() as conn:
                    result = await conn.execute(text(sql), params)
                    return list(result.fetchall()) if result.returns_rows else []
            finally:
                await engine.dispose()

        return asyncio.run(run())

    # -- HTTP helpers --------------------------------------------------------------------------
    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 60)
        return httpx.Client(base_url=self.url, trust_env=False, **kwargs)

    def signup(self, prefix: str = "u") -> User:
        name = unique(prefix)
        password = "pw-" + uuid.uuid4().hex
        with self.client() as c:
            resp = c.put(f"/-/user/org.couchdb.user:{quote(name)}",
                         json={"name": name, "password": password, "email": f"{name}@example.test", "type": "user",
                               "roles": []})
        assert resp.status_code == 201, resp.text
        return User(name, password, resp.json()["token"])

    def publish(self, client: httpx.Client, user: User, body: dict) -> httpx.Response:
        return client.put("/" + escaped(body["name"]), content=json.dumps(body).encode(),
                          headers={"content-type": "application/json", "npm-command": "publish", **user.auth})

    def packument(self, name: str) -> dict | None:
        with self.client() as c:
            resp = c.get("/" + escaped(name), headers={"accept": "application/json"})
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return resp.json()

    def download(self, url: str) -> bytes:
        with self.client() as c:
            resp = c.get(url)
        assert resp.status_code == 200, f"GET {url}: {resp.status_code} {resp.text[:200]}"
        return resp.content

    def blob_files(self) -> set[str]:
        root = self.data_dir / "tarballs" / "sha512"
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _factory(base: Path) -> Iterator:
    servers: list[KetchServer] = []

    def make(*, workers: int = 1, env: dict[str, str] | None = None, start: bool = True) -> KetchServer:
        server = KetchServer(base / f"server{len(servers)}", workers=workers, env=env)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def server_factory(tmp_path) -> Iterator:
    """``server_factory(workers=1, env={})`` → a started server owned by this test."""
    yield from _factory(tmp_path)


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory) -> Iterator:
    """The same, for module-scoped servers."""
    yield from _factory(tmp_path_factory.mktemp("ketch-module"))


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def shared_server(request, tmp_path_factory) -> Iterator[KetchServer]:
    """One server per module and worker count; tests isolate themselves with fresh names."""
    server = KetchServer(tmp_path_factory.mktemp(f"ketch-{request.param}w"), workers=request.param)
    server.start()
    yield server
    try:
        assert server.alive(), "the server died during the module:\n" + server.log_tail()
        server.stop()
        result = server.fsck()
        assert result.returncode == 0, f"fsck after the module:\n{result.stdout}\n{result.stderr}"
    finally:
        server.close()
