"""npm's downloads API under ``/-/`` (so it never collides with a package name):

- ``GET /-/downloads/point/{period}[/{packages}]``: one total per package, or registry-wide;
- ``GET /-/downloads/range/{period}[/{packages}]``: one entry per day, zeros included;
- ``GET /-/versions/{package}/last-week``: per-version totals (any other period works too).

``{packages}`` is one name or a comma-separated bulk list (scoped names allowed, unlike npm).
A package the caller may not read answers the registry's one 404, exactly like a missing one;
in bulk answers it is ``null``, exactly like a missing one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketch.accounts.auth import identify
from ketch.context import ctx
from ketch.http.errors import BadRequest
from ketch.registry import services as registry
from ketch.stats import periods, services
from ketch.stats.periods import InvalidPeriod, Period


def _period(text: str, *, bulk: bool = False) -> Period:
    try:
        return periods.parse(text, periods.today(), bulk=bulk)
    except InvalidPeriod as e:
        raise BadRequest(str(e)) from None


def _names(spec: str) -> list[str]:
    names = list(dict.fromkeys(n for n in spec.split(",") if n))
    if len(names) > periods.MAX_BULK_PACKAGES:
        raise BadRequest(f"Bulk requests are limited to {periods.MAX_BULK_PACKAGES} packages")
    return names


def _days(period: Period, counts: dict) -> list[dict]:
    return [{"day": day.isoformat(), "downloads": counts.get(day, 0)} for day in period.each_day()]


async def point(request: Request) -> Response:
    return await _downloads(request, ranged=False)


async def range_(request: Request) -> Response:
    return await _downloads(request, ranged=True)


async def _downloads(request: Request, *, ranged: bool) -> Response:
    spec = request.path_params.get("packages", "")
    bulk = "," in spec
    period = _period(request.path_params["period"], bulk=bulk)
    names = _names(spec) if spec else []
    span = {"start": period.start.isoformat(), "end": period.end.isoformat()}
    async with ctx(request).db.read() as session:
        if not spec:
            days = await services.registry_days(session, period)
            return JSONResponse({"downloads": _days(period, days) if ranged else sum(days.values()), **span})
        ident = await identify(request)
        readable = []
        for name in names:
            if not bulk:
                await registry.readable_package(session, name, ident)  # the one 404 otherwise
                readable.append(name)
            elif await _readable(session, name, ident):
                readable.append(name)
        if ranged:
            found = await services.package_days(session, readable, period)
            values = {name: _days(period, found[name]) for name in readable}
        else:
            values = await services.package_totals(session, readable, period)
    answers = {name: {"downloads": values[name], **span, "package": name} for name in readable}
    if not bulk:
        return JSONResponse(answers[names[0]])
    return JSONResponse({name: answers.get(name) for name in names})


async def _readable(session, name: str, ident) -> bool:
    package = await registry.get_package(session, name)
    return package is not None and package.unpublished is None and await registry.can_read(session, package, ident)


async def versions(request: Request) -> Response:
    period = _period(request.path_params["period"])
    name = request.path_params["package"]
    ident = await identify(request)
    async with ctx(request).db.read() as session:
        package = await registry.readable_package(session, name, ident)
        counts = dict.fromkeys(await services.version_numbers(session, package.id), 0)
        counts.update(await services.version_totals(session, name, period))
    return JSONResponse({"package": name, "downloads": counts})


routes = [
    Route("/-/downloads/point/{period}", point, methods=["GET"]),
    Route("/-/downloads/point/{period}/{packages:path}", point, methods=["GET"]),
    Route("/-/downloads/range/{period}", range_, methods=["GET"]),
    Route("/-/downloads/range/{period}/{packages:path}", range_, methods=["GET"]),
    Route("/-/versions/{package:path}/{period}", versions, methods=["GET"]),
]
