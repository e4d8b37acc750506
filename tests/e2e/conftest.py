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

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
CLIENTS = E2E_DIR / "clients"
NODE_MODULES = CLIENTS / "node_modules"
PNPM_BIN = NODE_MODULES / "pnpm" / "pnpm"
YARN1_JS = NODE_MODULES / "yarn" / "bin" / "yarn.js"
YARN4_JS = NODE_MODULES / "@yarnpkg" / "cli-dist" / "bin" / "yarn.js"

SERVER_START_TIMEOUT = 30.0
CLIENT_TIMEOUT = 180.0
# Nothing listens on the discard port: a client that tries to reach a non-loopback host through
# this "proxy" gets ECONNREFUSED immediately instead of touching the network.
DEAD_PROXY = "http://127.0.0.1:9"
NO_PROXY = "127.0.0.1,localhost,::1"


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------


def unique(prefix: str = "e2e") -> str:
    """A fresh lower-case name, valid as an npm user name, package name and scope."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _which(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"`{name}` is not on PATH; the e2e suite drives the real client", pytrace=False)
    return path


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)  # 3.11 reads the trailing "Z"


def tail(path: Path, limit: int = 12000, start: int = 0) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return "(no log file)"
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else "…" + text[-limit:]


def escaped(name: str) -> str:
    """npm's escapedName: only the scope slash is escaped, as lower-case %2f."""
    return name.replace("/", "%2f")


def short_name(name: str) -> str:
    return name.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------------------------
# databases
# --------------------------------------------------------------------------------------------------


def _pg_server_url() -> str | None:
    url = os.environ.get("KETCH_TEST_DATABASE_URL", "").strip()
    return url.rstrip("/") or None


