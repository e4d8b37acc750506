"""Prometheus metrics. With several worker processes, ``ketch serve`` points PROMETHEUS_MULTIPROC_DIR
at a directory in the data dir, so that /-/metrics sums every worker's numbers."""

from __future__ import annotations

import bisect
import os
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

REQUESTS = Counter("ketch_http_requests_total", "HTTP requests handled", ["route", "method", "status"])
LATENCY = Histogram(
    "ketch_http_request_duration_seconds", "Time to handle an HTTP request", ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PACKUMENT_CACHE = Counter("ketch_packument_cache_total", "Packument cache lookups", ["result"])
PUBLISHES = Counter("ketch_publishes_total", "Publish attempts", ["result"])
PROXY = Counter("ketch_proxy_requests_total", "Reads of names routed to an uplink, by how the proxy answered "
                "(hit: from cache; miss: fetched; revalidated: upstream said 304; stale: cache served "
                "because upstream failed; error: nothing to serve)", ["uplink", "kind", "result"])
UPSTREAM_LATENCY = Histogram("ketch_upstream_request_duration_seconds", "Time of requests to uplinks",
                             ["uplink", "kind"],
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
UPSTREAM_ERRORS = Counter("ketch_upstream_errors_total", "Failed requests to uplinks", ["uplink", "reason"])
DB_POOL = Gauge("ketch_db_pool_connections", "Database connections of this node's pools", ["state"],
                multiprocess_mode="livesum")


class Tally:
    """This process's hot-path numbers, added to the Prometheus values in batches (:meth:`flush`).

    In multiprocess mode every Prometheus update takes a lock and checks the pid: a request's
    counter, histogram and cache updates cost ~16 µs, a sixth of a cached packument request's CPU.
    Adding to a dict costs ~1 µs; the owner flushes a few times a second and before /-/metrics.
    """

    def __init__(self):
        self._bounds = LATENCY._upper_bounds
        self.requests: defaultdict[tuple, int] = defaultdict(int)
        self.latency: dict[str, list] = {}
        self.counts: defaultdict[object, int] = defaultdict(int)

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, status)] += 1
        row = self.latency.get(route)
        if row is None:
            row = self.latency[route] = [0] * len(self._bounds) + [0.0]
        row[bisect.bisect_left(self._bounds, seconds)] += 1
        row[-1] += seconds

    def inc(self, counter) -> None:
        """``counter``: a labelled Counter child, e.g. ``PACKUMENT_CACHE.labels("hit")``."""
        self.counts[counter] += 1

    def flush(self) -> None:
        requests, self.requests = self.requests, defaultdict(int)
        latency, self.latency = self.latency, {}
        counts, self.counts = self.counts, defaultdict(int)
        for labels, n in requests.items():
            REQUESTS.labels(*labels).inc(n)
        for route, row in latency.items():
            child = LATENCY.labels(route)
            # The histogram's own per-bucket values (non-cumulative, as Histogram.observe keeps them).
            for i, n in enumerate(row[:-1]):
                if n:
                    child._buckets[i].inc(n)
            child._sum.inc(row[-1])
        for counter, n in counts.items():
            counter.inc(n)


TALLY = Tally()


def render() -> bytes:
    TALLY.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


def route_label(method: str, path: str) -> str:
    """A low-cardinality name for the route a request hit."""
    if path.startswith("/-/"):
        parts = path.split("/", 5)
        if parts[2] in ("package", "team", "org", "user") and len(parts) > 3:
            return "/-/" + parts[2] + ("/dist-tags" if "/dist-tags" in path else "")
        return "/".join(parts[:4]) if parts[2] in ("npm", "v1") else "/-/" + parts[2]
    if "/-/" in path:
        return "tarball" if method in ("GET", "HEAD") else "tarball-delete"
    if method in ("GET", "HEAD"):
        return "packument"
    return "package-write"
