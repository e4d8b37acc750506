"""Search latency on a large generated registry, on SQLite (FTS5) and PostgreSQL (tsvector + pg_trgm).

    python benchmarks/search_bench.py [--packages 100000] [--repeat 8] [--postgres URL] [--backends sqlite,postgres]

Loads the relevance test's corpus generator (tests/search/corpus.py) at the given size into a
fresh database per backend (a temp SQLite file; a fresh ``ketch_bench_search_<pid>`` database on
the PostgreSQL server, dropped afterwards), then times ``ketch.search.services.search`` in process
— the whole search (candidates, ranking, response objects), without HTTP — for a mix of exact
names, prefixes, typos, multi-word descriptions, scoped names and qualifiers, each repeated
``--repeat`` times after one warm-up. Prints p50/p99 per kind and overall; writes JSON to benchmarks/out/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ketch.config import async_url  # noqa: E402
from ketch.db import Database  # noqa: E402
from ketch.db.migrate import upgrade  # noqa: E402
from ketch.search import services  # noqa: E402
from ketch.search.query import parse  # noqa: E402
from tests.search.corpus import generate  # noqa: E402
from tests.search.load import load  # noqa: E402

QUERIES = {
    "exact": ["express", "react", "lodash", "@babel/core", "chalk", "uuid"],
    "prefix": ["expre", "react-rou", "mongo", "typescr", "lod"],
    "typo": ["expresss", "lodahs", "axois", "webpak", "sequalize"],
    "words": ["web framework", "http client", "date library", "schema validation", "markdown parser",
              "fast cache for react", "json logger"],
    "qualifier": ["keywords:validation", "react not:deprecated", "scope:acme", "author:tj framework",
                  "date is:unstable", "maintainer:dev007"],
}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def measure(url: str, repeat: int) -> dict[str, list[float]]:
    db = Database(url)
    timings: dict[str, list[float]] = {kind: [] for kind in QUERIES}
    try:
        for kind, texts in QUERIES.items():
            for text in texts:
                params = services.Params(parse(text), size=20)
                for i in range(repeat + 1):
                    async with db.read() as session:
                        start = time.perf_counter()
                        await services.search(session, params, None, "http://bench")
                        elapsed = (time.perf_counter() - start) * 1000
                    if i:  # the first run warms caches
                        timings[kind].append(elapsed)
    finally:
        await db.dispose()
    return timings


async def fill(url: str, packages) -> float:
    db = Database(url)
    start = time.perf_counter()
    try:
        await load(db, packages)
    finally:
        await db.dispose()
    return time.perf_counter() - start


async def _pg(server: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(server + "/postgres", timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run_backend(backend: str, packages, args) -> dict | None:
    cleanup = None
    if backend == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="ketch-search-bench-"))
        url = async_url(f"sqlite:///{folder / 'bench.sqlite3'}")
        cleanup = lambda: shutil.rmtree(folder, ignore_errors=True)  # noqa: E731
    else:
        name = f"ketch_bench_search_{os.getpid()}"
        try:
            asyncio.run(_pg(args.postgres, f'CREATE DATABASE "{name}"'))
        except OSError as e:
            print(f"postgres: unreachable ({e}), skipped")
            return None
        url = async_url(f"{args.postgres}/{name}")
        cleanup = lambda: asyncio.run(_pg(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))  # noqa: E731
    try:
        upgrade(url)
        load_s = asyncio.run(fill(url, packages))
        print(f"{backend}: loaded {len(packages)} packages in {load_s:.0f} s", flush=True)
        timings = asyncio.run(measure(url, args.repeat))
    finally:
        if cleanup:
            cleanup()
    every = [t for values in timings.values() for t in values]
    rows = {kind: {"p50_ms": statistics.median(v), "p99_ms": percentile(v, 99), "n": len(v)}
            for kind, v in timings.items()}
    rows["all"] = {"p50_ms": statistics.median(every), "p99_ms": percentile(every, 99), "n": len(every)}
    return {"load_s": load_s, "latency": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    start = time.perf_counter()
    packages = generate(args.packages)
    print(f"generated {len(packages)} packages in {time.perf_counter() - start:.0f} s", flush=True)
    results = {b: run_backend(b, packages, args) for b in args.backends.split(",")}
    kinds = [*QUERIES, "all"]
    print(f"\nsearch latency, {args.packages} packages, ms (p50 / p99)")
    print(f"| {'query kind':<10} | " + " | ".join(f"{b:>17}" for b in results) + " |")
    print(f"|{'-' * 12}|" + "|".join("-" * 19 for _ in results) + "|")
    for kind in kinds:
        cells = [f"{r['latency'][kind]['p50_ms']:7.1f} / {r['latency'][kind]['p99_ms']:7.1f}" if r else "n/a"
                 for r in results.values()]
        print(f"| {kind:<10} | " + " | ".join(f"{c:>17}" for c in cells) + " |")
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / f"search-{int(time.time())}.json").write_text(json.dumps({"packages": args.packages, **results}, indent=2))


if __name__ == "__main__":
    main()
