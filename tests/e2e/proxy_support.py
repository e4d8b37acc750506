"""A fault-injecting front for an upstream registry, so proxy tests can make the uplink misbehave.

``Gate`` listens on loopback and forwards to a real Ketch server (the "upstream"), keeping the
Host header its clients used so the upstream's tarball URLs point at the gate. Tests switch its
``mode`` to make it slow, down, corrupt tarballs or send malformed JSON, put canned answers on
chosen paths, and read ``seen`` to count what reached the upstream.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class Gate:
    def __init__(self, upstream_url: str):
        self.upstream = upstream_url.rstrip("/")
        self.mode = "pass"  # pass | down | slow | corrupt | html | drip | truncate
        self.delay = 0.0
        self.canned: dict[str, tuple[int, dict, bytes]] = {}
        self.seen: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                gate._handle(self)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.client = httpx.Client(timeout=30, trust_env=False)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()

    def paths(self, contains: str = "") -> list[str]:
        with self.lock:
            return [p for _, p, _ in self.seen if contains in p]

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()
        self.mode = "pass"
        self.canned.clear()

    # -- one request ---------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.seen.append((h.command, h.path, dict(h.headers)))
        mode = self.mode
        if mode == "down":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "slow":
            time.sleep(self.delay)
        if h.path in self.canned:
            status, headers, body = self.canned[h.path]
            return self._reply(h, status, headers, body)
        if mode == "html":
            return self._reply(h, 200, {"content-type": "text/html"}, b"<html><body>Gateway says hi</body></html>")
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "accept-encoding")}
        headers["host"] = f"127.0.0.1:{self.port}"
        resp = self.client.request(h.command, self.upstream + h.path, headers=headers)
        body = resp.content
        out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP}
        if h.path.endswith(".tgz") and resp.status_code == 200:
            if mode == "corrupt":
                body = body[:-8] + bytes(8)
            elif mode == "truncate":
                return self._truncated(h, out, body)
        if mode == "drip":
            return self._drip(h, resp.status_code, out, body)
        self._reply(h, resp.status_code, out, body)

    def _reply(self, h, status: int, headers: dict, body: bytes) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _truncated(self, h, headers: dict, body: bytes) -> None:
        h.send_response(200)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[:10])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    def _drip(self, h, status: int, headers: dict, body: bytes) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        try:
            for i in range(len(body)):
                h.wfile.write(body[i:i + 1])
                h.wfile.flush()
                time.sleep(1)
        except OSError:
            pass
