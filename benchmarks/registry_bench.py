"""Measure Ketch's read throughput and latency with wrk, and its publish latency.

    python benchmarks/registry_bench.py [--packages 300] [--workers 2] [--duration 10] [--connections 64]

Starts `ketch serve` on a free loopback port with a fresh data dir, publishes the packages
(1-8 versions each, one with 60), then runs wrk against full packuments, abbreviated packuments,
tarballs, missing packages and token-authenticated packuments, rotating over every package.
Prints a table and writes it as JSON to benchmarks/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from common import free_port, publish_body  # noqa: E402
from common import wrk as _wrk  # noqa: E402


def wrk(url: str, paths_file: Path, duration: int, connections: int, accept: str = "", auth: str = "") -> dict:
    r = _wrk(url, paths_file, duration, connections, accept, auth)
    return {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "non_2xx")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database-url", help="e.g. postgresql://postgres@127.0.0.1:5432/DB (default: embedded SQLite)")
    parser.add_argument("--storage-url", help="e.g. s3://bucket/prefix, with AWS_* in the environment")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")

    work = Path(tempfile.mkdtemp(prefix="ketch-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "ketch", "serve", "--port", str(port), "--data-dir",
                               str(work / "data"), "--workers", str(args.workers)]
                              + (["--database-url", args.database_url] if args.database_url else [])
                              + (["--storage-url", args.storage_url] if args.storage_url else []),
                              stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = httpx.Client(base_url=base, timeout=30)
        for _ in range(100):
            try:
                if client.get("/-/ping").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        token = client.put("/-/user/org.couchdb.user:bench", json={
            "name": "bench", "password": "bench-password", "email": "bench@example.com"}).json()["token"]
        auth = {"authorization": f"Bearer {token}"}
        rng = random.Random(1)
        names, tarballs, publish_ms = [], [], []
        for i in range(args.packages):
            name = f"bench-pkg-{i}" if i % 3 else f"@bench/pkg-{i}"
            count = 60 if i == 0 else rng.randint(1, 8)
            deps = {names[j]: "^1.0.0" for j in rng.sample(range(len(names)), min(len(names), 3))}
            for v in range(count):
                version = f"1.{v}.0"
                body = publish_body(name, version, deps)
                t0 = time.perf_counter()
                r = client.put("/" + name.replace("/", "%2f"), json=body, headers=auth)
                publish_ms.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            names.append(name)
            tarballs.append(f"/{name}/-/{name.split('/')[-1]}-1.0.0.tgz")
        packument_paths = work / "packuments.txt"
        packument_paths.write_text("\n".join("/" + n.replace("/", "%2f") for n in names) + "\n")
        tarball_paths = work / "tarballs.txt"
        tarball_paths.write_text("\n".join(tarballs) + "\n")
        missing_paths = work / "missing.txt"
        missing_paths.write_text("\n".join(f"/no-such-package-{i}" for i in range(200)) + "\n")

        results = {}
        runs = [
            ("packument (full)", packument_paths, "application/json", ""),
            ("packument (abbreviated)", packument_paths, "application/vnd.npm.install-v1+json", ""),
            ("packument (full, token)", packument_paths, "application/json", f"Bearer {token}"),
            ("tarball", tarball_paths, "", ""),
            ("404", missing_paths, "", ""),
        ]
        for label, paths, accept, bearer in runs:
            results[label] = wrk(base, paths, args.duration, args.connections, accept, bearer)
        results["publish"] = {"median_ms": statistics.median(publish_ms),
                              "p99_ms": statistics.quantiles(publish_ms, n=100)[98], "count": len(publish_ms)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)

    print(f"\nKetch ({args.database_url or 'SQLite'}, {args.storage_url or 'files'}), {args.packages} packages, {len(publish_ms)} versions, {args.workers} workers, "
          f"wrk -t2 -c{args.connections} -d{args.duration}s\n")
    print(f"{'scenario':28} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for label, r in results.items():
        if label == "publish":
            continue
        print(f"{label:28} {r['rps']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['non_2xx']:>8}")
    p = results["publish"]
    print(f"{'publish (sequential)':28} {'':>10} {p['median_ms']:>8.2f} {p['p99_ms']:>8.2f}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / f"registry-{int(time.time())}.json").write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
