"""What counting downloads costs the tarball path: Ketch with and without counting, side by side.

    python benchmarks/download_counting.py [--packages 200] [--rounds 3] [--duration 8] [--workers 2]

Starts two embedded Ketch servers (``KETCH_COUNT_DOWNLOADS=true`` and ``false``) with the same
packages, then runs wrk over every package's tarball against each, alternating servers for
``--rounds`` rounds so drift hits both alike. Prints the median req/s of each, the cost of
counting in percent (target: under 5 %), and checks that the counting server recorded every
download wrk made (the registry-wide total for today, after the flush).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from common import free_port, publish_body  # noqa: E402
from common import wrk  # noqa: E402


def start(work: Path, counting: bool, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "KETCH_COUNT_DOWNLOADS": "true" if counting else "false", "KETCH_ACCESS_LOG": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "ketch", "serve", "--port", str(port), "--data-dir",
                             str(work / ("on" if counting else "off")), "--workers", str(workers)],
                            env=env, stdout=open(work / f"server-{counting}.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if httpx.get(base + "/-/ping", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"Ketch did not start; see {work}")


def load(base: str, count: int) -> list[str]:
    client = httpx.Client(base_url=base, timeout=30)
    token = client.put("/-/user/org.couchdb.user:bench", json={
        "name": "bench", "password": "bench-password", "email": "bench@example.com"}).json()["token"]
    paths = []
    for i in range(count):
        name = f"count-bench-{i}"
        client.put("/" + name, json=publish_body(name, "1.0.0", {}),
                   headers={"authorization": f"Bearer {token}"}).raise_for_status()
        paths.append(f"/{name}/-/{name}-1.0.0.tgz")
    return paths


def today_total(base: str) -> int:
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    resp = httpx.get(f"{base}/-/downloads/point/{today}", timeout=10)
    resp.raise_for_status()
    return resp.json()["downloads"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="ketch-count-bench-"))
    servers = {}
    try:
        for counting in (True, False):
            servers[counting] = start(work, counting, args.workers)
        paths = {counting: load(base, args.packages) for counting, (_, base) in servers.items()}
        paths_file = work / "tarballs.txt"
        paths_file.write_text("\n".join(paths[True]) + "\n")
        rps: dict[bool, list[float]] = {True: [], False: []}
        requests = 0
        for _ in range(args.rounds):
            for counting in (True, False):
                r = wrk(servers[counting][1], paths_file, args.duration, args.connections)
                rps[counting].append(r["rps"])
                if counting:
                    requests += r["requests"]
        time.sleep(3)  # one flush interval and then some
        counted = today_total(servers[True][1])
        uncounted = today_total(servers[False][1])
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    on, off = statistics.median(rps[True]), statistics.median(rps[False])
    print(f"\nTarball GETs, {args.packages} packages, {args.workers} workers, wrk -c{args.connections} "
          f"-d{args.duration}s x {args.rounds} rounds (median req/s)\n")
    print(f"{'counting on':16} {on:>10,.0f} req/s   rounds: {', '.join(f'{x:,.0f}' for x in rps[True])}")
    print(f"{'counting off':16} {off:>10,.0f} req/s   rounds: {', '.join(f'{x:,.0f}' for x in rps[False])}")
    print(f"{'cost of counting':16} {100 * (1 - on / off):>9.1f} %   (target: under 5 %)")
    print(f"{'downloads stored':16} {counted:>10,} for {requests:,} requests wrk saw complete "
          f"(it does not count those still in flight when it stops); the server without counting stored {uncounted}")


if __name__ == "__main__":
    main()
