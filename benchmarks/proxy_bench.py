"""Warm-cache proxied `npm install` of a 300-package tree: Ketch vs Verdaccio, both proxying a third server.

    python benchmarks/proxy_bench.py              # full run, 5 timed installs per server and variant (< 10 min)
    python benchmarks/proxy_bench.py --runs 2     # shorter
    python benchmarks/proxy_bench.py --probe      # only check that a Ketch proxy answers (origin + proxy, ~1 min)

Starts, on free loopback ports:

* **origin**: a Ketch server (`ketch serve --workers 2`) with the install tree of the deterministic
  benchmark data set (`common.build_dataset`: ~300 packages, ~1,000 versions, 2-10 KB tarballs,
  a root project with 20 direct dependencies) published into it with npm-11-shaped PUTs;
* **Ketch proxy**: `ketch serve --workers N --config proxy.toml` with one uplink (the origin,
  `max_age = 600`) and one route (`packages = "*"`);
* **Verdaccio 6 proxy**: the same uplink (`maxage: 10m`) and `'**': {access: $all, proxy: origin}`.

Both proxy caches are warmed with one `npm install` each, then N timed installs per proxy and
variant run alternately, each in a fresh directory with an empty npm cache (`--cache`,
`--prefer-online`): *no lockfile* (npm resolves every range: packuments + tarballs) and *with
package-lock.json* (`npm ci` with the lockfile of the warm-up install: tarballs only, what CI runs).
Finally the origin is stopped and each proxy installs once more (fresh cache, no lockfile), first
with its metadata still fresh, then restarted with max_age 1 s so that it must try the dead
origin and fall back to its cache. Prints a table and writes benchmarks/PROXY_RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    REPO,
    TreeSampler,
    build_dataset,
    create_user,
    free_port,
    install_signal_handlers,
    load_dataset,
    machine_info,
    process_tree,
    spawn,
    stop,
    stop_all,
    tempdir,
    wait_http,
)
from compare import install_verdaccio  # noqa: E402

FULL_ACCEPT = "application/json"
ABBREVIATED_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
VARIANTS = (("nolock", "npm install, no lockfile"), ("lock", "npm ci, with package-lock.json"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Proxy:
    key: str
    label: str
    base: str | None = None
    port: int | None = None
    proc: subprocess.Popen | None = None
    sampler: TreeSampler | None = None
    samplers: list[TreeSampler] = field(default_factory=list)  # every start's, for the peak RSS
    cpu: dict[str, float | None] = field(default_factory=dict)  # median CPU s per install, by variant
    log_file: Path | None = None
    error: str | None = None
    lockfile: str | None = None
    warm: dict | None = None
    runs: dict[str, list[dict]] = field(default_factory=lambda: {k: [] for k, _ in VARIANTS})
    offline: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.base is not None


# -- servers ---------------------------------------------------------------------------------------

def ketch_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("KETCH_")}


def origin_source(work: Path, commit: str | None) -> Path:
    """Where the origin's code comes from: this checkout, or ``git archive COMMIT`` unpacked in the
    work dir (the origin is only a stand-in upstream; pinning it keeps a run independent of
    half-finished edits elsewhere in the working tree)."""
    if not commit:
        return REPO
    dest = work / "origin-src"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def start_origin(work: Path, workers: int, src: Path = REPO) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log_file = work / "origin.log"
    cmd = [sys.executable, "-m", "ketch", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(work / "origin-data"), "--workers", str(workers)]
    # `python -m ketch` imports the package from the working directory first.
    proc = spawn(cmd, log_file, cwd=src, env=ketch_env())
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/-/ping", proc, 120, log_file)
    return proc, base, log_file


PROXY_TOML = """\
[uplinks.origin]
url = "{origin}/"
max_age = {max_age}

