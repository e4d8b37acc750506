"""Rendering pages: the response headers every page carries, the 404 page, and template filters."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from ketch.web.templates import SECURITY_HEADERS, templates

# Package pages share their URL with the JSON packument: caches must key on Accept; and on the
# session cookie, since logged-in members see more.
PAGE_HEADERS = {**SECURITY_HEADERS, "vary": "accept, cookie"}


def page(request: Request, template: str, status: int = 200, *, viewer=None, headers: dict | None = None,
         **values) -> Response:
    values["viewer"] = viewer
    cache = "private, no-cache" if viewer is not None else "no-cache"
    return templates.TemplateResponse(request, template, values, status_code=status,
                                      headers={**PAGE_HEADERS, "cache-control": cache, **(headers or {})})


def not_found(request: Request, viewer=None, what: str = "package", name: str | None = None) -> Response:
    """The one 404 page: the same for a missing package and one the viewer may not read."""
    return page(request, "not_found.html", 404, viewer=viewer, what=what, name=name)


def pkg_url(name: str, **params) -> str:
    """The package page URL: ``/@scope/name`` with the scope slash literal."""
    url = "/" + quote(name, safe="@/")
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    return url + ("?" + urlencode(clean) if clean else "")


def filesize(n: object) -> str:
    if not isinstance(n, (int, float)) or n < 0:
        return "—"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1000
    return f"{n} B"


def number(n: object) -> str:
    return f"{n:,}" if isinstance(n, int) else "—"


def parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def ago(value: object) -> str:
    when = parse_time(value)
    if when is None:
        return "—"
    seconds = (datetime.now(timezone.utc) - when).total_seconds()
    if seconds < 60:
        return "just now"
    for size, unit in ((31_536_000, "year"), (2_592_000, "month"), (604_800, "week"), (86_400, "day"),
                       (3_600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def day(value: object) -> str:
    when = parse_time(value)
    return when.strftime("%Y-%m-%d") if when else "—"


def iso(value: object) -> str:
    when = parse_time(value)
    return when.isoformat(timespec="seconds").replace("+00:00", "Z") if when else ""


templates.env.filters.update(pkg_url=pkg_url, filesize=filesize, number=number, ago=ago, day=day, iso=iso)
templates.env.globals["pkg_url"] = pkg_url
