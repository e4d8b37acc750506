"""The access log counts the bytes of every response, files the server sends itself included."""

from __future__ import annotations

import io

import orjson

from ketch.ops.observe import Observability


async def _run(messages: list[dict]) -> dict:
    async def app(scope, receive, send):
        for message in messages:
            await send(message)

    async def ignore(_message):
        pass

    stream = io.BytesIO()
    observed = Observability(app, stream=stream)
    scope = {"type": "http", "method": "GET", "path": "/x/-/x-1.0.0.tgz", "headers": [], "client": ("127.0.0.1", 1)}
    await observed(scope, None, ignore)
    observed.flush()
    return orjson.loads(stream.getvalue().splitlines()[-1])


async def test_body_bytes_are_counted():
    line = await _run([{"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]},
                       {"type": "http.response.body", "body": b"hello"}])
    assert (line["status"], line["bytes"]) == (200, 5)


async def test_a_file_sent_by_the_server_counts_its_declared_length():
    line = await _run([{"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]},
                       {"type": "http.response.pathsend", "path": "/tmp/blob"}])
    assert (line["status"], line["bytes"]) == (200, 4096)
