"""Shared machinery of the account pages: rendering with the security headers, and CSRF.

CSRF protection is a double-submit cookie: the page sets a random ``ketch_csrf`` cookie
(``SameSite=Strict``, ``HttpOnly``, ``Secure`` on https, scoped to ``/-/web/``) and echoes it in a
hidden form field; a POST is accepted only when both are present and equal. A cross-site form can
neither read the cookie nor make the browser send it.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ketch.web.templates import SECURITY_HEADERS, templates

CSRF_COOKIE = "ketch_csrf"
COOKIE_PATH = "/-/web/"
# Pages that carry a secret (emailed links): never cached, never sent on as a referrer.
NO_STORE = {**SECURITY_HEADERS, "cache-control": "no-store", "referrer-policy": "no-referrer"}
MAX_FIELDS = 10


def render(request: Request, template: str, status: int = 200, headers: dict | None = None, **values) -> Response:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    values.setdefault("csrf", csrf)
    response = templates.TemplateResponse(request, template, values, status_code=status,
                                          headers={**NO_STORE, **(headers or {})})
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path=COOKIE_PATH)
    return response


async def form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=MAX_FIELDS)


def csrf_ok(request: Request, data: FormData) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = data.get("csrf", "")
    return bool(cookie) and isinstance(sent, str) and secrets.compare_digest(cookie.encode(), sent.encode())


def field(data: FormData, name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""
