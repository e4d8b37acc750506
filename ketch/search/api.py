"""``GET /-/v1/search``: npm's search API (npm-protocol.md §18, npm-website-and-apis.md §2).

Parameters: ``text`` (words and qualifiers), ``size`` (1–250, default 20), ``from`` (0–10000),
``quality``/``popularity``/``maintenance`` (weights 0–1, normalised to sum 1). Anything else is
ignored, as npm's registry does; a malformed value is a 400 naming the parameter.
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketch.accounts.auth import identify
from ketch.context import base_url, ctx
from ketch.http.errors import BadRequest
from ketch.search import index, scoring, services
from ketch.search.query import BadQuery, parse

MAX_SIZE = 250
MAX_FROM = 10_000


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {raw[:40]!r}.") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {value}.")
    return value


def _weight(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise BadRequest(f"{name} must be a number from 0 to 1, not {raw[:40]!r}.")
    return value


def parse_params(request: Request) -> services.Params:
    try:
        query = parse(request.query_params.get("text", ""))
    except BadQuery as e:
        raise BadRequest(str(e)) from None
    q, p, m = scoring.DEFAULT_WEIGHTS
    return services.Params(
        query=query,
        size=_int(request, "size", 20, 1, MAX_SIZE),
        offset=_int(request, "from", 0, 0, MAX_FROM),
        weights=scoring.weights(_weight(request, "quality", q), _weight(request, "popularity", p),
                                _weight(request, "maintenance", m)),
    )


async def search(request: Request) -> Response:
    params = parse_params(request)
    c = ctx(request)
    ident = await identify(request)
    async with c.db.read() as session:
        result = await services.search(session, params, ident, base_url(request))
    index.refresh_if_due(c.db)
    # Private results differ per caller; public ones change with every publish.
    return JSONResponse(result, headers={"cache-control": "private, no-cache" if ident else "no-cache",
                                         "vary": "authorization"})


routes = [Route("/-/v1/search", search, methods=["GET", "HEAD"], name="npm.search")]
