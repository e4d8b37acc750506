"""`npm profile` (protocol §13) and Ketch's account extensions on ``/-/npm/v1/user``.

* ``GET /-/npm/v1/user`` — the profile.
* ``POST /-/npm/v1/user`` — profile fields, ``{"password": {"old", "new"}}``, and the 2FA steps:
  ``{"tfa": {"mode", "password"}}`` answers an ``otpauth://`` URL (setup pending), the mode object
  (mode switched) or, for ``"mode": "disable"``, the profile; ``{"tfa": ["<code>"]}`` confirms a
  pending setup and answers the recovery codes.
* ``DELETE /-/npm/v1/user`` with ``{"password": …}`` — delete the account (Ketch extension).
* ``GET /-/npm/v1/user/audit?before=<id>&limit=<n>`` — the caller's audit events, newest first
  (Ketch extension).

With two-factor authentication on (either mode), every change here also needs a one-time password.
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketch.accounts import audit, closing, links, passwords, profile, services, tfa, throttle
from ketch.accounts.auth import client_ip, origin, require_otp, require_user, require_writer
from ketch.accounts.login import BAD_PASSWORD, check_password
from ketch.accounts.models import User
from ketch.accounts.services import Identity
from ketch.context import base_url, ctx
from ketch.http.body import read_json
from ketch.http.errors import BadRequest, NotFound

AUDIT_PAGE = 50


async def _load(request: Request, ident: Identity) -> User:
    async with ctx(request).db.read() as session:
        user = await session.get(User, ident.user_id)
    if user is None or user.deleted is not None:
        raise NotFound()
    return user


async def _second_factor(request: Request, ident: Identity, user: User, reason: str) -> None:
    """With 2FA on (as the database says now, not the 1 s identity cache), a valid npm-otp."""
    mode = tfa.active_mode(user)
    if mode:
        await require_otp(request, dataclasses.replace(ident, tfa_mode=mode), reason, allow_automation=False)


def _forget_cached(request: Request) -> None:
    ctx(request).caches.get("auth", {}).clear()


async def profile_get(request: Request) -> Response:
    ident = await require_user(request, "see your profile")
    return JSONResponse(profile.profile_json(await _load(request, ident)))


async def profile_post(request: Request) -> Response:
    ident = await require_writer(request, "change your profile", otp_exempt=True, account=True)
    body = await read_json(request, ctx(request).settings.max_json_body)
    if "tfa" in body:
        return await _tfa(request, ident, body["tfa"])
    return await _update(request, ident, body)


async def _update(request: Request, ident: Identity, body: dict) -> Response:
    c = ctx(request)
    new_password = None
    if body.get("password") is not None:
        pw = body["password"]
        if not isinstance(pw, dict) or not isinstance(pw.get("old"), str) or not isinstance(pw.get("new"), str):
            raise BadRequest('password must be {"old": "<current>", "new": "<new>"}.')
        new_password = pw["new"]
    user = await _load(request, ident)
    changes = profile.plan_changes(user, body)
    if new_password is not None:
        await check_password(request, ident.name, body["password"]["old"], error=BAD_PASSWORD)
        problem = passwords.password_problem(new_password, ident.name)
        if problem:
            raise BadRequest(problem)
    if changes or new_password is not None:
        await _second_factor(request, ident, user, "change your profile")
    if "email" in changes:
        await throttle.mail(c.db, "verify", ident.name, client_ip(request))
    new_hash = await passwords.hash_password(new_password) if new_password is not None else None
    verify = None
    async with c.db.write() as session:
        user = await session.get(User, ident.user_id)
        old_email = user.email
        profile.apply_changes(user, changes)
        where = origin(request)
        if new_hash is not None:
            await profile.set_password(session, user, new_hash, keep_token=ident.token_id)
            await audit.record(session, "password:changed", actor=ident, origin=where)
        if "email" in changes:
            await audit.record(session, "email:changed", actor=ident, origin=where,
                               details={"from": old_email, "to": user.email})
            verify = await links.issue(session, user, "verify")
        other = sorted(set(changes) - {"email"})
        if other:
            await audit.record(session, "profile:changed", actor=ident, origin=where, details={"fields": other})
    if new_hash is not None:
        _forget_cached(request)
        links.notify(request, user, "Your password was changed")
    if verify is not None:
        links.send_verification(request, user, verify)
        links.notify(request, user, f"Your email address was changed to {user.email}", to=old_email)
    return JSONResponse(profile.profile_json(user))


async def _tfa(request: Request, ident: Identity, spec: object) -> Response:
    if isinstance(spec, list):
        return await _tfa_confirm(request, ident, spec)
    if not isinstance(spec, dict):
        raise BadRequest('tfa must be {"mode": …, "password": …} or ["<one-time password>"].')
    mode = spec.get("mode")
    if mode not in (*tfa.MODES, "disable"):
        raise BadRequest('tfa.mode must be "auth-only", "auth-and-writes" or "disable".')
    await check_password(request, ident.name, spec.get("password"), error=BAD_PASSWORD)
    user = await _load(request, ident)
    active = tfa.active_mode(user)
    if active:
        await _second_factor(request, ident, user, "change two-factor authentication")
    c = ctx(request)
    async with c.db.write() as session:
        user = await session.get(User, ident.user_id)
        if mode == "disable":
            was_on = await profile.disable_tfa(session, user, keep_token=ident.token_id)
            if was_on:
                await audit.record(session, "2fa:disabled", actor=ident, origin=origin(request))
            answer = profile.profile_json(user)
        elif tfa.active_mode(user):
            previous = user.tfa_mode
            user.tfa_mode = mode
            if previous != mode:
                await audit.record(session, "2fa:enabled", actor=ident, origin=origin(request),
                                   details={"mode": mode, "previous": previous})
            answer = profile.profile_json(user)
        else:
            answer = profile.profile_json(user)
            answer["tfa"] = profile.start_tfa(user, mode)
    if mode == "disable" and was_on:
        _forget_cached(request)
        links.notify(request, user, "Two-factor authentication was turned off")
    elif mode != "disable" and active and active != mode:
        _forget_cached(request)
        links.notify(request, user, f"Two-factor authentication now applies to: {mode}")
    return JSONResponse(answer)


async def _tfa_confirm(request: Request, ident: Identity, spec: list) -> Response:
    c = ctx(request)
    if len(spec) != 1 or not isinstance(spec[0], str):
        raise BadRequest('Confirm two-factor authentication with {"tfa": ["<one-time password>"]}.')
    user = await _load(request, ident)
    if not user.tfa_pending:
        raise BadRequest("Two-factor authentication is not being set up; run `npm profile enable-2fa`.")
    ip = client_ip(request)
    await throttle.check_otp(c.db, c.settings, user.id, ip)
    step = tfa.confirm_setup(user, spec[0])
    if step is None:
        await throttle.otp_failed(c.db, c.settings, user.id, ip)
        raise BadRequest("That one-time password is not right; check your authenticator's clock and run "
                         "`npm profile enable-2fa` again.")
    async with c.db.write() as session:
        user = await session.get(User, ident.user_id)
        if not user.tfa_pending or tfa.totp_step(user.tfa_secret, tfa.normalise(spec[0])) != step:
            raise BadRequest("Two-factor authentication setup changed meanwhile; run `npm profile enable-2fa` again.")
        codes = await profile.finish_tfa(session, user, step, keep_token=ident.token_id)
        await audit.record(session, "2fa:enabled", actor=ident, origin=origin(request), details={"mode": user.tfa_mode})
    _forget_cached(request)
    links.notify(request, user, f"Two-factor authentication was turned on ({user.tfa_mode})")
    answer = profile.profile_json(user)
    answer["tfa"] = codes
    return JSONResponse(answer)


async def profile_delete(request: Request) -> Response:
    """Delete the caller's account (Ketch extension): ``DELETE /-/npm/v1/user {"password": …}``."""
    ident = await require_writer(request, "delete your account", otp_exempt=True)
    body = await read_json(request, ctx(request).settings.max_json_body)
    await check_password(request, ident.name, body.get("password"), error=BAD_PASSWORD)
    user = await _load(request, ident)
    await _second_factor(request, ident, user, "delete your account")
    address = user.email
    async with ctx(request).db.write() as session:
        user = await session.get(User, ident.user_id)
        await closing.close_account(session, user)
        await audit.record(session, "account:deleted", actor=ident, origin=origin(request))
    _forget_cached(request)
    links.notify(request, user, "Your account was deleted", to=address)
    return JSONResponse({"ok": True, "name": ident.name, "deleted": services._iso(user.deleted)})


async def audit_list(request: Request) -> Response:
    """The caller's own audit events, newest first: ``{"objects": [...], "urls": {"next": …}}``."""
    ident = await require_user(request, "see your account's audit log")
    try:
        limit = int(request.query_params.get("limit", AUDIT_PAGE))
        before = int(request.query_params["before"]) if "before" in request.query_params else None
    except ValueError:
        raise BadRequest("before and limit must be integers.") from None
    limit = max(1, min(limit, audit.MAX_PAGE))
    async with ctx(request).db.read() as session:
        events = await audit.list_events(session, user_id=ident.user_id, before=before, limit=limit)
    following = None
    if len(events) == limit:
        following = f"{base_url(request)}/-/npm/v1/user/audit?before={events[-1].id}&limit={limit}"
    return JSONResponse({"objects": [audit.event_json(e) for e in events], "urls": {"next": following}})


routes = [
    Route("/-/npm/v1/user", profile_get, methods=["GET"]),
    Route("/-/npm/v1/user", profile_post, methods=["POST"]),
    Route("/-/npm/v1/user", profile_delete, methods=["DELETE"]),
    Route("/-/npm/v1/user/audit", audit_list, methods=["GET"]),
]
