"""Shared machinery of the account pages: rendering with the security headers, CSRF, the
logged-in user, the confirmations sensitive actions ask for, and safe redirects.

CSRF protection is a double-submit cookie: the page sets a random ``ketch_csrf`` cookie
(``SameSite=Strict``, ``HttpOnly``, ``Secure`` on https, for the whole site so any page can carry a
form) and echoes it in a hidden form field; a POST is accepted only when both are present and
equal. A cross-site form can neither read the cookie nor make the browser send it.

Every write a page makes goes through the same service functions the npm API calls, so the
permission rules, audit records and rate limits are the same; the one-time-password rules of
:mod:`ketch.accounts.auth` are applied here with the code taken from a form field instead of the
``npm-otp`` header (:func:`write_otp`, :func:`confirm`).
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ketch.accounts import login, second_factor, tfa, web_session
from ketch.accounts.auth import origin
from ketch.accounts.models import User
from ketch.accounts.services import Identity
from ketch.context import ctx
from ketch.http.errors import ApiError
from ketch.web.templates import SECURITY_HEADERS, templates

CSRF_COOKIE = "ketch_csrf"
COOKIE_PATH = "/"
# Pages that carry a secret (emailed links, one-time codes): never cached, never sent on as a referrer.
NO_STORE = {**SECURITY_HEADERS, "cache-control": "no-store", "referrer-policy": "no-referrer"}
MAX_FIELDS = 10
SESSION_EXPIRED = "Your session expired; please submit the form again."
OTP_MISSING = "Enter the code your authenticator app shows, or one of your recovery codes."
OTP_WRONG = "That code is not right, or was already used. Try the next code your app shows."
# The fixed messages a page shows after a redirect (``?notice=<key>``): nothing from the URL is echoed.
NOTICES = {
    "welcome": "Welcome to Ketch! We sent you an email: open its link to verify your address.",
    "logged-out": "You are logged out.",
    "profile-saved": "Your profile is saved.",
    "email-changed": "Your email address is changed. We sent a verification link to the new address.",
    "verification-sent": "We sent a new verification link to your address.",
    "password-changed": "Your password is changed. Other browser and npm login sessions were ended.",
    "2fa-disabled": "Two-factor authentication is off.",
    "2fa-mode": "Two-factor authentication now applies to the new mode.",
    "key-added": "The security key is registered.",
    "key-removed": "The security key is removed.",
    "token-revoked": "The token is revoked.",
    "session-ended": "The session is ended.",
    "org-created": "The organization is created. You are its owner.",
    "saved": "Saved.",
    "transferred": "The package is transferred; its new owners manage it now.",
}


def csp_with_scripts(policy: str) -> str:
    """The page policy plus same-origin scripts (the WebAuthn pages), nothing inline."""
    parts = [p.strip() for p in policy.split(";") if p.strip() and not p.strip().startswith("script-src")]
    return "; ".join([*parts, "script-src 'self'"])


def csrf_value(request: Request) -> str:
    """This browser's CSRF token (a new one when it has none yet); set it with :func:`set_csrf`."""
    token = request.scope.get("ketch.csrf")
    if token is None:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        token = cookie if 20 <= len(cookie) <= 100 else secrets.token_urlsafe(24)
        request.scope["ketch.csrf"] = token
    return token


def set_csrf(request: Request, response: Response) -> None:
    response.set_cookie(CSRF_COOKIE, csrf_value(request), httponly=True, samesite="strict",
                        secure=web_session.secure(request), path=COOKIE_PATH)


def render(request: Request, template: str, status: int = 200, headers: dict | None = None, *,
           scripts: bool = False, **values) -> Response:
    values.setdefault("csrf", csrf_value(request))
    values.setdefault("me", request.scope.get("ketch.web_identity"))
    values.setdefault("root", request.scope.get("root_path", ""))
    values.setdefault("notice", NOTICES.get(request.query_params.get("notice", "")))
    all_headers = {**NO_STORE, **(headers or {})}
    if scripts:
        all_headers["content-security-policy"] = csp_with_scripts(all_headers["content-security-policy"])
    response = templates.TemplateResponse(request, template, values, status_code=status, headers=all_headers)
    set_csrf(request, response)
    return response


async def form(request: Request, max_fields: int = MAX_FIELDS) -> FormData:
    return await request.form(max_files=0, max_fields=max_fields)


def csrf_ok(request: Request, data: FormData) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = data.get("csrf", "")
    return bool(cookie) and isinstance(sent, str) and secrets.compare_digest(cookie.encode(), sent.encode())


def field(data: FormData, name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


# -- navigation -------------------------------------------------------------------------------

def safe_next(value: str | None, default: str = "/") -> str:
    """A same-origin path to go to after logging in; anything else (``//evil``, ``https:…``,
    ``/\\evil``, control characters) becomes ``default``."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(c in value for c in "\\\r\n\t\x00") or any(ord(c) < 32 for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def redirect(request: Request, path: str, notice: str | None = None) -> Response:
    """303 to a same-origin path (``notice`` names one of the fixed messages of the target page)."""
    target = request.scope.get("root_path", "") + path
    if notice:
        target += ("&" if "?" in target else "?") + "notice=" + quote(notice)
    return RedirectResponse(target, status_code=303)


def login_redirect(request: Request) -> Response:
    here = request.url.path
    if request.url.query:
        here += "?" + request.url.query
    return redirect(request, "/-/web/login?next=" + quote(here, safe=""))


async def page_user(request: Request) -> Identity | None:
    """The logged-in user of this page, or None (the handler then answers :func:`login_redirect`)."""
    return await web_session.current_identity(request)


async def load_user(request: Request, ident: Identity) -> User:
    async with ctx(request).db.read() as session:
        return (await session.execute(select(User).where(User.id == ident.user_id))).scalar_one()


# -- confirmations -------------------------------------------------------------------------------

async def confirm(request: Request, ident: Identity, data: FormData) -> User:
    """A sensitive action (token creation, password, email and 2FA changes): the current password,
    and with two-factor authentication on, a one-time password or recovery code. Raises ApiError."""
    user = await login.check_password(request, ident.name, field(data, "password"), error=login.BAD_PASSWORD)
    if tfa.active_mode(user):
        code = field(data, "otp").strip()
        if not code:
            raise ApiError(401, OTP_MISSING)
        await check_code(request, ident, code)
    return user


async def write_otp(request: Request, ident: Identity, data: FormData) -> None:
    """The ``auth-and-writes`` rule for a change made on a page: a one-time password in the form."""
    if ident.tfa_mode == "auth-and-writes":
        code = field(data, "otp").strip()
        if not code:
            raise ApiError(401, OTP_MISSING)
        await check_code(request, ident, code)


async def check_code(request: Request, ident: Identity, code: str) -> None:
    try:
        await second_factor.check(ctx(request), ident.user_id, code, str(ident.token_id), origin(request))
    except ApiError as e:
        if e.status == 401:
            raise ApiError(401, OTP_WRONG) from None
        raise
