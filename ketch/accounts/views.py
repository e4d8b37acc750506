"""Pages of the accounts domain: the approval page of `npm login --auth-type=web`."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import services
from ketch.context import ctx
from ketch.http.errors import ApiError
from ketch.web.templates import SECURITY_HEADERS, templates

CSRF_COOKIE = "ketch_csrf"


def _render(request: Request, status: int = 200, **values) -> Response:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    values.setdefault("csrf", csrf)
    response = templates.TemplateResponse(request, "web_login.html", values, status_code=status,
                                          headers=SECURITY_HEADERS)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/-/web/")
    return response


async def web_login_page(request: Request) -> Response:
    login_id = request.path_params["login_id"]
    async with ctx(request).db.read() as session:
        login = await services.get_web_login(session, login_id)
    if login is None:
        return _render(request, 404, error="This login link has expired. Run npm login again.", action="", done=False,
                       create=False)
    if request.method == "GET":
        return _render(request, action=request.url.path, create=login.create, done=login.user_id is not None)

    form = await request.form(max_files=0, max_fields=10)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, str(form.get("csrf", ""))):
        return _render(request, 403, error="Your session expired; please submit the form again.",
                       action=request.url.path, create=login.create, done=False)
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    email = str(form.get("email", "")).strip()
    settings = ctx(request).settings
    try:
        async with ctx(request).db.write() as session:
            login = await services.get_web_login(session, login_id)
            if login is None:
                raise ApiError(404, "This login link has expired. Run npm login again.")
            user = await services.get_user(session, username)
            if user is None and login.create and email:
                if not settings.allow_signup:
                    raise ApiError(403, "Sign-up is disabled on this registry.")
                user = await services.create_user(session, username, password, email)
            else:
                user = await services.authenticate(session, username, password)
                if user is None:
                    raise ApiError(401, "Incorrect username or password.")
            await services.approve_web_login(session, login, user)
    except ApiError as e:
        return _render(request, e.status, error=e.error, action=request.url.path, create=login.create,
                       username=username, done=False)
    return _render(request, done=True, username=user.name, create=False, action="")


routes = [Route("/-/web/login/{login_id}", web_login_page, methods=["GET", "POST"])]