[[routes]]
packages = "*"
uplink = "origin"
"""


def start_ketch_proxy(p: Proxy, work: Path, origin: str, workers: int, max_age: int = 600) -> None:
    conf = work / "ketch-proxy.toml"
    conf.write_text(PROXY_TOML.format(origin=origin, max_age=max_age))
    p.port = p.port or free_port()
    p.log_file = work / "ketch-proxy.log"
    cmd = [sys.executable, "-m", "ketch", "serve", "--host", "127.0.0.1", "--port", str(p.port),
           "--data-dir", str(work / "ketch-proxy-data"), "--workers", str(workers), "--config", str(conf)]
    p.proc = spawn(cmd, p.log_file, cwd=REPO, env=ketch_env())
    p.base = f"http://127.0.0.1:{p.port}"
    p.sampler = TreeSampler(process_tree(p.proc.pid)).start()
    p.samplers.append(p.sampler)
    wait_http(p.base + "/-/ping", p.proc, 120, p.log_file)


VERDACCIO_CONFIG = """\
storage: {dir}/storage
plugins: {dir}/plugins
web:
  enable: false
auth:
  htpasswd:
    file: {dir}/htpasswd
    max_users: 1000
uplinks:
  origin:
    url: {origin}/
    maxage: {maxage}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
    proxy: origin
  '**':
    access: $all
    publish: $authenticated
    proxy: origin
security:
  api:
    legacy: false
server:
  keepAliveTimeout: 60
middlewares:
  audit:
    enabled: false
