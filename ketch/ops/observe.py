"""Outermost ASGI layer: per-request metrics and structured JSON access logs.

Log lines and metrics are buffered and written at most every 200 ms, so observing costs the hot path
a dict and a list append rather than a write system call and locked Prometheus updates per request.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson

from ketch.ops.metrics import TALLY, route_label


class Observability:
    def __init__(self, app, *, access_log: bool = True, stream=None):
        self.app = app
        self.access_log = access_log
        self.stream = stream or sys.stdout.buffer
        self._buffer: list[bytes] = []
        self._flusher: asyncio.Task | None = None

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500
        size = 0
        declared = 0

        async def observed_send(message):
            nonlocal status, size, declared
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", ()):
                    if key.lower() == b"content-length" and value.isdigit():
                        declared = int(value)
            elif kind == "http.response.body":
                size += len(message.get("body", b""))
            elif kind == "http.response.pathsend":  # a file the server sends itself: its declared length
                size += declared
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            elapsed = time.perf_counter() - start
            method = scope["method"]
            path = scope["path"]
            TALLY.request(route_label(method, path), method, status, elapsed)
            if self.access_log:
                self._log(scope, method, path, status, elapsed, size)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    def _log(self, scope, method, path, status, elapsed, size) -> None:
        ua = b""
        for key, value in scope["headers"]:
            if key == b"user-agent":
                ua = value
                break
        client = scope.get("client")
        self._buffer.append(orjson.dumps({
            "ts": time.time(), "method": method, "path": path, "status": status,
            "ms": round(elapsed * 1000, 3), "bytes": size, "ip": client[0] if client else None,
            "ua": ua.decode("latin-1")[:200],
        }) + b"\n")

    async def _flush_later(self) -> None:
        await asyncio.sleep(0.2)
        self.flush()

    def flush(self) -> None:
        TALLY.flush()
        if self._buffer:
            lines, self._buffer = self._buffer, []
            try:
                self.stream.write(b"".join(lines))
                self.stream.flush()
            except (OSError, ValueError):
                pass
