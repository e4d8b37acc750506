"""Reading request bodies with a size cap, and decoding JSON into npm-shaped 4xx errors."""

from __future__ import annotations

import orjson
from starlette.requests import ClientDisconnect, Request

from ketch.http.errors import ApiError, BadRequest


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, f"Request body too large (limit is {limit} bytes).")
        except ValueError:
            raise BadRequest("Invalid Content-Length header.") from None
    if request.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
        raise ApiError(415, "Compressed request bodies are not accepted here.")
    chunks = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"Request body too large (limit is {limit} bytes).")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest("The client closed the connection before sending the whole body.") from None
    return b"".join(chunks)


# An upper bound on object keys, checked by counting '":' before parsing (a memchr-speed scan):
# refusing a million-key JSON bomb costs milliseconds instead of a full parse.
MAX_JSON_KEYS = 100_000


async def read_json(request: Request, limit: int, *, expect: type | tuple = dict):
    ctype = request.headers.get("content-type")
    if ctype and "json" not in ctype.lower():
        raise ApiError(415, "Expected a JSON request body (Content-Type: application/json).")
    raw = await read_body(request, limit)
    if not raw.strip():
        raise BadRequest("Expected a JSON request body.")
    if raw.count(b'":') > MAX_JSON_KEYS:
        raise BadRequest(f"The JSON body has too many keys (limit {MAX_JSON_KEYS}).")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Request body is not valid JSON.") from None
    if not isinstance(data, expect):
        raise BadRequest("Request body has the wrong JSON type.")
    return data


def json_response_bytes(data) -> bytes:
    return orjson.dumps(data)
