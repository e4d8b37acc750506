"""The real npm, pnpm and yarn clients as the end-to-end tests run them, each on its own "machine":
a private HOME, config files, caches and project directory under ``root``, and an environment built
from scratch. For npm, pnpm and yarn 1 an unreachable loopback proxy is configured for every host
but the loopback registry, so a request that would leave the machine fails at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry import RegistryServer, User
from tests.support.server import ROOT, short_name, unique

CLIENTS = ROOT / "tests" / "e2e" / "clients"
NODE_MODULES = CLIENTS / "node_modules"
PNPM_BIN = NODE_MODULES / "pnpm" / "pnpm"
YARN1_JS = NODE_MODULES / "yarn" / "bin" / "yarn.js"
YARN4_JS = NODE_MODULES / "@yarnpkg" / "cli-dist" / "bin" / "yarn.js"

CLIENT_TIMEOUT = 180.0
# Nothing listens on the discard port: a client that tries to reach a non-loopback host through
# this "proxy" gets ECONNREFUSED immediately instead of touching the network.
DEAD_PROXY = "http://127.0.0.1:9"
NO_PROXY = "127.0.0.1,localhost,::1"


def _which(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"`{name}` is not on PATH; the e2e suite drives the real client", pytrace=False)
    return path


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
