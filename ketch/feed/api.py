"""``GET /_changes``: the replication feed, in the shape of CouchDB's ``_changes`` that npm mirror
tools follow (npm-website-and-apis.md §5).

Parameters: ``since`` (a sequence number, or ``now``; default 0), ``limit`` (default 1000, values
above 10,000 are capped), ``descending=true`` (newest first, below ``since`` when given), and
``feed=longpoll`` with ``timeout`` (milliseconds, at most 60 s, default 60 s): with no change to
report yet, the answer waits for one. ``feed=normal`` is the default; ``continuous`` is refused.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketch.accounts.auth import identify
from ketch.context import ctx
from ketch.feed import services
from ketch.http.errors import BadRequest

DEFAULT_LIMIT = 1000
MAX_TIMEOUT_MS = 60_000


def _number(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"{name} must be a whole number of at least 0, not {raw[:40]!r}.")
    return int(raw)


def _watcher(request: Request) -> services.Watcher:
    caches = ctx(request).caches
    if "feed-watcher" not in caches:
        caches["feed-watcher"] = services.Watcher(ctx(request).db)
    return caches["feed-watcher"]


async def changes(request: Request) -> Response:
    params = request.query_params
    feed = params.get("feed", "normal")
    if feed not in ("normal", "longpoll"):
        raise BadRequest('feed must be "normal" or "longpoll".')
    descending = params.get("descending", "false") == "true"
    limit = min(_number(request, "limit", DEFAULT_LIMIT), services.MAX_LIMIT)
    timeout = min(_number(request, "timeout", MAX_TIMEOUT_MS), MAX_TIMEOUT_MS) / 1000
    ident = await identify(request)
    db = ctx(request).db
    if params.get("since") == "now":
        async with db.read() as session:
            since = await services.last_seq(session)
    else:
        since = _number(request, "since", None if descending else 0)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with db.read() as session:
            page = await services.changes(session, ident, since=since, limit=limit, descending=descending)
        left = deadline - asyncio.get_running_loop().time()
        if page.results or feed != "longpoll" or descending or limit == 0 or left <= 0:
            break
        await _watcher(request).wait(page.last_seq, left)
        since = page.last_seq
    # Private packages are filtered per caller; public ones change with every publish.
    return JSONResponse({"results": page.results, "last_seq": page.last_seq},
                        headers={"cache-control": "private, no-cache" if ident else "no-cache",
                                 "vary": "authorization"})


routes = [Route("/_changes", changes, methods=["GET", "HEAD"], name="npm.changes")]