max_body_size: 100mb
log: {{ type: stdout, format: pretty, level: warn }}
"""


def start_verdaccio(p: Proxy, work: Path, install_dir: Path, origin: str, maxage: str = "10m") -> None:
    vdir = work / "verdaccio"
    vdir.mkdir(exist_ok=True)
    (vdir / "config.yaml").write_text(VERDACCIO_CONFIG.format(dir=vdir, origin=origin, maxage=maxage))
    p.port = p.port or free_port()
    bin_ = install_dir / "node_modules" / "verdaccio" / "bin" / "verdaccio"
    p.log_file = work / "verdaccio.log"
    p.proc = spawn(["node", str(bin_), "-c", str(vdir / "config.yaml"), "-l", f"127.0.0.1:{p.port}"],
                   p.log_file, cwd=vdir)
    p.base = f"http://127.0.0.1:{p.port}"
    p.sampler = TreeSampler(process_tree(p.proc.pid)).start()
    p.samplers.append(p.sampler)
    wait_http(p.base + "/-/ping", p.proc, 120, p.log_file)


def verdaccio_version(install_dir: Path) -> str:
    try:
        return json.loads((install_dir / "node_modules" / "verdaccio" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def restart(p: Proxy, starter) -> None:
    """Stop a proxy and start it again on the same port and data (``starter`` does the start)."""
    if p.sampler:
        p.sampler.stop()
    if p.proc:
        stop(p.proc)
    deadline = time.time() + 10
    while time.time() < deadline:  # the port must be free again
        try:
            httpx.get(p.base + "/-/ping", timeout=0.5)
            time.sleep(0.2)
        except httpx.TransportError:
            break
    starter()


# -- checks ----------------------------------------------------------------------------------------

def check_proxy(base: str, packages: list, origin: str, label: str) -> list[str]:
    """Read a few documents and tarballs through a proxy; returns the problems found (empty: fine).

    Checks: full and abbreviated packuments come back with every version, every tarball URL points
    at the proxy (not the origin), and the tarball bytes equal the published ones."""
    problems = []
    client = httpx.Client(base_url=base, timeout=60)
    picks = [packages[0], next((p for p in packages if p.name.startswith("@")), packages[-1]),
             max(packages, key=lambda p: len(p.versions))]
    for pkg in picks:
        for accept in (FULL_ACCEPT, ABBREVIATED_ACCEPT):
            t0 = time.perf_counter()
            try:
                r = client.get("/" + pkg.escaped, headers={"accept": accept})
            except httpx.HTTPError as e:
                problems.append(f"GET /{pkg.escaped} ({accept[:30]}): {type(e).__name__} {e}")
                continue
            ms = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                problems.append(f"GET /{pkg.escaped} ({accept[:30]}): HTTP {r.status_code} {r.text[:200]!r}")
                continue
            try:
                doc = r.json()
            except ValueError:
                problems.append(f"GET /{pkg.escaped}: not JSON: {r.text[:200]!r}")
                continue
            versions = doc.get("versions", {})
            if len(versions) != len(pkg.versions):
                problems.append(f"GET /{pkg.escaped}: {len(versions)} versions, published {len(pkg.versions)}")
            for v, m in versions.items():
                url = (m.get("dist") or {}).get("tarball", "")
                if not url.startswith(base + "/"):
                    problems.append(f"GET /{pkg.escaped} ({accept[:30]}): tarball URL of {v} is {url!r}, "
                                    f"expected under {base}/" + (" (the origin's URL)" if url.startswith(origin) else ""))
                    break
            log(f"{label}: GET /{pkg.escaped} ({'full' if accept == FULL_ACCEPT else 'abbreviated'}) "
                f"{r.status_code} {len(r.content)} bytes {ms:.0f} ms")
        v = pkg.versions[-1]
        try:
            r = client.get(v.path)
            if r.status_code != 200 or r.content != v.tarball:
                problems.append(f"GET {v.path}: HTTP {r.status_code}, {len(r.content)} bytes "
                                f"(published {len(v.tarball)}; equal: {r.content == v.tarball})")
        except httpx.HTTPError as e:
            problems.append(f"GET {v.path}: {type(e).__name__} {e}")
    try:
        r = client.get("/no-such-package-proxy-bench", headers={"accept": FULL_ACCEPT})
        if r.status_code != 404:
            problems.append(f"GET /no-such-package-proxy-bench: HTTP {r.status_code}, expected 404")
    except httpx.HTTPError as e:
        problems.append(f"GET /no-such-package-proxy-bench: {type(e).__name__} {e}")
    return problems


# -- npm -------------------------------------------------------------------------------------------

def npm_run(base: str, d: Path, root_deps: dict, lockfile: str | None = None, timeout: float = 300) -> dict:
    """`npm install` (or `npm ci` with ``lockfile``) in the fresh dir ``d`` with an empty cache."""
    d.mkdir(parents=True)
    (d / "package.json").write_text(json.dumps({"name": "bench-root", "version": "1.0.0", "private": True,
                                                "dependencies": root_deps}, indent=2))
    if lockfile is not None:
        (d / "package-lock.json").write_text(lockfile)
    npmrc = d / "npmrc"
    npmrc.write_text(f"registry={base}/\naudit=false\nfund=false\nupdate-notifier=false\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    cmd = ["npm", "ci" if lockfile is not None else "install", "--registry", base + "/",
           "--cache", str(d / "npm-cache"), "--prefer-online", "--userconfig", str(npmrc), "--no-audit",
           "--no-fund", "--update-notifier=false", "--loglevel=error"]
    t0 = time.perf_counter()
    start = time.time()
    try:
        r = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s", "seconds": timeout, "t0": start, "t1": time.time()}
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "t0": start, "t1": time.time()}
    if r.returncode != 0:
        out["error"] = (r.stderr or r.stdout).strip()[-600:]
        return out
    added = re.search(r"added (\d+) packages?", r.stdout + r.stderr)
    out["added"] = int(added.group(1)) if added else None
    lock = d / "package-lock.json"
    if lockfile is None and lock.exists():
        out["lockfile"] = lock.read_text()
    return out


def describe(r: dict) -> str:
    if "error" in r:
        return f"FAILED after {r['seconds']:.1f}s: {r['error'][-300:]}"
    return f"{r['seconds']:.2f}s, added {r.get('added')}"


# -- logs ------------------------------------------------------------------------------------------

def read_access_log(path: Path | None) -> list[dict]:
    """Ketch's access log: one JSON object per line on stdout (other lines are skipped)."""
    out = []
    if path is None or not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if "path" in entry and "ts" in entry:
                out.append(entry)
    return out


