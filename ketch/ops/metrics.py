"""Prometheus metrics. With several worker processes, ``ketch serve`` points PROMETHEUS_MULTIPROC_DIR
at a directory in the data dir, so that /-/metrics sums every worker's numbers."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

REQUESTS = Counter("ketch_http_requests_total", "HTTP requests handled", ["route", "method", "status"])
LATENCY = Histogram(
    "ketch_http_request_duration_seconds", "Time to handle an HTTP request", ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PACKUMENT_CACHE = Counter("ketch_packument_cache_total", "Packument cache lookups", ["result"])
PUBLISHES = Counter("ketch_publishes_total", "Publish attempts", ["result"])
DB_POOL = Gauge("ketch_db_pool_connections", "Database connections of this node's pools", ["state"],
                multiprocess_mode="livesum")


def render() -> bytes:
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
