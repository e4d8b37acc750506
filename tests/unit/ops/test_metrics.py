"""The batched metrics tally must end up with exactly what per-request Prometheus updates give."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from ketch.ops import metrics
from ketch.ops.metrics import LATENCY, PACKUMENT_CACHE, REQUESTS, Tally, render


def _sample(name: str, labels: dict) -> float:
    for metric in (REQUESTS, LATENCY, PACKUMENT_CACHE):
        for family in metric.collect():
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
    raise KeyError((name, labels))


def test_tally_matches_direct_observation():
    reference = CollectorRegistry()
    ref_latency = Histogram("ref_seconds", "ref", ["route"], buckets=LATENCY._upper_bounds[:-1], registry=reference)
    ref_requests = Counter("ref_requests", "ref", ["route", "method", "status"], registry=reference)
    tally = Tally()
    route = "unit-test-route"
    # Includes values exactly on bucket bounds (Prometheus buckets are "less than or equal").
    timings = [0.0001, 0.0005, 0.0005001, 0.001, 0.003, 0.01, 0.2, 0.7, 3, 11, 0.0025, 0.0025]
    before = {b: _bucket(route, b) for b in ("0.0005", "0.0025", "10.0", "+Inf")}
    for i, seconds in enumerate(timings):
        status = 200 if i % 3 else 404
        tally.request(route, "GET", status, seconds)
        ref_latency.labels(route).observe(seconds)
        ref_requests.labels(route, "GET", status).inc()
    tally.flush()
    ref = {s.name + repr(sorted(s.labels.items())): s.value
           for f in reference.collect() for s in f.samples}
    for bound in ("0.0005", "0.0025", "10.0", "+Inf"):
        want = ref["ref_seconds_bucket" + repr(sorted({"route": route, "le": bound}.items()))]
        assert _bucket(route, bound) - before[bound] == want, bound
    assert _sample("ketch_http_request_duration_seconds_sum", {"route": route}) == sum(timings)
    assert _sample("ketch_http_requests_total", {"route": route, "status": "404"}) == 4
    assert _sample("ketch_http_requests_total", {"route": route, "status": "200"}) == 8


def _bucket(route: str, le: str) -> float:
    try:
        return _sample("ketch_http_request_duration_seconds_bucket", {"route": route, "le": le})
    except KeyError:
        return 0.0


def test_counts_wait_for_a_flush_and_render_flushes():
    hits = PACKUMENT_CACHE.labels("hit")
    start = hits._value.get()
    for _ in range(5):
        metrics.TALLY.inc(hits)
    assert hits._value.get() == start
    text = render().decode()
    assert hits._value.get() == start + 5
    assert 'ketch_packument_cache_total{result="hit"}' in text
