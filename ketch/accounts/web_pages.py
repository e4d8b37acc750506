"""Website sign-up, log-in (password, then a second step for two-factor accounts: a code from the
authenticator app, a recovery code, or a security key) and log-out.

The second step never puts the password back into the page: after the password is accepted, the
form carries a single-use, 10-minute secret bound to the user (the same mechanism as the approval
page of ``npm login --auth-type=web``). A session starts only after every step passed, with a new
session secret (no fixation), and ``?next=`` only ever leads to a path on this site.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import audit, links, login, security_keys, tfa, throttle, web_session
from ketch.accounts.auth import client_ip, origin
from ketch.accounts.pages import (OTP_MISSING, OTP_WRONG, SESSION_EXPIRED, csrf_ok, field, form, page_user,
                                  redirect, render, safe_next)
from ketch.context import ctx
from ketch.http.errors import ApiError

STEP_PURPOSE = "login-otp"
STEP_ADDRESS = "web-session"  # what the step secret is bound to (the npm web login binds its login id)
HOME = "/-/web/settings"
STEP_EXPIRED = "This sign-in attempt expired; start again."


def _error(request: Request, template: str, e: ApiError, **values) -> Response:
    headers = {"retry-after": e.headers["retry-after"]} if e.headers.get("retry-after") else None
    return render(request, template, e.status, headers, error=e.error, **values)


async def _logged_in(request: Request, user, via: str, next_path: str) -> Response:
    response = redirect(request, safe_next(next_path, HOME))
    ident = await web_session.start_session(request, response, user)
    async with ctx(request).db.write() as session:
        await audit.record(session, "login", actor=ident, origin=origin(request), details={"via": via})
    return response


# -- sign up ---------------------------------------------------------------------------------

async def signup(request: Request) -> Response:
    page = "account_signup.html"
    allowed = ctx(request).settings.allow_signup
    if request.method == "GET":
        if await page_user(request) is not None:
            return redirect(request, HOME)
        return render(request, page, allowed=allowed, next=safe_next(request.query_params.get("next"), ""))
    data = await form(request)
    values = {"allowed": allowed, "username": field(data, "username").strip(), "email": field(data, "email").strip(),
              "next": safe_next(field(data, "next"), "")}
    if not csrf_ok(request, data):
        return render(request, page, 403, error=SESSION_EXPIRED, **values)
    password = field(data, "password")
    if password != field(data, "confirm"):
        return render(request, page, 400, error="The two passwords are not the same.", **values)
    try:
        user, _ = await login.create_account(request, values["username"], password, values["email"], token=False)
    except ApiError as e:
        return _error(request, page, e, **values)
    response = redirect(request, safe_next(values["next"], HOME) if values["next"] else HOME, notice="welcome")
    await web_session.start_session(request, response, user)
    return response


# -- log in ---------------------------------------------------------------------------------

async def login_page(request: Request) -> Response:
    page = "account_login.html"
    if request.method == "GET":
        next_path = safe_next(request.query_params.get("next"), "")
        if await page_user(request) is not None:
            return redirect(request, safe_next(next_path, HOME))
        return render(request, page, next=next_path, signup=ctx(request).settings.allow_signup)
    data = await form(request)
    next_path = safe_next(field(data, "next"), "")
    if not csrf_ok(request, data):
        return render(request, page, 403, error=SESSION_EXPIRED, next=next_path)
    if field(data, "step"):
        return await _second_step(request, data, next_path)
    username = field(data, "username").strip()
    try:
        user = await login.check_password(request, username, field(data, "password"))
    except ApiError as e:
        return _error(request, page, e, next=next_path, username=username, signup=ctx(request).settings.allow_signup)
    async with ctx(request).db.read() as session:
        keys = await security_keys.list_keys(session, user.id)
    if tfa.active_mode(user) or keys:
        async with ctx(request).db.write() as session:
            step = await links.issue(session, user, STEP_PURPOSE, address=STEP_ADDRESS)
        return _step_page(request, user, step, next_path, keys)
    return await _logged_in(request, user, "website", next_path)


def _step_page(request: Request, user, step: str, next_path: str, keys, status: int = 200,
               error: str | None = None) -> Response:
    options = security_keys.login_options(request, step, keys) if keys else None
    return render(request, "account_login_2fa.html", status, scripts=bool(keys), step=step, username=user.name,
                  next=next_path, totp=bool(tfa.active_mode(user)), key_options=options, error=error)


async def _second_step(request: Request, data, next_path: str) -> Response:
    step = field(data, "step")
    async with ctx(request).db.read() as session:
        found = await links.peek(session, step, STEP_PURPOSE)
        keys = await security_keys.list_keys(session, found[1].id) if found else []
    if found is None or found[0].email != STEP_ADDRESS:
        return render(request, "account_login.html", 400, error=STEP_EXPIRED, next=next_path,
                      signup=ctx(request).settings.allow_signup)
    user = found[1]
    assertion = field(data, "assertion")
    try:
        if assertion:
            await throttle.check_otp(ctx(request).db, ctx(request).settings, user.id, client_ip(request))
            try:
                await security_keys.verify_login(request, user, step, assertion)
            except ApiError:
                await throttle.otp_failed(ctx(request).db, ctx(request).settings, user.id, client_ip(request))
                raise
            via = "website+security-key"
        else:
            code = field(data, "otp").strip()
            if not tfa.active_mode(user):
                raise ApiError(400, "Use your security key to finish signing in.")
            if not code:
                raise ApiError(401, OTP_MISSING)
            await login.second_step(request, user, code)
            via = "website+otp"
        async with ctx(request).db.write() as session:
            await links.consume(session, step, STEP_PURPOSE)
    except ApiError as e:
        if e.status == 401 and not assertion:
            e = ApiError(401, OTP_WRONG)
        if e.status == 400 and e.error == links.INVALID:
            return render(request, "account_login.html", 400, error=STEP_EXPIRED, next=next_path)
        return _step_page(request, user, step, next_path, keys, e.status, e.error)
    return await _logged_in(request, user, via, next_path)


# -- log out ---------------------------------------------------------------------------------

async def logout(request: Request) -> Response:
    ident = await page_user(request)
    if request.method == "GET":
        if ident is None:
            return redirect(request, "/-/web/login")
        return render(request, "account_logout.html")
    data = await form(request)
    if not csrf_ok(request, data):
        return render(request, "account_logout.html", 403, error=SESSION_EXPIRED)
    response = redirect(request, "/-/web/login", notice="logged-out")
    if await web_session.end_session(request, response) and ident is not None:
        async with ctx(request).db.write() as session:
            await audit.record(session, "logout", actor=ident, origin=origin(request), details={"via": "website"})
    return response


routes = [
    Route("/-/web/signup", signup, methods=["GET", "POST"]),
    Route("/-/web/login", login_page, methods=["GET", "POST"]),
    Route("/-/web/logout", logout, methods=["GET", "POST"]),
]