def log_messages(path: Path | None, limit: int = 8) -> list[str]:
    """The warnings and errors of a server log (not access-log JSON, not start/stop banners),
    grouped with package names and numbers blanked out: "count × message"."""
    if path is None or not path.exists():
        return []
    groups: Counter = Counter()
    example: dict[str, str] = {}
    for ln in path.read_text(errors="replace").splitlines():
        ln = ln.strip()
        if (not ln or ln.startswith('{"ts"') or ln.startswith("[INFO]") or ln.startswith("Ketch registry on")
                or ln.startswith("/") or "Verdaccio recommends Node.js" in ln or "on loading plugins" in ln
                or "http address" in ln):
            continue
        shape = re.sub(r"\d+", "N", re.sub(r"proxy: (@[^/\s]+/)?[^\s:]+:", "proxy: <name>:", ln))
        groups[shape] += 1
        example.setdefault(shape, ln)
    return [f"{n} × `{example[shape][:220]}`" for shape, n in groups.most_common(limit)]


def upstream_counts(entries: list[dict], windows: dict[str, list[tuple[float, float]]]) -> dict[str, Counter]:
    """Origin requests by user agent (proxy) inside each phase's time windows."""
    out = {}
    for phase, spans in windows.items():
        c = Counter()
        for e in entries:
            if any(t0 <= e["ts"] <= t1 for t0, t1 in spans):
                # Ketch's uplink client says "ketch-proxy"; Verdaccio sends "npm (hidden)" by default.
                ua = e.get("ua", "")
                who = "Ketch" if "ketch" in ua.lower() else "Verdaccio" if ua in ("npm (hidden)", "") \
                    or "verdaccio" in ua.lower() else repr(ua[:40])
                kind = "tarball" if "/-/" in e["path"] else "packument"
                c[(who, kind)] += 1
        out[phase] = c
    return out


