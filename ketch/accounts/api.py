"""npm wire protocol for accounts: couch login/adduser, web login, whoami, logout, tokens (profile routes:
:mod:`ketch.accounts.profile_api`)."""

from __future__ import annotations

import dataclasses

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketch.accounts import audit, login, profile_api, services, tfa
from ketch.accounts.auth import (identify, is_granular, origin, require_otp, require_user, require_write_otp,
                                 require_writer)
from ketch.accounts.services import Identity
from ketch.context import base_url, ctx
from ketch.http.body import read_json
from ketch.http.errors import BadRequest, Forbidden, NotFound
from ketch.orgs import services as orgs
from ketch.registry import access
from ketch.registry import services as registry

COUCH_PREFIX = "org.couchdb.user:"


def _ok(data: dict, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status)


def _couch_name(request: Request) -> str:
    raw = request.path_params["user"]
    if not raw.startswith(COUCH_PREFIX):
        raise NotFound()
    return raw[len(COUCH_PREFIX):]


async def ping(request: Request) -> Response:
    return _ok({})


async def whoami(request: Request) -> Response:
    ident = await require_user(request, "see who you are")
    return _ok({"username": ident.name})


async def couch_put_user(request: Request) -> Response:
    """`npm adduser` / `npm login --auth-type=legacy` (and yarn's implicit login).

    An unknown name with an email signs up; anything else is a login, which for a two-factor
    account also needs ``npm-otp`` (401 + ``www-authenticate: OTP`` until it comes). Unknown user
    and wrong password get the same answer; failures are throttled (429 + Retry-After).
    """
    name = _couch_name(request)
    body = await read_json(request, ctx(request).settings.max_json_body)
    body_name = body.get("name")
    if body_name is not None and body_name != name:
        raise BadRequest("The user name in the URL does not match the name in the body.")
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise BadRequest("A password is required.")
    c = ctx(request)
    where = origin(request)
    async with c.db.read() as session:
        existing = await services.get_user(session, name)
    if existing is None and body.get("email") is not None:
        user, raw = await login.create_account(request, name, password, body.get("email"), token=True)
    else:
        user = await login.check_password(request, name, password)
        await login.second_step(request, user)
        async with c.db.write() as session:
            _, raw = await services.issue_token(session, user, kind="session", name="login", ip=where.ip)
            await audit.record(session, "login", actor=user, origin=where, details={"via": "couch"})
    return _ok({"ok": True, "id": COUCH_PREFIX + name, "rev": "1-" + raw[-8:].lower(), "token": raw}, 201)


async def couch_get_user(request: Request) -> Response:
    name = _couch_name(request)
    async with ctx(request).db.read() as session:
        user = await services.get_user(session, name)
    if user is None:
        raise NotFound()
    return _ok({"_id": COUCH_PREFIX + user.name, "_rev": f"1-{user.id}", "name": user.name,
                "email": user.email, "type": "user", "roles": [], "date": services._iso(user.created)})


async def logout(request: Request) -> Response:
    token = request.path_params["token"]
    ident = await identify(request)  # the token being revoked, normally
    async with ctx(request).db.write() as session:
        revoked = await services.revoke_token_value(session, token)
        if revoked and ident is not None:
            await audit.record(session, "logout", actor=ident, origin=origin(request))
    _forget_cached(request)
    return _ok({"ok": True})


def _forget_cached(request: Request) -> None:
    ctx(request).caches.get("auth", {}).clear()


# -- web login ---------------------------------------------------------------------------

async def web_login_start(request: Request) -> Response:
    raw = await request.body()
    create = False
    if raw.strip():
        try:
            data = orjson.loads(raw)
            create = bool(isinstance(data, dict) and data.get("create"))
        except ValueError:
            raise BadRequest("Request body is not valid JSON.") from None
    settings = ctx(request).settings
    async with ctx(request).db.write() as session:
        login_id, done = await services.start_web_login(session, create=create, ttl=settings.web_login_ttl)
    base = base_url(request)
    return _ok({"loginUrl": f"{base}/-/web/login/{login_id}", "doneUrl": f"{base}/-/v1/done/{done}"})


async def web_login_done(request: Request) -> Response:
    async with ctx(request).db.write() as session:
        token = await services.poll_web_login(session, request.path_params["secret"], origin(request).ip)
    if token is None:
        return JSONResponse({}, status_code=202, headers={"retry-after": "1"})
    return _ok({"token": token})


# -- tokens --------------------------------------------------------------------------------

async def tokens_list(request: Request) -> Response:
    ident = await require_user(request, "list tokens")
    async with ctx(request).db.read() as session:
        rows = await services.list_tokens(session, ident.user_id)
    objects = [services.token_json(t) for t in rows]
    return _ok({"objects": objects, "total": len(objects), "urls": {}})


