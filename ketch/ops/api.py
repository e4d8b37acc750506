"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketch.context import ctx
from ketch.ops import metrics

CHECK_TIMEOUT = 2.0


async def health(request: Request) -> Response:
    """Liveness: the process is up and serving."""
    return JSONResponse({"status": "ok"}, headers={"cache-control": "no-store"})


async def ready(request: Request) -> Response:
    """Readiness: the database and the blob store answer."""
    c = ctx(request)
    checks = {"database": c.db.ping(), "storage": c.blobs.ping()}
    results = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, CHECK_TIMEOUT)
            results[name] = "ok"
        except Exception as exc:  # any failure means not ready; say which and why
            results[name] = f"unavailable: {type(exc).__name__}"
    ok = all(v == "ok" for v in results.values())
    headers = {"cache-control": "no-store"}
    if not ok:
        headers["retry-after"] = "5"
    return JSONResponse({"status": "ready" if ok else "unavailable", **results}, status_code=200 if ok else 503,
                        headers=headers)


async def metrics_endpoint(request: Request) -> Response:
    return Response(await asyncio.to_thread(metrics.render), media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [
    Route("/-/health", health, methods=["GET", "HEAD"]),
    Route("/-/ready", ready, methods=["GET", "HEAD"]),
    Route("/-/metrics", metrics_endpoint, methods=["GET"]),
]
