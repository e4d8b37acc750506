"""End-to-end fixtures: a real ``ketch serve`` process and the real npm, pnpm and yarn clients.

Everything a client touches is private to one test: its HOME, its config files, its caches and its
project directory all live under ``tmp_path``, and its environment is built from scratch (no
``CI``, ``npm_config_*`` or ``YARN_*`` variable of the calling shell leaks in). The only network a
client is pointed at is the loopback server; for npm, pnpm and yarn 1 an unreachable loopback proxy
is also configured for every other host, so a request that would leave the machine fails at once.

One server is shared by all the tests that one pytest(-xdist) worker runs: starting it costs a
database migration, and every test isolates itself with fresh user and package names
(``unique()``). Tests that need a server of their own (other flags, a restart) use
``registry_factory``.

With ``KETCH_TEST_DATABASE_URL=postgresql://user@host:port`` (a server URL without a database name)
every server gets a freshly created PostgreSQL database, dropped again at teardown; otherwise the
embedded SQLite under the data directory is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

# The pieces live in tests/support (the website tests use them too); test modules here import them
# from this conftest, so they are re-exported.
from tests.support.accounts import approve_web_login  # noqa: F401
from tests.support.clients import (CLIENT_TIMEOUT, DEAD_PROXY, NO_PROXY, PNPM_BIN, YARN1_JS,  # noqa: F401
                                   YARN4_JS, Client, ClientError, Npm, Pnpm, Result, Yarn1, Yarn4, base_env,
                                   create_package, write_json)
from tests.support.databases import create_test_database, drop_test_database  # noqa: F401
from tests.support.registry import RegistryServer, ServerFactory, User, s3_storage  # noqa: F401
from tests.support.server import ROOT, escaped, free_port, short_name, tail, unique  # noqa: F401

E2E_DIR = Path(__file__).resolve().parent
SERVER_START_TIMEOUT = RegistryServer.start_timeout


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)  # 3.11 reads the trailing "Z"


# --------------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------------


_LIVE_SERVERS: list[RegistryServer] = []  # the session's shared servers
_TEST_SERVERS: list[RegistryServer] = []  # servers the running test started itself


@pytest.fixture(scope="session")
def _session_servers(tmp_path_factory) -> Iterator[ServerFactory]:
    missing = [p for p in (PNPM_BIN, YARN1_JS, YARN4_JS) if not p.exists()]
    if missing:
        pytest.fail("client packages are missing (run `npm ci` in tests/e2e/clients): "
                    + ", ".join(str(p) for p in missing), pytrace=False)
    factory = ServerFactory(tmp_path_factory.mktemp("ketch-servers"), track=_LIVE_SERVERS)
    yield factory
    factory.close()
    _LIVE_SERVERS.clear()


@pytest.fixture(scope="session")
def registry(_session_servers: ServerFactory) -> RegistryServer:
    """The shared server of this pytest worker (tests isolate themselves with unique names)."""
    return _session_servers.new()


@pytest.fixture
def registry_factory(tmp_path) -> Iterator[ServerFactory]:
    """For tests that need a server of their own: ``registry_factory.new("--no-signup")``."""
    factory = ServerFactory(tmp_path / "servers", track=_TEST_SERVERS)
    yield factory
    factory.close()


@pytest.fixture
def make_user(registry) -> Any:
    """``make_user()`` → a fresh account on the shared server (name, password, email, token)."""
    return registry.create_user


@pytest.fixture
def user(registry) -> User:
    return registry.create_user()


# --------------------------------------------------------------------------------------------------
# running clients
# --------------------------------------------------------------------------------------------------

@pytest.fixture
def client_factory(registry, tmp_path) -> Any:
    """``client_factory(Npm, user=..., token=..., registry=...)`` → a runner with its own HOME."""

    made: list[Client] = []

    def make(kind: type[Client], user: User | None = None, token: str | None = None,
             server: RegistryServer | None = None, label: str | None = None, **options: Any) -> Client:
        client = kind(server or registry, tmp_path / (label or unique(kind.name)), user=user, token=token,
                      **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def npm_factory(client_factory) -> Any:
    """``npm_factory(user)`` / ``npm_factory(token=...)`` / ``npm_factory()`` (anonymous)."""

    def make(user: User | None = None, token: str | None = None, server: RegistryServer | None = None) -> Npm:
        return client_factory(Npm, user=user, token=token, server=server)

    return make


@pytest.fixture
def npm(npm_factory, user) -> Npm:
    """npm logged in as a fresh user (``npm.user``)."""
    return npm_factory(user)


@pytest.fixture
def pnpm(client_factory, user) -> Pnpm:
    return client_factory(Pnpm, user=user)


@pytest.fixture
def yarn1(client_factory, user) -> Yarn1:
    return client_factory(Yarn1, user=user)


@pytest.fixture
def yarn4(client_factory, user) -> Yarn4:
    return client_factory(Yarn4, user=user)


# --------------------------------------------------------------------------------------------------
# packages to publish
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def make_package(tmp_path) -> Any:
    """``make_package(name, version="1.0.0", dependencies=None, ...)`` → package directory."""

    def make(name: str, version: str = "1.0.0", **kwargs: Any) -> Path:
        return create_package(tmp_path / "packages", name, version, **kwargs)

    return make


# --------------------------------------------------------------------------------------------------
# hooks: marker, and the server log next to a failing test
# --------------------------------------------------------------------------------------------------


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


SERVER_ERROR = re.compile(r'Traceback \(most recent call last\)|"status":\s*5\d\d')


@pytest.fixture(autouse=True)
def _server_log_marks(request) -> Iterator[None]:
    """Remember where each server log stood; after the test, a server error there fails it.

    Clients shrug off some 5xx answers (npm retries GETs, a login form re-renders), so a
    traceback in the server log is checked here rather than left to each test. Tests run one at a
    time per worker, so what a server logged meanwhile belongs to this test.
    """
    _TEST_SERVERS.clear()
    for server in _LIVE_SERVERS:
        server.assert_alive()  # a crashed shared server: say so once, with its log
        server.settle()  # what earlier tests caused is logged before this test's mark
    marks = {id(s): s.log_size() for s in _LIVE_SERVERS}
    request.node._ketch_log_marks = marks
    yield
    if getattr(request.node, "_ketch_failed", False):
        return  # the failure report already carries the server log
    for server in [*_LIVE_SERVERS, *_TEST_SERVERS]:
        server.settle()
        text = tail(server.log_path, limit=200000, start=marks.get(id(server), 0))
        if SERVER_ERROR.search(text):
            pytest.fail(f"the server ({server.url}) logged an error during this test:\n"
                        + tail(server.log_path, limit=8000, start=marks.get(id(server), 0)), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        item._ketch_failed = True
        marks = getattr(item, "_ketch_log_marks", {})
        for server in [*_LIVE_SERVERS, *_TEST_SERVERS]:
            start = marks.get(id(server), 0)
            text = tail(server.log_path, limit=20000, start=start).strip()
            if text:
                report.sections.append((f"ketch server log ({server.url})", text))
