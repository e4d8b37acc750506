"""Relevance on a 5,000-package corpus: do the packages people mean come out on top?

Metrics over the labelled queries of ``queries.py``:
- precision@3 = |expected ∩ top 3| / min(3, |expected|), averaged;
- MRR = mean of 1 / rank of the first expected package (0 when it is not in the top 10).
Both backends must pass the same thresholds; the per-query table is printed (``-s`` shows it).
"""

from __future__ import annotations

import asyncio

from ketch.db import Database
from ketch.search import services
from ketch.search.query import parse
from tests.search.queries import QUERIES

MIN_PRECISION_AT_3 = 0.9
MIN_MRR = 0.95


async def _run_all(url: str) -> list[tuple[str, str, list[str], list[str]]]:
    db = Database(url)
    out = []
    try:
        async with db.read() as session:
            for kind, text, expected in QUERIES:
                result = await services.search(session, services.Params(parse(text), size=10), None, "http://x")
                out.append((kind, text, expected, [o["package"]["name"] for o in result["objects"]]))
    finally:
        await db.dispose()
    return out


def metrics(runs) -> tuple[float, float, list[str]]:
    precision, reciprocal, misses = [], [], []
    for kind, text, expected, got in runs:
        hits = len(set(expected) & set(got[:3]))
        precision.append(hits / min(3, len(expected)))
        rank = next((i + 1 for i, name in enumerate(got) if name in expected), None)
        reciprocal.append(1 / rank if rank else 0.0)
        if hits < min(3, len(expected)):
            misses.append(f"{kind:9} {text!r}: expected {expected}, top 3 {got[:3]}")
    return sum(precision) / len(precision), sum(reciprocal) / len(reciprocal), misses


def test_relevance(corpus_db):
    backend, url = corpus_db
    runs = asyncio.run(_run_all(url))
    assert len(runs) >= 40
    p3, mrr, misses = metrics(runs)
    print(f"\n[{backend}] {len(runs)} queries: precision@3 = {p3:.3f}, MRR = {mrr:.3f}")
    for miss in misses:
        print("  miss:", miss)
    assert p3 >= MIN_PRECISION_AT_3, misses
    assert mrr >= MIN_MRR, misses


def test_every_kind_of_query_finds_its_first_package(corpus_db):
    """No kind of query may fail outright: the first expected package is in the top 3 for each."""
    _, url = corpus_db
    failures = [f"{text!r} → {got[:3]}" for kind, text, expected, got in asyncio.run(_run_all(url))
                if not set(expected[:1]) & set(got[:3]) and kind in ("exact", "scoped", "typo", "prefix")]
    assert not failures, failures
