"""The access tokens page: create classic tokens (read-only, publish, automation) and granular ones
(packages and scopes, organizations, read-only or read-write, expiry, allowed IP ranges), list
and revoke them, and see and end this account's browser sessions.

A form becomes the same body `npm token create` sends and goes through the same checks as
``POST /-/npm/v1/tokens`` (:mod:`ketch.accounts.api`): the token's shape first, then the password
and one-time password, then that every listed package, scope and org is reachable by the user.
A new token is shown once, on the page that answers the form; only its digest is stored.
"""

from __future__ import annotations

import re

from sqlalchemy import delete
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import api as accounts_api
from ketch.accounts import audit, services, tfa, web_session
from ketch.accounts.auth import origin
from ketch.accounts.models import Token
from ketch.accounts.pages import (SESSION_EXPIRED, confirm, csrf_ok, field, form, load_user, login_redirect,
                                  page_user, redirect, render, write_otp)
from ketch.accounts.web_settings import forget_cached
from ketch.context import ctx
from ketch.http.errors import ApiError, BadRequest

TAB = "/-/web/settings/tokens"
CLASSIC_TYPES = ("read-only", "publish", "automation")
EXPIRY_CHOICES = (7, 30, 60, 90, 365)
_SPLIT = re.compile(r"[\s,]+")


def _names(text: str) -> list[str]:
    return [n for n in _SPLIT.split(text.strip()) if n]


def token_body(data) -> dict:
    """The `npm token create` body a token form asks for."""
    kind = field(data, "kind")
    cidrs = _names(field(data, "cidr"))
    if kind == "classic":
        token_type = field(data, "type")
        if token_type not in CLASSIC_TYPES:
            raise BadRequest("Choose the token type: read-only, publish or automation.")
        return {"readonly": token_type == "read-only", "bypass_2fa": token_type == "automation",
                "cidr_whitelist": cidrs}
    if kind != "granular":
        raise BadRequest("Choose a classic or a granular token.")
    name = field(data, "name").strip()
    if not name:
        raise BadRequest("Give the token a name, to recognise it in the list later.")
    body: dict = {"name": name, "description": field(data, "description").strip() or None, "cidr_whitelist": cidrs,
                  "bypass_2fa": field(data, "bypass_2fa") == "on"}
    expires = field(data, "expires").strip()
    if expires == "custom":
        expires = field(data, "expires_days").strip()
    if expires and expires != "never":
        if not expires.isdigit() or len(expires) > 6:
            raise BadRequest("The expiry is a number of days.")
        body["expires"] = int(expires)
    packages_permission = field(data, "packages_permission") or "no-access"
    if packages_permission != "no-access":
        body["packages_and_scopes_permission"] = packages_permission
        if field(data, "packages_scope") == "all":
            body["packages_all"] = True
        else:
            selected = _names(field(data, "packages"))
            if not selected:
                raise BadRequest("List the packages and @scopes the token may use, or choose all packages.")
            body["packages"] = [n for n in selected if not (n.startswith("@") and "/" not in n)]
            body["scopes"] = [n for n in selected if n.startswith("@") and "/" not in n]
    else:
        body["packages_and_scopes_permission"] = "no-access"
    orgs_permission = field(data, "orgs_permission") or "no-access"
    body["orgs_permission"] = orgs_permission
    if orgs_permission != "no-access":
        body["orgs"] = [o.removeprefix("@") for o in _names(field(data, "orgs"))]
        if not body["orgs"]:
            raise BadRequest("List the organizations the token may manage.")
    return {k: v for k, v in body.items() if v not in (None, [], "")}


async def _view(request: Request, ident, status: int = 200, **values) -> Response:
    async with ctx(request).db.read() as session:
        rows = await services.list_tokens(session, ident.user_id)
        sessions = await web_session.list_sessions(session, ident.user_id)
    tokens = [(t, services.token_json(t)) for t in rows if t.kind != web_session.KIND]
    user = await load_user(request, ident)
    return render(request, "settings_tokens.html", status, tab=TAB, user=user, tokens=tokens, sessions=sessions,
                  current_session=ident.token_id, totp=bool(tfa.active_mode(user)), expiry_choices=EXPIRY_CHOICES,
                  **values)


async def tokens_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    if request.method == "GET":
        return await _view(request, ident)
    data = await form(request, max_fields=30)
    if not csrf_ok(request, data):
        return await _view(request, ident, 403, error=SESSION_EXPIRED)
    action = field(data, "action")
    try:
        if action == "create":
            return await _create(request, ident, data)
        if action == "revoke":
            await write_otp(request, ident, data)
            async with ctx(request).db.write() as session:
                token_id = await services.revoke_token(session, ident.user_id, field(data, "key"))
                await audit.record(session, "token:revoked", actor=ident, origin=origin(request),
                                   details={"token": token_id})
            forget_cached(request)
            return redirect(request, TAB, notice="token-revoked")
        if action == "end-session":
            session_id = field(data, "session")
            if not session_id.isdigit() or len(session_id) > 12:
                raise BadRequest("No such session.")
            async with ctx(request).db.write() as session:
                await session.execute(delete(Token).where(Token.id == int(session_id), Token.user_id == ident.user_id,
                                                          Token.kind == web_session.KIND))
                await audit.record(session, "logout", actor=ident, origin=origin(request),
                                   details={"via": "website", "session": int(session_id)})
            forget_cached(request)
            return redirect(request, TAB, notice="session-ended")
        raise BadRequest("Unknown action.")
    except ApiError as e:
        return await _view(request, ident, e.status, error=e.error, failed=action, form_values=dict(data))


async def _create(request: Request, ident, data) -> Response:
    body = token_body(data)
    grants = services.token_grants(body)  # the shape is checked before any password is tried
    problem = services.expiry_problem(body.get("expires"))
    if problem:
        raise BadRequest(problem)
    services.parse_cidrs(body.get("cidr_whitelist"))
    user = await confirm(request, ident, data)
    kind = "automation" if body.get("bypass_2fa") is True else "publish"
    where = origin(request)
    async with ctx(request).db.write() as session:
        if grants is not None:
            await accounts_api._check_granted_names(session, services.password_identity(user), grants)
        token, raw = await services.issue_token(
            session, user, kind=kind, readonly=body.get("readonly") is True,
            cidr_whitelist=body.get("cidr_whitelist"), name=body.get("name"), expires_days=body.get("expires"),
            ip=where.ip, description=body.get("description"), grants=grants,
        )
        await audit.record(session, "token:created", actor=ident, origin=where,
                           details={"token": token.id, "kind": kind, "readonly": token.readonly, "name": token.name,
                                    "via": "website", **accounts_api._grant_details(token)})
    return await _view(request, ident, created=raw, created_info=services.token_json(token))


routes = [Route(TAB, tokens_page, methods=["GET", "POST"])]
