"""Operator endpoints: liveness, readiness and the Prometheus metrics of what the registry served."""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.testclient import TestClient

from ketch.app import create_app
from ketch.db.migrate import upgrade


def _value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_health_and_ready(reg):
    assert reg.client.get("/-/health").status_code == 200
    ready = reg.client.get("/-/ready")
    assert ready.status_code == 200, ready.text


def test_metrics_count_requests_cache_hits_and_publishes(reg, alice):
    name = reg.unique("metrics")
    before = reg.client.get("/-/metrics").text
    reg.publish_ok(alice, name, "1.0.0")
    for _ in range(3):
        assert reg.client.get(f"/{reg.escaped(name)}").status_code == 200
    text = reg.client.get("/-/metrics").text
    served = 'ketch_http_requests_total{method="GET",route="packument",status="200"}'
    assert _value(text, served) - _value(before, served) >= 3
    hits = 'ketch_packument_cache_total{result="hit"}'
    assert _value(text, hits) - _value(before, hits) >= 2
    ok = 'ketch_publishes_total{result="ok"}'
    assert _value(text, ok) - _value(before, ok) == 1
    buckets = [float(m) for m in re.findall(
        r'ketch_http_request_duration_seconds_bucket\{le="[^"]+",route="packument"\} (\S+)', text)]
    assert buckets == sorted(buckets) and buckets[-1] >= 3  # cumulative, ending at +Inf


def test_small_public_tarballs_are_served_from_memory_with_the_same_bytes(reg, alice):
    name = reg.unique("hot")
    reg.publish_ok(alice, name, "1.0.0")
    url = reg.packument(name).json()["versions"]["1.0.0"]["dist"]["tarball"]
    path = "/" + url.split("/", 3)[3]
    first, second = reg.client.get(path), reg.client.get(path)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and len(first.content) > 0
    for resp in (first, second):
        assert resp.headers["content-length"] == str(len(first.content))
        assert resp.headers["content-type"] == "application/octet-stream"
        assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    integrity = reg.packument(name).json()["versions"]["1.0.0"]["dist"]["integrity"]
    assert integrity == "sha512-" + base64.b64encode(hashlib.sha512(first.content).digest()).decode()
    hot = reg.client.app.state.ketch.caches["tarballs"]
    assert hot.bytes >= len(first.content)


def test_download_counting_can_be_turned_off(reg, tmp_path):
    settings = reg.settings.model_copy(update={"data_dir": tmp_path, "count_downloads": False})
    upgrade(settings.resolved_database_url)
    with TestClient(create_app(settings)) as client:
        off = type(reg)(client, settings)
        user = off.signup("off")
        name = off.unique("nocount")
        off.publish_ok(user, name, "1.0.0")
        url = off.packument(name).json()["versions"]["1.0.0"]["dist"]["tarball"]
        assert off.client.get("/" + url.split("/", 3)[3]).status_code == 200
        assert "downloads" not in off.client.app.state.ketch.caches
