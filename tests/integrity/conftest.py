"""Integrity tests: a real ``python -m ketch serve`` subprocess, real sockets, real ``kill -9``.

Each server runs on a free loopback port with its own data directory, in its own process group (so
a hard kill takes its workers down with it). With ``KETCH_TEST_DATABASE_URL=postgresql://user@host:port``
every server gets a freshly created PostgreSQL database (dropped at teardown); otherwise the embedded
SQLite under the data directory is used. ``ketch fsck`` is run the same way an operator would.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 40.0


def unique(prefix: str = "i") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def escaped(name: str) -> str:
    return name.replace("/", "%2f")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- tarballs and publish bodies (the npm 11 shape, npm-protocol.md §4.1) ---------------------------

def make_tarball(manifest: dict, files: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = {"package.json": json.dumps(manifest, indent=2).encode(), **(files or {})}
        for path, content in entries.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 499162500
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buf.getvalue(), mtime=0)


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def publish_body(name: str, version: str, *, files: dict[str, bytes] | None = None, tag: str = "latest",
                 manifest: dict | None = None, tarball: bytes | None = None) -> dict:
    manifest = manifest or {"name": name, "version": version, "description": "integrity test", "license": "MIT"}
    if tarball is None:
        tarball = make_tarball(manifest, {"index.js": b"module.exports = 1;\n", **(files or {})})
    version_doc = dict(manifest, readme=f"# {name}\n", readmeFilename="README.md", _id=f"{name}@{version}",
                       _nodeVersion="20.20.2", _npmVersion="11.19.1",
                       dist={"integrity": integrity_of(tarball), "shasum": hashlib.sha1(tarball).hexdigest(),
                             "tarball": f"http://127.0.0.1/{name}/-/{name}-{version}.tgz"})
    return {"_id": name, "name": name, "description": manifest.get("description"), "dist-tags": {tag: version},
            "versions": {version: version_doc}, "access": None,
            "_attachments": {f"{name}-{version}.tgz": {"content_type": "application/octet-stream",
                                                       "data": base64.b64encode(tarball).decode(),
                                                       "length": len(tarball)}}}


def body_integrity(body: dict) -> str:
    (version,) = body["versions"].values()
    return version["dist"]["integrity"]


def assert_npm_error(resp: httpx.Response, *statuses: int) -> dict:
    assert resp.status_code in statuses, f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:300]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body


# ---- databases ---------------------------------------------------------------------------------

def _pg_server() -> str | None:
    url = os.environ.get("KETCH_TEST_DATABASE_URL", "").strip().rstrip("/")
    return url or None


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_server() + "/postgres", timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database() -> tuple[str, str] | None:
    if not _pg_server():
        return None
    name = "ketch_integrity_" + uuid.uuid4().hex[:12]
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    return name, f"{_pg_server()}/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ---- the server --------------------------------------------------------------------------------

@dataclass
class User:
    name: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


class KetchServer:
    """One ``python -m ketch serve`` process group on a loopback port."""

    # The pure helpers, reachable from test modules without importing this conftest by name.
    unique = staticmethod(unique)
    escaped = staticmethod(escaped)
    make_tarball = staticmethod(make_tarball)
    integrity_of = staticmethod(integrity_of)
    publish_body = staticmethod(publish_body)
    body_integrity = staticmethod(body_integrity)
    assert_npm_error = staticmethod(assert_npm_error)

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
        created = create_database()
        if created:
            self.database, self.database_url = created

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
        # every request comes from 127.0.0.1; brute-force limits are not what these tests are about
        env.update({"KETCH_LOGIN_RATE_LIMIT": "1000000", "KETCH_SIGNUP_RATE_LIMIT": "1000000"})
        env.update(self.extra_env)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return env

    def _db_args(self) -> list[str]:
        return ["--database-url", self.database_url] if self.database_url else []

    def start(self) -> KetchServer:
        assert self.proc is None or self.proc.poll() is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self.port = free_port()
            cmd = [sys.executable, "-m", "ketch", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--data-dir", str(self.data_dir), "--workers", str(self.workers), *self._db_args()]
            with open(self.log_path, "ab") as log:
                log.write(f"\n=== {' '.join(cmd)}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=self.base, env=self._env(), start_new_session=True)
            problem = self._wait_ready()
            if problem is None:
                return self
            self.kill()
            if "address already in use" not in self.log_tail().lower():
                break
        pytest.fail(f"ketch serve did not start: {problem}\n{self.log_tail()}", pytrace=False)

    def _wait_ready(self) -> str | None:
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer"
        with httpx.Client(timeout=2, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return f"exited with status {self.proc.returncode}"
                try:
                    resp = client.get(f"{self.url}/-/ping")
                    if resp.status_code == 200:
                        return None
                    last = f"ping answered {resp.status_code}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.05)
        return f"timed out ({last})"

    def kill(self) -> None:
        """kill -9 of the whole process group: the master and every worker, no cleanup at all."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.url}/-/ping", timeout=5, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.stop()
        if self.database:
            try:
                drop_database(self.database)
            except Exception as exc:  # noqa: BLE001 - best-effort cleanup
                print(f"could not drop {self.database}: {exc!r}", file=sys.stderr)

    def log_tail(self, limit: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return text[-limit:]

    # -- operator commands ---------------------------------------------------------------------
    def fsck(self) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "ketch", "fsck", "--data-dir", str(self.data_dir), *self._db_args()]
        return subprocess.run(cmd, capture_output=True, text=True, env=self._env(), cwd=self.base, timeout=120,
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