async def _pg_execute(server_url: str, sql: str) -> None:
    import asyncpg  # a Ketch dependency

    conn = await asyncpg.connect(server_url + "/postgres", timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_test_database() -> tuple[str, str] | None:
    """A fresh PostgreSQL database when KETCH_TEST_DATABASE_URL is set: (db name, full URL)."""
    server = _pg_server_url()
    if not server:
        return None
    name = "ketch_e2e_" + uuid.uuid4().hex[:12]
    asyncio.run(_pg_execute(server, f'CREATE DATABASE "{name}"'))
    return name, f"{server}/{name}"


def drop_test_database(name: str) -> None:
    server = _pg_server_url()
    if server:
        asyncio.run(_pg_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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


# --------------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------------


@dataclass
class User:
    name: str
    password: str
    email: str
    token: str


class RegistryServer:
    """One ``ketch serve`` subprocess on a loopback port."""

    def __init__(self, data_dir: Path, log_path: Path, database_url: str | None, extra_args: list[str]):
        self.data_dir = data_dir
        self.log_path = log_path
        self.database_url = database_url
        self.extra_args = list(extra_args)
        self.host = "127.0.0.1"
        self.port: int = 0
        self.proc: subprocess.Popen | None = None
        # Fixed for the server's lifetime, so a restart (new port, same data) finds its tarballs again.
        self.storage = s3_storage(uuid.uuid4().hex[:12])

    # -- addresses -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The registry URL as clients configure it, with its trailing slash."""
        return f"http://{self.host}:{self.port}/"

    @property
    def nerf_dart(self) -> str:
        return f"//{self.host}:{self.port}/"

    def tarball_url(self, name: str, version: str) -> str:
        """The canonical tarball URL (protocol §3): scope slash literal, unscoped file name."""
        return f"{self.url}{name}/-/{short_name(name)}-{version}.tgz"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, port: int | None = None) -> None:
        assert self.proc is None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if port else 3
        for attempt in range(attempts):
            self.port = port or free_port()
            start_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            cmd = [
                sys.executable, "-m", "ketch", "serve",
                "--host", self.host, "--port", str(self.port),
                "--data-dir", str(self.data_dir),
                *(["--database-url", self.database_url] if self.database_url else []),
                *(["--storage-url", self.storage[0]] if self.storage else []),
                *self.extra_args,
            ]
            env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
            if self.storage:
                env.update(self.storage[1])
            env["PYTHONUNBUFFERED"] = "1"
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            with open(self.log_path, "ab") as log:
                log.write(f"\n=== {' '.join(cmd)}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=self.data_dir.parent, env=env, start_new_session=True,
                )
            error = self._wait_ready()
            if error is None:
                return
            self._kill()
            log_text = tail(self.log_path, start=start_offset)
            if attempt + 1 < attempts and re.search(r"address already in use|EADDRINUSE|Errno 98", log_text, re.IGNORECASE):
                continue
            pytest.fail(f"ketch serve did not become ready: {error}\n--- server log ---\n{log_text}", pytrace=False)

    def _wait_ready(self) -> str | None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        last = "no answer"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                code = self.proc.poll()
                if code is not None:
                    return f"process exited with status {code}"
                try:
                    resp = client.get(f"{self.url}-/ping")
                    if resp.status_code == 200 and self.proc.poll() is None:
                        return None
                    last = f"GET /-/ping answered {resp.status_code}: {resp.text[:200]}"
                except httpx.HTTPError as exc:
                    last = f"GET /-/ping failed: {exc!r}"
                time.sleep(0.1)
        return f"timed out after {SERVER_START_TIMEOUT:.0f}s ({last})"

    def stop(self) -> None:
        """SIGTERM, as an operator would; SIGKILL the process group if it does not go."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._kill()
        self._reap_group()
        self.proc = None

    def _kill(self) -> None:
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

    def _reap_group(self) -> None:
        """Worker processes of our own server (its process group) must not outlive it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

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

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

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


class ClientError(AssertionError):
    pass


class Result(subprocess.CompletedProcess):
    @property
    def output(self) -> str:
        """stdout and stderr together (npm writes errors and warnings to stderr)."""
        return (self.stdout or "") + (self.stderr or "")

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise ClientError(f"`{' '.join(map(str, self.args))}` did not print JSON ({exc}):\n"
                              f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}") from None


def base_env(home: Path, proxy: bool = True) -> dict[str, str]:
    """An environment built from scratch: nothing of the caller's shell, CI or home leaks in."""
    for sub in (".config", ".cache", ".local/share", ".local/state", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "USER": "e2e",
        "LANG": "C.UTF-8",
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
        "NO_UPDATE_NOTIFIER": "1",
        "TERM": "dumb",
    }
    if proxy:
        env.update({
            "http_proxy": DEAD_PROXY, "https_proxy": DEAD_PROXY, "HTTP_PROXY": DEAD_PROXY,
            "HTTPS_PROXY": DEAD_PROXY, "no_proxy": NO_PROXY, "NO_PROXY": NO_PROXY,
        })
    return env


class Client:
    """Shared machinery of the client runners: a private HOME and project dir, and ``run``."""

    name = "client"

    def __init__(self, registry: RegistryServer, root: Path, user: User | None = None, token: str | None = None,
                 **options: Any):
        self.registry = registry
        self.options = options
        self.root = root
        self.user = user
        self.token = token if token is not None else (user.token if user else None)
        self.home = root / "home"
        self.project = root / "project"
        self.home.mkdir(parents=True, exist_ok=True)
        self.project.mkdir(parents=True, exist_ok=True)
        self.env = base_env(self.home)
        self.children: list[Any] = []  # pexpect children, ended at teardown
        self.setup()

    def setup(self) -> None:  # pragma: no cover - overridden
        pass

    def command(self, args: list[str]) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self, *args: str, cwd: Path | None = None, ok: bool | None = True, timeout: float = CLIENT_TIMEOUT,
            env: dict[str, str] | None = None, input: str | None = None) -> Result:
        """Run the client; ``ok=True`` expects exit 0, ``ok=False`` expects failure, ``None`` either."""
        cmd = self.command([str(a) for a in args])
        full_env = {**self.env, **(env or {})}
        cwd = cwd or self.project
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, check=False,
                                  timeout=timeout, input=input if input is not None else "")
        except subprocess.TimeoutExpired as exc:
            raise ClientError(f"`{' '.join(cmd)}` (in {cwd}) timed out after {timeout:.0f}s\n"
                              f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}") from None
        result = Result(proc.args, proc.returncode, proc.stdout, proc.stderr)
        elapsed = time.monotonic() - started
        if ok is True and proc.returncode != 0 or ok is False and proc.returncode == 0:
            expectation = "succeed" if ok else "fail"
            raise ClientError(
                f"expected `{' '.join(cmd)}` (in {cwd}) to {expectation}; it exited {proc.returncode} "
                f"after {elapsed:.1f}s\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")
        return result

    __call__ = run

    def spawn(self, *args: str, cwd: Path | None = None, tty: bool = True, timeout: float = 60) -> Any:
        """Start the client under pexpect: on a pseudo-terminal (``tty=True``) or on plain pipes."""
        import pexpect
        from pexpect.popen_spawn import PopenSpawn

        cmd = self.command([str(a) for a in args])
        cwd = cwd or self.project
        if tty:
            child = pexpect.spawn(cmd[0], cmd[1:], cwd=str(cwd), env=self.env, encoding="utf-8",
                                  timeout=timeout, dimensions=(50, 250))
        else:
            child = PopenSpawn(cmd, cwd=str(cwd), env=self.env, encoding="utf-8", timeout=timeout)
        self.children.append(child)
        return child

    def close(self) -> None:
        """End what ``spawn`` started and is still running (e.g. a login left polling)."""
        for child in self.children:
            proc = getattr(child, "proc", None)
            if proc is not None:  # PopenSpawn
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
            elif child.isalive():
                child.terminate(force=True)
        self.children.clear()

    # -- project helpers -------------------------------------------------------------------------
    def new_project(self, name: str | None = None, dependencies: dict[str, str] | None = None) -> Path:
        """A fresh consumer project directory (package.json only) next to the default one."""
        path = self.root / (name or unique("project"))
        path.mkdir(parents=True)
        write_json(path / "package.json", {
            "name": short_name(unique("consumer")), "version": "1.0.0", "private": True,
            "description": "e2e consumer", "license": "MIT", "dependencies": dependencies or {},
        })
        self.prepare_project(path)
        return path

    def prepare_project(self, path: Path) -> None:
        pass

    def require(self, package: str, cwd: Path | None = None) -> Any:
        """``require(package)`` inside the project with the real node, as JSON."""
        script = f"console.log(JSON.stringify(require({json.dumps(package)})))"
        proc = subprocess.run([_which("node"), "-e", script], cwd=cwd or self.project, env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise ClientError(f"node could not require {package} in {cwd or self.project}:\n{proc.stderr}")
        return json.loads(proc.stdout)


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


class Npm(Client):
    """The machine's npm 11 with its own --userconfig, --globalconfig and --cache."""

    name = "npm"

    def setup(self) -> None:
        self.userconfig = self.home / ".npmrc"
        self.globalconfig = self.root / "global-npmrc"
        self.cache = self.root / "npm-cache"
        self.globalconfig.write_text("")
        lines = [
            f"registry={self.registry.url}",
            "update-notifier=false",
            "audit=false",
            "fund=false",
            "browser=false",
            "progress=false",
            f"noproxy={NO_PROXY}",
        ]
        if self.token:
            lines.append(f"{self.registry.nerf_dart}:_authToken={self.token}")
        self.userconfig.write_text("\n".join(lines) + "\n")
        if not (self.project / "package.json").exists():
            write_json(self.project / "package.json", {
                "name": short_name(unique("consumer")), "version": "1.0.0", "private": True,
                "description": "e2e consumer", "license": "MIT",
            })

    def command(self, args: list[str]) -> list[str]:
        return [_which("npm"), *args, "--userconfig", str(self.userconfig),
                "--globalconfig", str(self.globalconfig), "--cache", str(self.cache)]

    def config_text(self) -> str:
        return self.userconfig.read_text()

    def publish(self, package_dir: Path, *args: str, ok: bool | None = True) -> Result:
        return self.run("publish", *args, cwd=package_dir, ok=ok)

    def view(self, spec: str, *fields: str) -> Any:
        """``npm view --json``; None when the field is absent (npm prints nothing then)."""
        result = self.run("view", spec, *fields, "--json")
        return result.json() if result.stdout.strip() else None


class Pnpm(Client):
    """pnpm 12 (native binary) with its own store, cache, state dir and npmrc."""

    name = "pnpm"

    def setup(self) -> None:
        self.store = self.root / "pnpm-store"
        self.npmrc = self.home / ".npmrc"
        lines = [f"registry={self.registry.url}", "update-notifier=false", f"noproxy={NO_PROXY}"]
        if self.token:
            lines.append(f"{self.registry.nerf_dart}:_authToken={self.token}")
        self.npmrc.write_text("\n".join(lines) + "\n")
        # pnpm's own global settings (``pnpm config set --global`` → ~/.config/pnpm/config.yaml).
        # Like yarn's npmMinimalAgeGate: 0, the release-age gate is off by default here: with it on,
        # pnpm 12 prefers the *oldest* matching version of packages published seconds ago.
        # ``settings={}`` gives pnpm's own defaults.
        settings = self.options.get("settings", {"minimumReleaseAge": 0})
        if settings:
            config_dir = self.home / ".config" / "pnpm"
            config_dir.mkdir(parents=True, exist_ok=True)
            (config_dir / "config.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items()))
        self.env.update({
            "npm_config_userconfig": str(self.npmrc),
            "PNPM_HOME": str(self.home / ".local/share/pnpm"),
        })
        if not (self.project / "package.json").exists():
            write_json(self.project / "package.json", {
                "name": short_name(unique("consumer")), "version": "1.0.0", "private": True, "license": "MIT",
            })

    def command(self, args: list[str]) -> list[str]:
        return [str(PNPM_BIN), *args, f"--registry={self.registry.url}", f"--store-dir={self.store}",
                f"--state-dir={self.root / 'pnpm-state'}"]


class Yarn1(Client):
    """yarn classic 1.22.22 (``node node_modules/yarn/bin/yarn.js``), cache and rc files private."""

    name = "yarn1"

    def setup(self) -> None:
        self.cache = self.root / "yarn1-cache"
        (self.home / ".yarnrc").write_text(
            f'registry "{self.registry.url}"\n'
            "disable-self-update-check true\n"
            f'cache-folder "{self.cache}"\n'
            f'no-proxy "{NO_PROXY}"\n'
        )
        lines = [f"registry={self.registry.url}"]
        if self.token:
            lines.append(f"{self.registry.nerf_dart}:_authToken={self.token}")
        (self.home / ".npmrc").write_text("\n".join(lines) + "\n")
        self.env.update({"YARN_IGNORE_PATH": "1", "YARN_CACHE_FOLDER": str(self.cache)})
        if not (self.project / "package.json").exists():
            write_json(self.project / "package.json", {
                "name": short_name(unique("consumer")), "version": "1.0.0", "private": True, "license": "MIT",
            })

    def command(self, args: list[str]) -> list[str]:
        return [_which("node"), str(YARN1_JS), *args, "--non-interactive", "--no-progress",
                "--cache-folder", str(self.cache)]


class Yarn4(Client):
    """yarn berry 4.18.1 (``node …/@yarnpkg/cli-dist/bin/yarn.js``) with a per-project .yarnrc.yml."""

    name = "yarn4"

    def setup(self) -> None:
        # berry reads neither http_proxy nor no_proxy; it is pointed at the loopback registry only.
        self.env = base_env(self.home, proxy=False)
        self.env.update({
            "YARN_ENABLE_TELEMETRY": "0",
            "YARN_IGNORE_PATH": "1",
            "YARN_ENABLE_GLOBAL_CACHE": "0",
            "YARN_ENABLE_IMMUTABLE_INSTALLS": "0",
            "YARN_ENABLE_PROGRESS_BARS": "0",
            "YARN_ENABLE_COLORS": "0",
            "YARN_ENABLE_HYPERLINKS": "0",
            "YARN_ENABLE_HARDENED_MODE": "0",
            "YARN_ENABLE_MESSAGE_NAMES": "1",
            "YARN_GLOBAL_FOLDER": str(self.home / ".yarn-berry"),
        })
        if not (self.project / "package.json").exists():
            write_json(self.project / "package.json", {
                "name": short_name(unique("consumer")), "version": "1.0.0", "private": True, "license": "MIT",
            })
        self.prepare_project(self.project)

    def yarnrc(self) -> str:
        lines = [
            f'npmRegistryServer: "{self.registry.url.rstrip("/")}"',
            "unsafeHttpWhitelist:",
            f'  - "{self.registry.host}"',
            "npmMinimalAgeGate: 0",
            "nodeLinker: node-modules",
            "enableGlobalCache: false",
            "enableTelemetry: false",
            "enableScripts: false",
        ]
        if self.token:
            lines.append(f'npmAuthToken: "{self.token}"')
        return "\n".join(lines) + "\n"

    def prepare_project(self, path: Path) -> None:
        (path / ".yarnrc.yml").write_text(self.yarnrc())
        # Without a lockfile berry would look for the project root above this directory.
        lock = path / "yarn.lock"
        if not lock.exists():
            lock.write_text("")

    def command(self, args: list[str]) -> list[str]:
        return [_which("node"), str(YARN4_JS), *args]


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


def create_package(root: Path, name: str, version: str = "1.0.0", *, dependencies: dict[str, str] | None = None,
                   description: str | None = None, extra: dict[str, Any] | None = None) -> Path:
    """A publishable package directory whose ``index.js`` exports something checkable.

    ``require(name)`` gives ``{"name", "version", "marker", "deps": {dep: require(dep)}}`` where
    ``marker`` is ``"<name>@<version>"``.
    """
    path = root / f"{name.replace('@', '').replace('/', '__')}-{version}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": description or f"e2e test package {name}",
        "main": "index.js",
        "license": "MIT",
        "keywords": ["ketch-e2e"],
        "repository": {"type": "git", "url": "https://example.test/e2e.git"},
    }
    if dependencies:
        manifest["dependencies"] = dependencies
    manifest.update(extra or {})
    write_json(path / "package.json", manifest)
    deps = ", ".join(f"{json.dumps(d)}: require({json.dumps(d)})" for d in (dependencies or {}))
    (path / "index.js").write_text(
        "module.exports = {\n"
        f"  name: {json.dumps(name)},\n"
        f"  version: {json.dumps(version)},\n"
        f"  marker: {json.dumps(f'{name}@{version}')},\n"
        f"  deps: {{{deps}}},\n"
        "};\n"
    )
    (path / "README.md").write_text(f"# {name}\n\nVersion {version}, published by the Ketch e2e suite.\n")
    return path


@pytest.fixture
def make_package(tmp_path) -> Any:
    """``make_package(name, version="1.0.0", dependencies=None, ...)`` → package directory."""

    def make(name: str, version: str = "1.0.0", **kwargs: Any) -> Path:
        return create_package(tmp_path / "packages", name, version, **kwargs)

    return make


# --------------------------------------------------------------------------------------------------
# web login approval (what a person would do in the browser)
# --------------------------------------------------------------------------------------------------


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {"action": a.get("action", ""), "method": a.get("method", "get").lower(), "inputs": {}}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current["inputs"][a["name"]] = {"type": a.get("type", "text").lower(), "value": a.get("value", "")}

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def approve_web_login(login_url: str, username: str, password: str) -> httpx.Response:
    """GET the login page, fill its form (echoing the hidden csrf field) and POST it back."""
    with httpx.Client(timeout=30.0, trust_env=False, follow_redirects=True) as browser:
        page = browser.get(login_url)
        assert page.status_code == 200, f"GET {login_url} answered {page.status_code}: {page.text[:500]}"
        parser = _FormParser()
        parser.feed(page.text)
        forms = [f for f in parser.forms if "password" in f["inputs"]]
        assert forms, f"no password form on the login page:\n{page.text[:2000]}"
        form = forms[0]
        assert "csrf" in form["inputs"], f"the login form has no csrf field: {form}"
        data = {k: v["value"] for k, v in form["inputs"].items() if v["type"] in ("hidden",)}
        data.update({"username": username, "password": password})
        action = urljoin(str(page.url), form["action"] or str(page.url))
        answer = browser.post(action, data=data)
        return answer


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
