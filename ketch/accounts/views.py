"""Pages of the accounts domain: the approval page of `npm login --auth-type=web` (with a second
step asking for the one-time password of a two-factor account), plus the emailed-link pages of
:mod:`ketch.accounts.email_views`.

A browser already logged in to the website approves with one click (its session passed the
password and second factor at login); anyone else logs in on the page itself.

The second step never puts the password back into the page: after the password is accepted, the
form carries a single-use, 10-minute secret bound to the user and to this login request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import audit, email_views, links, login, services, tfa, web_session
from ketch.accounts.auth import origin
from ketch.accounts.pages import csrf_ok, field, form, load_user, render
from ketch.context import ctx
from ketch.http.errors import ApiError

EXPIRED = "This login link has expired. Run npm login again."
OTP_MISSING = "Enter the code your authenticator app shows, or one of your recovery codes."
OTP_WRONG = "That code is not right, or was already used. Try the next code your app shows."


def _page(request: Request, status: int = 200, **values) -> Response:
    values.setdefault("action", request.url.path)
    headers = {"retry-after": values.pop("retry_after")} if values.get("retry_after") else None
    return render(request, "web_login.html", status, headers, **values)


def _error_page(request: Request, e: ApiError, **values) -> Response:
    return _page(request, e.status, error=e.error, retry_after=e.headers.get("retry-after"), **values)


async def web_login_page(request: Request) -> Response:
    login_id = request.path_params["login_id"]
    async with ctx(request).db.read() as session:
        pending = await services.get_web_login(session, login_id)
    if pending is None:
        return _page(request, 404, error=EXPIRED, action="", done=False, create=False)
    me = await web_session.current_identity(request)
    if request.method == "GET":
        return _page(request, create=pending.create, done=pending.user_id is not None)

    data = await form(request)
    if not csrf_ok(request, data):
        return _page(request, 403, error="Your session expired; please submit the form again.",
                     create=pending.create, done=False)
    if field(data, "approve") and me is not None:
        user = await load_user(request, me)
        try:
            await _approve(request, login_id, user, via="web+session")
        except ApiError as e:
            return _error_page(request, e, create=False, done=False)
        return _page(request, done=True, username=user.name, create=False, action="")
    if field(data, "step"):
        return await _otp_step(request, login_id, data)
    username = field(data, "username").strip()
    password = field(data, "password")
    address = field(data, "email").strip()
    try:
        async with ctx(request).db.read() as session:
            user = await services.get_user(session, username)
        if user is None and pending.create and address:
            user, _ = await login.create_account(request, username, password, address, token=False)
        else:
            user = await login.check_password(request, username, password)
            if tfa.active_mode(user):
                async with ctx(request).db.write() as session:
                    step = await links.issue(session, user, "login-otp", address=login_id)
                return _page(request, create=False, done=False, step=step, username=user.name)
        await _approve(request, login_id, user)
    except ApiError as e:
        return _error_page(request, e, create=pending.create, username=username, done=False)
    return _page(request, done=True, username=user.name, create=False, action="")


async def _otp_step(request: Request, login_id: str, data) -> Response:
    step = field(data, "step")
    async with ctx(request).db.read() as session:
        found = await links.peek(session, step, "login-otp")
    if found is None or found[0].email != login_id:
        return _page(request, 400, error="This sign-in attempt expired; start again.", create=False, done=False)
    user = found[1]
    try:
        await login.second_step(request, user, field(data, "otp"))
        async with ctx(request).db.write() as session:
            await links.consume(session, step, "login-otp")
        await _approve(request, login_id, user)
    except ApiError as e:
        if e.status == 401:
            e = ApiError(401, OTP_WRONG if field(data, "otp").strip() else OTP_MISSING)
        retry = step if e.status in (401, 429) else None
        return _error_page(request, e, create=False, done=False, step=retry, username=user.name)
    return _page(request, done=True, username=user.name, create=False, action="")


async def _approve(request: Request, login_id: str, user, via: str = "web") -> None:
    async with ctx(request).db.write() as session:
        pending = await services.get_web_login(session, login_id)
        if pending is None:
            raise ApiError(404, EXPIRED)
        await services.approve_web_login(session, pending, user)
        await audit.record(session, "login", actor=user, origin=origin(request), details={"via": via})


routes = [Route("/-/web/login/{login_id}", web_login_page, methods=["GET", "POST"]), *email_views.routes]