async def tokens_create(request: Request) -> Response:
    """`npm token create`: a classic token, or a granular one limited to packages, scopes and orgs
    (npm 11's ``--packages``, ``--scopes``, ``--orgs``, ``--packages-and-scopes-permission``,
    ``--orgs-permission``), optionally expiring (``--expires`` days) and bound to ``--cidr`` ranges.
    Needs the password, and a one-time password when two-factor authentication is on."""
    ident = await require_writer(request, "create tokens", otp_exempt=True)
    body = await read_json(request, ctx(request).settings.max_json_body)
    grants = services.token_grants(body)  # the shape is checked before any password is tried
    problem = services.expiry_problem(body.get("expires"))
    if problem:
        raise BadRequest(problem)
    services.parse_cidrs(body.get("cidr_whitelist"))
    user = await login.check_password(request, ident.name, body.get("password"), error=login.BAD_PASSWORD)
    mode = tfa.active_mode(user)
    if mode:  # npm: token creation needs a one-time password in either 2FA mode
        await require_otp(request, dataclasses.replace(ident, tfa_mode=mode), "create tokens",
                          allow_automation=False)
    kind = "automation" if body.get("bypass_2fa") is True else "publish"
    where = origin(request)
    async with ctx(request).db.write() as session:
        if grants is not None:
            await _check_granted_names(session, services.password_identity(user), grants)
        token, raw = await services.issue_token(
            session, user, kind=kind, readonly=body.get("readonly") is True,
            cidr_whitelist=body.get("cidr_whitelist"), name=body.get("name"), expires_days=body.get("expires"),
            ip=where.ip, description=body.get("description"), grants=grants,
        )
        await audit.record(session, "token:created", actor=ident, origin=where,
                           details={"token": token.id, "kind": kind, "readonly": token.readonly,
                                    "name": token.name, **_grant_details(token)})
    return _ok(services.token_json(token, raw), 201)


async def _check_granted_names(session, user: Identity, grants: services.TokenGrants) -> None:
    """Every package, scope and org a granular token lists must be one its user can reach; one
    unknown to the user gets the same answer whether or not it exists (no private name leaks)."""
    for name in grants.packages or ():
        package = await registry.get_package(session, name)
        if (package is None or package.unpublished is not None
                or not access.at_least(await access.level(session, package, user), "read")):
            raise BadRequest(f"Unknown package: {name}. A token can only list packages you can read.")
    for scope in grants.scopes or ():
        if scope != user.name and not await _member_of(session, scope, user):
            raise BadRequest(f"Unknown scope: @{scope}. A token can list your own scope (@{user.name}) "
                             "and those of organizations you belong to.")
    for org in grants.orgs or ():
        if not await _member_of(session, org, user):
            raise BadRequest(f"Unknown organization: {org}. A token can only list organizations you belong to.")


async def _member_of(session, org_name: str, user: Identity) -> bool:
    org = await orgs.get_org(session, org_name)
    return org is not None and await orgs.role_of(session, org.id, user.user_id) is not None


def _grant_details(token) -> dict:
    if not services.is_granular(token):
        return {}
    shown = services.token_json(token)
    return {k: shown[k] for k in ("packages", "scopes", "packages_and_scopes_permission", "orgs", "orgs_permission")}


async def tokens_delete(request: Request) -> Response:
    ident = await require_user(request, "revoke tokens")
    if is_granular(ident):
        raise Forbidden("This token is limited to some packages or organizations and cannot revoke tokens.")
    await require_write_otp(request, ident)
    async with ctx(request).db.write() as session:
        token_id = await services.revoke_token(session, ident.user_id, request.path_params["key"])
        await audit.record(session, "token:revoked", actor=ident, origin=origin(request), details={"token": token_id})
    _forget_cached(request)
    return Response(status_code=204)


routes = [
    Route("/-/ping", ping, methods=["GET"]),
    Route("/-/whoami", whoami, methods=["GET"]),
    Route("/-/user/{user}", couch_put_user, methods=["PUT"]),
    Route("/-/user/{user}/-rev/{rev}", couch_put_user, methods=["PUT"]),
    Route("/-/user/{user}", couch_get_user, methods=["GET"]),
    Route("/-/user/token/{token:path}", logout, methods=["DELETE"]),
    Route("/-/v1/login", web_login_start, methods=["POST"]),
    Route("/-/v1/done/{secret}", web_login_done, methods=["GET"]),
    Route("/-/npm/v1/tokens", tokens_list, methods=["GET"]),
    Route("/-/npm/v1/tokens", tokens_create, methods=["POST"]),
    Route("/-/npm/v1/tokens/token/{key:path}", tokens_delete, methods=["DELETE"]),
    *profile_api.routes,
]
