"""``WebPages``: the ASGI layer that answers browsers on the registry's own URLs.

``GET /`` and ``GET /<name>`` (``/@scope/<name>``) are the package protocol's URLs, and the fast
path answers them with JSON. A browser asks for the same URL with an ``Accept`` header that
prefers ``text/html`` — which npm, pnpm and yarn never send — and gets the page instead. Every
other request (any other method, any other Accept, ``/-/`` routes, tarball URLs, version
documents) passes through untouched, so the hot path's answers stay byte for byte the same.

The layer sits outside the fast path (``Observability → WebPages → FastPath → Starlette``).
"""

from __future__ import annotations

import logging

from starlette.requests import Request

from ketch.http.errors import ApiError
from ketch.registry.fastpath import UNAVAILABLE
from ketch.web import package, views
from ketch.web.render import page

log = logging.getLogger("ketch.web")


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def prefers_html(accept: str) -> bool:
    """Whether an Accept header asks for HTML at least as much as for JSON. ``*/*`` alone does not:
    curl and the package managers send it."""
    if "text/html" not in accept:
        return False
    html = json = 0.0
    for item in accept.split(","):
        media, _, params = item.partition(";")
        media = media.strip().lower()
        q = _quality(params)
        if media in ("text/html", "application/xhtml+xml"):
            html = max(html, q)
        elif media in ("application/json", "application/vnd.npm.install-v1+json"):
            json = max(json, q)
    return html > 0 and html >= json


def page_target(path: str) -> str | None:
    """The package name a page path addresses, "" for the home page, None for anything else."""
    if path == "/":
        return ""
    if len(path) < 2 or path[1] == "-":
        return None
    parts = path[1:].split("/")
    if parts[0].startswith("@"):
        if len(parts) != 2 or not parts[1] or len(parts[0]) < 2:
            return None
        return parts[0] + "/" + parts[1]
    if len(parts) != 1:
        return None
    return parts[0]


class WebPages:
    def __init__(self, app):
        self.app = app
        inner = app
        while hasattr(inner, "app") and not hasattr(inner, "router"):
            inner = inner.app
        self.starlette = inner  # Request.app of the pages: app.state.ketch, url_for…

    def __getattr__(self, name):  # app.state, app.router… of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        target = page_target(scope["path"])
        if target is None:
            return await self.app(scope, receive, send)
        accept = b""
        for key, value in scope["headers"]:
            if key == b"accept":
                accept = value
                break
        if b"text/html" not in accept or not prefers_html(accept.decode("latin-1")):
            return await self.app(scope, receive, send)
        scope = {**scope, "app": self.starlette}
        if scope["method"] == "HEAD":
            send = _without_body(send)
        request = Request(scope, receive)
        try:
            if target:
                response = await package.package_page(request, target)
            else:
                response = await views.home(request)
        except UNAVAILABLE:
            log.warning("page %s: a dependency is unavailable", scope["path"], exc_info=True)
            response = page(request, "error.html", 503, headers={"retry-after": "5"},
                            title="Temporarily unavailable", message="Please try again in a few seconds.")
        except ApiError as e:
            response = page(request, "error.html", e.status, title="Something went wrong", message=e.error)
        except Exception:
            log.exception("page %s failed", scope["path"])
            response = page(request, "error.html", 500, title="Something went wrong",
                            message="The page could not be shown. The error was logged.")
        await response(scope, receive, send)


def _without_body(send):
    async def head_send(message):
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)
    return head_send
