"""The end-to-end tests' registry server (:class:`RegistryServer`) and the factory that starts such
servers and cleans up after them (:class:`ServerFactory`); also used by the website's account tests.

With ``KETCH_TEST_DATABASE_URL`` every server gets a fresh PostgreSQL database
(:mod:`tests.support.databases`); with ``KETCH_TEST_STORAGE=s3`` its tarballs go to this worker's
SeaweedFS.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.databases import create_test_database, drop_test_database
from tests.support.server import ServerProcess, User, escaped, short_name, tail, unique

_SEAWEED_ENDPOINT: str | None = None


def s3_storage(label: str) -> tuple[str, dict[str, str]] | None:
    """With ``KETCH_TEST_STORAGE=s3``: (storage URL, environment) on this worker's SeaweedFS, so the
    same suite runs on the scaled-out configuration (PostgreSQL + S3). None otherwise."""
    global _SEAWEED_ENDPOINT
    if os.environ.get("KETCH_TEST_STORAGE", "").lower() != "s3":
        return None
    from tests.support.seaweed import ACCESS_KEY, REGION, SECRET_KEY, start_seaweed

    if _SEAWEED_ENDPOINT is None:
        import atexit
        import tempfile

        endpoint, proc = start_seaweed(tempfile.mkdtemp(prefix="ketch-e2e-s3-"))
        atexit.register(proc.stop)
        _SEAWEED_ENDPOINT = endpoint
    env = {"AWS_ENDPOINT_URL": _SEAWEED_ENDPOINT, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}
    return f"s3://ketch-e2e/{label}", env


class RegistryServer(ServerProcess):
    """One ``ketch serve`` subprocess on a loopback port."""

    def __init__(self, data_dir: Path, log_path: Path, database_url: str | None, extra_args: list[str]):
        self.data_dir = data_dir
        self.log_path = log_path
        self.database_url = database_url
        self.extra_args = list(extra_args)
        self.port: int = 0
        self.proc = None
        # Fixed for the server's lifetime, so a restart (new port, same data) finds its tarballs again.
        self.storage = s3_storage(uuid.uuid4().hex[:12])

    # -- addresses -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The registry URL as clients configure it, with its trailing slash."""
        return f"{self.base_url}/"

    @property
    def nerf_dart(self) -> str:
        return f"//{self.host}:{self.port}/"

    def tarball_url(self, name: str, version: str) -> str:
        """The canonical tarball URL (protocol §3): scope slash literal, unscoped file name."""
        return f"{self.url}{name}/-/{short_name(name)}-{version}.tgz"

    # -- lifecycle -------------------------------------------------------------------------------
    def serve_args(self) -> list[str]:
        return [*(["--database-url", self.database_url] if self.database_url else []),
                *(["--storage-url", self.storage[0]] if self.storage else []),
                *self.extra_args]

    def server_env(self) -> dict[str, str]:
        env = super().server_env()
        if self.storage:
            env.update(self.storage[1])
        return env

    def assert_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            pytest.fail(f"ketch serve is not running (exit status {code})\n--- server log ---\n"
                        f"{tail(self.log_path)}", pytrace=False)

    def settle(self) -> None:
        """One request round trip, so what the server logged for earlier requests is on disk."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            httpx.get(f"{self.url}-/ping", timeout=5.0, trust_env=False)
        except httpx.HTTPError:
            pass

    # -- HTTP helpers ----------------------------------------------------------------------------
    def http(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, trust_env=False, **kwargs)

    def create_user(self, prefix: str = "user", password: str | None = None) -> User:
        """Sign up over the legacy couch route (protocol §11.2) and return the session token."""
        name = unique(prefix)
        password = password or "pw-" + uuid.uuid4().hex
        email = f"{name}@example.test"
        body = {
            "_id": f"org.couchdb.user:{name}", "name": name, "password": password, "email": email,
            "type": "user", "roles": [], "date": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        with self.http() as client:
            resp = client.put(f"-/user/org.couchdb.user:{quote(name, safe='')}", json=body)
        assert resp.status_code == 201, f"sign-up of {name} answered {resp.status_code}: {resp.text}"
        data = resp.json()
        assert data.get("ok") and data.get("token"), f"sign-up answer lacks ok/token: {data}"
        return User(name=name, password=password, email=email, token=data["token"])

    def packument(self, name: str, token: str | None = None) -> httpx.Response:
        with self.http(token) as client:
            return client.get(escaped(name), headers={"accept": "application/json"})


class ServerFactory:
    """Starts servers under one base directory and stops them (and drops their databases) at the end."""

    def __init__(self, base: Path, track: list[RegistryServer] | None = None):
        self.base = base
        self.track = track  # where the log-checking hooks find the servers
        self.servers: list[RegistryServer] = []
        self.databases: list[str] = []

    def new(self, *extra_args: str, data_dir: Path | None = None, database_url: str | None = None,
            start: bool = True) -> RegistryServer:
        label = unique("server")
        data_dir = data_dir or self.base / label / "data"
        log_path = data_dir.parent / "server.log"
        if database_url is None:
            created = create_test_database()
            if created:
                self.databases.append(created[0])
                database_url = created[1]
        server = RegistryServer(data_dir, log_path, database_url, list(extra_args))
        self.servers.append(server)
        if self.track is not None:
            self.track.append(server)
        if start:
            server.start()
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for name in self.databases:
            try:
                drop_test_database(name)
            except Exception as exc:  # noqa: BLE001 - best-effort cleanup must not mask test results
                print(f"could not drop test database {name}: {exc!r}", file=sys.stderr)


@contextlib.contextmanager
def own_registry(base: Path, sink: Any = None) -> Iterator[RegistryServer]:
    """A registry of its own under ``base``, stopped (and its database dropped) on exit; with a
    ``sink`` (:class:`tests.support.accounts.MailSink`) it sends its emails there."""
    factory = ServerFactory(base)
    try:
        yield factory.new(*(["--config", str(sink.config_file(base / "config"))] if sink is not None else []))
    finally:
        factory.close()