def ketch_log_summary(entries: list[dict], spans: list[tuple[float, float]]) -> dict:
    inside = [e for e in entries if any(t0 <= e["ts"] <= t1 for t0, t1 in spans)]
    statuses = Counter(e["status"] for e in inside)
    kinds = {}
    for kind in ("packument", "tarball"):
        ms = sorted(e["ms"] for e in inside if ("/-/" in e["path"]) == (kind == "tarball"))
        if ms:
            kinds[kind] = {"n": len(ms), "p50": ms[len(ms) // 2], "p90": ms[int(len(ms) * 0.9)],
                           "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))], "max": ms[-1]}
    slow = sorted(inside, key=lambda e: -e["ms"])[:3]
    bad = [e for e in inside if e["status"] >= 400][:5]
    return {"requests": len(inside), "statuses": dict(statuses), "kinds": kinds,
            "slowest": [(e["method"], e["path"], e["status"], e["ms"]) for e in slow],
            "errors": [(e["method"], e["path"], e["status"], e["ms"]) for e in bad]}


def format_summary(what: str, s: dict) -> str:
    kinds = "; ".join(f"{k}s {v['n']}: p50 {v['p50']:.1f} / p90 {v['p90']:.1f} / p99 {v['p99']:.1f} / "
                      f"max {v['max']:.0f} ms" for k, v in s["kinds"].items())
    text = (f"Ketch proxy access log, {what}: {s['requests']} requests, statuses {s['statuses']}; {kinds}; "
            "slowest: " + ", ".join(f"`{m} {path}` {st} {ms:.0f} ms" for m, path, st, ms in s["slowest"]))
    if s["errors"]:
        text += "; errors: " + ", ".join(f"`{m} {path}` {st}" for m, path, st, _ in s["errors"])
    return text


# -- report ----------------------------------------------------------------------------------------

def stats_of(runs: list[dict]) -> dict | None:
    ok = [r["seconds"] for r in runs if "error" not in r]
    if not ok:
        return None
    return {"median": statistics.median(ok), "min": min(ok), "max": max(ok), "n": len(ok),
            "failed": len(runs) - len(ok)}


def cpu_of(p: Proxy, runs: list[dict]) -> float | None:
    if not p.sampler:
        return None
    used = [p.sampler.cpu_between(r["t0"], r["t1"]) for r in runs if "error" not in r and "t0" in r]
    return statistics.median(used) if used else None


def render(ketch: Proxy, verd: Proxy, meta: dict, ds_line: str, n_runs: int) -> str:
    head = ["scenario", ketch.label, verd.label, "Ketch/Verdaccio"]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|"]

    def cell(p: Proxy, runs: list[dict]) -> tuple[str, float | None]:
        if not runs:
            return ("n/a" if p.error else "not run"), None
        s = stats_of(runs)
        if s is None:
            return "FAILED", None
        text = f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"
        if s["failed"]:
            text += f" ⚠{s['failed']} failed"
        return text, s["median"]

    def ratio(a, b) -> str:
        return f"{a / b:.2f}×" if a is not None and b else "n/a"

    def row(label, kr, vr):
        (kt, kv), (vt, vv) = cell(ketch, kr), cell(verd, vr)
        lines.append(f"| {label} | {kt} | {vt} | {ratio(kv, vv)} |")

    row("first install through the proxy, proxy cache empty: s", [ketch.warm] if ketch.warm else [],
        [verd.warm] if verd.warm else [])
    for key, label in VARIANTS:
        row(f"warm proxy, {label}: s, median (min–max) of {n_runs}", ketch.runs[key], verd.runs[key])
    for key, label in VARIANTS:
        kc, vc = ketch.cpu.get(key), verd.cpu.get(key)
        lines.append(f"| proxy CPU per install, {label.split(',')[0]}: s (median) | "
                     f"{'n/a' if kc is None else f'{kc:.2f}'} | {'n/a' if vc is None else f'{vc:.2f}'} | "
                     f"{ratio(kc, vc)} |")
    for key, label in (("fresh", "origin stopped, proxy metadata fresh (< max_age)"),
                       ("stale", "origin stopped, proxy restarted with max_age 1 s (must fall back to its cache)")):
        cells = []
        for p in (ketch, verd):
            r = p.offline.get(key)
            if r is None:
                cells.append("n/a" if p.error else "not run")
            elif "error" in r:
                cells.append(f"FAIL ({r['seconds']:.1f} s)")
            else:
                cells.append(f"PASS ({r['seconds']:.1f} s, added {r.get('added')})")
        lines.append(f"| {label}: npm install | {cells[0]} | {cells[1]} | |")
    mem = []
    for p in (ketch, verd):
        peak = max((s.peak_rss_mb for s in p.samplers if s.samples), default=None)
        mem.append(f"{peak:,.0f}" if peak is not None else "n/a")
    lines.append(f"| peak RSS of the proxy's processes: MB | {mem[0]} | {mem[1]} | |")
    table = "\n".join(lines)
    notes = "\n".join(f"- {n}" for n in meta["notes"]) or "- none"
    machine = "\n".join(f"- {k}: {v}" for k, v in meta["machine"].items())
    return f"""## Warm-cache proxied install: Ketch vs Verdaccio — {meta['date']}

Command: `{meta['command']}`

Data set (on the origin, a Ketch server): {ds_line}. Both proxies point at the same origin
(Ketch: `max_age = 600`, route `*`; Verdaccio: `maxage: 10m`, `'**': proxy: origin`). Every install
runs in a fresh directory with an empty npm cache (`--cache`, `--prefer-online`, no audit, no fund);
servers alternate. Times are wall-clock seconds of the whole npm command, median (min–max); the ratio
is Ketch ÷ Verdaccio (below 1: Ketch is faster). Total run time {meta['elapsed_s'] / 60:.1f} min.

{table}

### Notes

{notes}

### Machine

{machine}
"""


# -- main ------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed installs per proxy and variant (default 5)")
    ap.add_argument("--ketch-workers", type=int, default=2, help="workers of the Ketch proxy (as compare.py)")
    ap.add_argument("--origin-workers", type=int, default=2)
    ap.add_argument("--origin-commit", metavar="REV",
                    help="run the origin from `git archive REV` (e.g. HEAD) instead of the working tree")
    ap.add_argument("--packages", type=int, default=300, help="packages in the install tree")
    ap.add_argument("--root-deps", type=int, default=20, help="direct dependencies of the root project")
    ap.add_argument("--verdaccio-dir", type=Path,
                    help="reuse an existing `npm install verdaccio@6` directory instead of installing one")
    ap.add_argument("--verdaccio-cache", type=Path, default=Path.home() / ".cache" / "ketch-bench" / "npm",
                    help="npm cache for installing Verdaccio itself (never used by the measured installs)")
    ap.add_argument("--skip", default="", help="leave out a proxy: ketch or verdaccio")
    ap.add_argument("--probe", action="store_true",
                    help="only start the origin and a Ketch proxy and check a few reads through it")
    ap.add_argument("--results", type=Path, help="where to write the markdown (default benchmarks/PROXY_RESULTS.md)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.probe:
        skip.add("verdaccio")

    missing = [t for t in ("node", "npm") if not shutil.which(t)]
    if missing:
        print("missing tools: " + ", ".join(missing), file=sys.stderr)
        return 2
    install_signal_handlers()
    started = time.time()
    machine = machine_info()
    for k in ("wrk", "nginx", "postgresql", "seaweedfs"):
        machine.pop(k, None)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])
    meta = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine, "notes": [],
            "command": command}
    work = tempdir("ketch-proxy-bench-")
    log(f"work dir {work}; load average {machine['load average at the start']}")
    ketch = Proxy("ketch", f"Ketch proxy ({args.ketch_workers} workers)")
    verd = Proxy("verdaccio", "Verdaccio proxy")
    for k in skip:
        {"ketch": ketch, "verdaccio": verd}[k].error = "skipped (--skip)"
    proxies = [p for p in (ketch, verd) if p.error is None]
    failure = None
    ds_line = "not built"
    origin_proc = None
    origin_log = None
    windows: dict[str, list[tuple[float, float]]] = {"warm-up": [], "timed": [], "checks": [],
                                                      "timed nolock": [], "timed lock": [],
                                                      "offline": []}
    npm_proc, install_dir = None, args.verdaccio_dir
    try:
        if verd.error is None and install_dir is None:
            install_dir = work / "verdaccio-install"
            npm_proc = install_verdaccio(install_dir, args.verdaccio_cache)
            log("installing Verdaccio 6 from the npm registry (background)")

        # The data set: the install tree of build_dataset, published alone (its dependencies only
        # point inside the tree). A few packages outside the tree are generated and not published.
        ds = build_dataset(n_packages=args.packages + args.packages // 10, total_versions=int(args.packages * 3.3),
                           big=(), tree_size=args.packages, root_deps=args.root_deps, mb_tarballs=0,
                           probe_versions=0, log=log)
        in_tree = set(ds.tree)
        tree = [p for p in ds.packages if p.name in in_tree]
        sizes = sorted(len(v.tarball) for p in tree for v in p.versions)
        ds_line = (f"{len(tree)} packages ({sum(p.name.startswith('@') for p in tree)} scoped), "
                   f"{sum(len(p.versions) for p in tree)} versions (up to {max(len(p.versions) for p in tree)} "
                   f"per package), tarballs {sizes[0] / 1024:.1f}–{sizes[-1] / 1024:.1f} KB "
                   f"(median {statistics.median(sizes) / 1024:.1f} KB); the root project has "
                   f"{len(ds.root_deps)} direct dependencies and installs all {len(tree)}")
        log(ds_line)

        src = origin_source(work, args.origin_commit)
        origin_proc, origin, origin_log = start_origin(work, args.origin_workers, src)
        log(f"origin (Ketch {args.origin_commit or 'working tree'}, {args.origin_workers} workers) on {origin}")
        if args.origin_commit:
            rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.origin_commit],
                                 capture_output=True, text=True, check=False).stdout.strip()
            meta["notes"].append(f"origin: Ketch from `git archive {args.origin_commit}` ({rev}); the proxies "
                                 "run from the working tree")
        token = create_user(origin)
        load = load_dataset(origin, token, tree, 4, "origin", log)
        meta["notes"].append(f"origin: {load['versions']} versions published in {load['seconds']:.1f} s "
                             f"({load['errors']} retried errors)")

        if ketch.error is None:
            try:
                start_ketch_proxy(ketch, work, origin, args.ketch_workers)
                log(f"{ketch.label} on {ketch.base}")
            except Exception as e:
                ketch.error = f"could not start: {str(e)[-600:]}"
        if verd.error is None:
            try:
                if npm_proc is not None:
                    if npm_proc.wait(timeout=600) != 0:
                        raise RuntimeError("npm install verdaccio failed: "
                                           + (install_dir / "npm-install.log").read_text()[-500:])
                verd.label = f"Verdaccio {verdaccio_version(install_dir)} proxy"
                start_verdaccio(verd, work, install_dir, origin)
                log(f"{verd.label} on {verd.base}")
            except Exception as e:
                verd.error = f"could not start: {str(e)[-600:]}"

        # Sanity reads through each proxy (this also caches those few packages in both).
        for p in proxies:
            if not p.ok:
                continue
            t0 = time.time()
            problems = check_proxy(p.base, tree, origin, p.label)
            windows["checks"].append((t0, time.time()))
            if problems:
                p.error = "proxy check failed: " + "; ".join(problems[:6])
                log(f"{p.label}: {p.error}")
            else:
                log(f"{p.label}: proxy check passed")
        if args.probe:
            return 0 if ketch.ok else 1

        # Warm-up: one full install through each proxy fills its cache; its lockfile is the one the
        # `npm ci` variant uses (resolved URLs point at that proxy).
        for p in proxies:
            if not p.ok:
                continue
            r = npm_run(p.base, work / f"warm-{p.key}", ds.root_deps)
            windows["warm-up"].append((r["t0"], r["t1"]))
            p.warm = r
            log(f"{p.label}: warm-up install {describe(r)}")
            if "error" in r:
                p.error = f"warm-up npm install failed: {r['error'][-400:]}"
            elif r.get("added") != len(tree):
                p.notes.append(f"warm-up install added {r.get('added')} packages, expected {len(tree)}")
            p.lockfile = r.get("lockfile")
            if p.ok and not p.lockfile:
                p.notes.append("warm-up install wrote no package-lock.json: the lockfile variant is skipped")

        # Timed installs, alternating proxies (and which goes first).
        for run in range(args.runs):
            order = [p for p in proxies if p.ok]
            if run % 2:
                order.reverse()
            for key, label in VARIANTS:
                for p in order:
                    if key == "lock" and not p.lockfile:
                        continue
                    r = npm_run(p.base, work / f"run-{p.key}-{key}-{run}", ds.root_deps,
                                p.lockfile if key == "lock" else None)
                    windows["timed"].append((r["t0"], r["t1"]))
                    windows[f"timed {key}"].append((r["t0"], r["t1"]))
                    if "error" not in r and r.get("added") != len(tree):
                        r["error"] = f"added {r.get('added')} packages, expected {len(tree)}"
                    r.pop("lockfile", None)
                    p.runs[key].append(r)
                    log(f"{p.label}: {label} {run + 1}/{args.runs}: {describe(r)}")

        for p in proxies:
            p.cpu = {key: cpu_of(p, p.runs[key]) for key, _ in VARIANTS}
        # The origin goes away: the proxies must install from their caches.
        stop(origin_proc)
        log("origin stopped")
        for p in proxies:
            if p.ok:
                r = npm_run(p.base, work / f"offline-fresh-{p.key}", ds.root_deps, timeout=180)
                if "error" not in r and r.get("added") != len(tree):
                    r["error"] = f"added {r.get('added')} packages, expected {len(tree)}"
                p.offline["fresh"] = r
                windows["offline"].append((r["t0"], r["t1"]))
                log(f"{p.label}: origin stopped, metadata fresh: {describe(r)}")
        # Restart each proxy with a 1 s max age on the same data: every packument is now stale,
        # so the proxy asks the (dead) origin first and must fall back to what it cached.
        for p in proxies:
            if not p.ok:
                continue
            try:
                if p is ketch:
                    restart(p, lambda: start_ketch_proxy(ketch, work, origin, args.ketch_workers, max_age=1))
                else:
                    restart(p, lambda: start_verdaccio(verd, work, install_dir, origin, maxage="1s"))
                time.sleep(1.5)
                r = npm_run(p.base, work / f"offline-stale-{p.key}", ds.root_deps, timeout=180)
                if "error" not in r and r.get("added") != len(tree):
                    r["error"] = f"added {r.get('added')} packages, expected {len(tree)}"
                p.offline["stale"] = r
                windows["offline"].append((r["t0"], r["t1"]))
                log(f"{p.label}: origin stopped, metadata stale: {describe(r)}")
            except Exception as e:
                p.offline["stale"] = {"error": f"restart failed: {e}", "seconds": 0}
                log(f"{p.label}: restart failed: {e}")
    except Exception as e:
        failure = f"{type(e).__name__}: {str(e)[-600:]}"
        traceback.print_exc()
    finally:
        stop_all()
        for p in (ketch, verd):
            for sampler in p.samplers:
                sampler.stop()

    # What the logs say: upstream traffic per phase, the Ketch proxy's statuses and slow requests.
    origin_entries = read_access_log(origin_log) if origin_log else []
    ups = upstream_counts(origin_entries, windows)
    for phase in ("warm-up", "timed"):
        c = ups.get(phase, Counter())
        parts = [f"{who} {kind}s: {n}" for (who, kind), n in sorted(c.items())]
        meta["notes"].append(f"requests the origin received during the {phase} installs: "
                             + (", ".join(parts) if parts else "none"))
    if ketch.log_file:
        entries = read_access_log(ketch.log_file)
        for phase, what in (("warm-up", "warm-up install (proxy cache empty)"),
                            ("timed nolock", "timed `npm install` runs"), ("timed lock", "timed `npm ci` runs"),
                            ("offline", "installs with the origin stopped")):
            s = ketch_log_summary(entries, windows[phase])
            if s["requests"]:
                meta["notes"].append(format_summary(what, s))
        other = log_messages(ketch.log_file)
        if other:
            meta["notes"].append("Ketch proxy log messages (whole run): " + "; ".join(other))
    if verd.log_file:
        other = log_messages(verd.log_file)
        if other:
            meta["notes"].append("Verdaccio log messages (level warn, whole run): " + "; ".join(other))
    for p in (ketch, verd):
        if p.error:
            meta["notes"].append(f"{p.label}: n/a — {p.error}")
        for n in p.notes:
            meta["notes"].append(f"{p.label}: {n}")
        for key, label in VARIANTS:
            for r in p.runs[key]:
                if "error" in r:
                    meta["notes"].append(f"{p.label}: {label} failed: {r['error'][-300:]!r}")
        for key, r in p.offline.items():
            if "error" in r:
                meta["notes"].append(f"{p.label}: offline ({key}) install failed: {r['error'][-400:]!r}")
    if failure:
        meta["notes"].append(f"**The run failed:** {failure}")
    meta["elapsed_s"] = time.time() - started
    meta["machine"]["load average at the end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if install_dir and verd.error != "skipped (--skip)":
        meta["machine"]["verdaccio"] = verdaccio_version(install_dir)

    text = render(ketch, verd, meta, ds_line, args.runs)
    print("\n" + text)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"proxy-{stamp}.json").write_text(json.dumps({
        "meta": meta, "proxies": {p.key: {"label": p.label, "error": p.error, "warm": p.warm,
                                          "runs": p.runs, "offline": p.offline}
                                  for p in (ketch, verd)}}, indent=2, default=str))
    target = args.results or HERE / "PROXY_RESULTS.md"
    target.write_text("# Proxy benchmark results\n\nWritten by `python benchmarks/proxy_bench.py` "
                      "(see README.md); the latest run.\n\n" + text)
    log(f"wrote {target} (total {meta['elapsed_s'] / 60:.1f} min)")
    if not args.keep:
        subprocess.Popen(["rm", "-rf", "--", str(work)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        log(f"kept {work}")
    return 1 if failure else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
