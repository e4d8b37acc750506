"""Security settings pages: two-factor authentication with an authenticator app (TOTP: QR code,
confirmation, recovery codes shown once, mode change, new recovery codes, turning it off) and
WebAuthn security keys as a second factor for website logins.

The steps are those of `npm profile enable-2fa` (:mod:`ketch.accounts.profile`): the password
first (and a current code once 2FA is on), a pending setup until the first code confirms it, then
recovery codes. Turning 2FA on or off ends the account's other sessions, browser ones included.
"""

from __future__ import annotations

import segno
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import audit, links, profile, security_keys, tfa, throttle, web_session
from ketch.accounts.auth import client_ip, origin
from ketch.accounts.models import RecoveryCode, User
from ketch.accounts.pages import (SESSION_EXPIRED, confirm, csrf_ok, field, form, load_user, login_redirect,
                                  page_user, redirect, render)
from ketch.accounts.web_settings import forget_cached
from ketch.context import ctx
from ketch.http.errors import ApiError, BadRequest

TAB_2FA = "/-/web/settings/2fa"
TAB_KEYS = "/-/web/settings/security-keys"


def qr_svg(text: str) -> str:
    """An inline SVG QR code (no scripts, no styles; dark modules on a light square for scanners)."""
    return segno.make(text, error="m").svg_inline(scale=4, border=3, dark="#000", light="#fff", svgclass="acct-qr",
                                                  omitsize=True, title="QR code for your authenticator app")


async def _codes_left(request: Request, user_id: int) -> int:
    from sqlalchemy import func, select

    async with ctx(request).db.read() as session:
        return (await session.execute(select(func.count()).select_from(RecoveryCode).where(
            RecoveryCode.user_id == user_id, RecoveryCode.used.is_(None)))).scalar_one()


async def _tfa_view(request: Request, user: User, status: int = 200, **values) -> Response:
    pending = bool(user.tfa_pending and user.tfa_secret)
    if pending and "qr" not in values:
        url = tfa.otpauth_url(user.tfa_secret, user.name)
        values.update(qr=qr_svg(url), secret=user.tfa_secret)
    left = await _codes_left(request, user.id) if tfa.active_mode(user) else 0
    return render(request, "settings_2fa.html", status, tab=TAB_2FA, user=user, active=tfa.active_mode(user),
                  pending=pending, codes_left=left, modes=tfa.MODES, **values)


async def tfa_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    user = await load_user(request, ident)
    if request.method == "GET":
        return await _tfa_view(request, user)
    data = await form(request)
    if not csrf_ok(request, data):
        return await _tfa_view(request, user, 403, error=SESSION_EXPIRED)
    action = field(data, "action")
    c = ctx(request)
    try:
        if action == "start":
            mode = field(data, "mode")
            if mode not in tfa.MODES:
                raise BadRequest("Choose what two-factor authentication protects.")
            if tfa.active_mode(user):
                raise BadRequest("Two-factor authentication is already on.")
            await confirm(request, ident, data)
            async with c.db.write() as session:
                user = await session.get(User, ident.user_id)
                profile.start_tfa(user, mode)
            return redirect(request, TAB_2FA)
        if action == "confirm":
            return await _confirm(request, ident, user, field(data, "code"))
        if action == "cancel":
            if tfa.active_mode(user):
                raise BadRequest("Two-factor authentication is on; turn it off with your password instead.")
            async with c.db.write() as session:
                user = await session.get(User, ident.user_id)
                await profile.disable_tfa(session, user, keep_token=None)
            return redirect(request, TAB_2FA)
        if not tfa.active_mode(user):
            raise BadRequest("Two-factor authentication is not on.")
        await confirm(request, ident, data)
        if action == "disable":
            async with c.db.write() as session:
                user = await session.get(User, ident.user_id)
                await profile.disable_tfa(session, user, keep_token=None)
                await web_session.end_other_sessions(session, user.id, keep=ident.token_id)
                await audit.record(session, "2fa:disabled", actor=ident, origin=origin(request))
            forget_cached(request)
            links.notify(request, user, "Two-factor authentication was turned off")
            return redirect(request, TAB_2FA, notice="2fa-disabled")
        if action == "mode":
            mode = field(data, "mode")
            if mode not in tfa.MODES:
                raise BadRequest("Choose what two-factor authentication protects.")
            async with c.db.write() as session:
                user = await session.get(User, ident.user_id)
                previous, user.tfa_mode = user.tfa_mode, mode
                if previous != mode:
                    await audit.record(session, "2fa:enabled", actor=ident, origin=origin(request),
                                       details={"mode": mode, "previous": previous})
            forget_cached(request)
            if previous != mode:
                links.notify(request, user, f"Two-factor authentication now applies to: {mode}")
            return redirect(request, TAB_2FA, notice="2fa-mode")
        if action == "recovery":
            async with c.db.write() as session:
                user = await session.get(User, ident.user_id)
                codes = await tfa.replace_recovery_codes(session, user)
                await audit.record(session, "recovery_codes:regenerated", actor=ident, origin=origin(request))
            links.notify(request, user, "New two-factor recovery codes were made (the old ones no longer work)")
            return await _tfa_view(request, user, codes=codes)
        raise BadRequest("Unknown action.")
    except ApiError as e:
        user = await load_user(request, ident)
        return await _tfa_view(request, user, e.status, error=e.error, failed=action)


async def _confirm(request: Request, ident, user: User, code: str) -> Response:
    c = ctx(request)
    if not user.tfa_pending:
        raise BadRequest("Two-factor authentication is not being set up.")
    await throttle.check_otp(c.db, c.settings, user.id, client_ip(request))
    step = tfa.confirm_setup(user, code)
    if step is None:
        await throttle.otp_failed(c.db, c.settings, user.id, client_ip(request))
        raise BadRequest("That code is not right. Check that your device's clock is correct, and enter the code "
                         "your app shows now.")
    async with c.db.write() as session:
        user = await session.get(User, ident.user_id)
        if not user.tfa_pending or tfa.totp_step(user.tfa_secret, tfa.normalise(code)) != step:
            raise BadRequest("Two-factor authentication setup changed meanwhile; start again.")
        codes = await profile.finish_tfa(session, user, step, keep_token=None)
        await web_session.end_other_sessions(session, user.id, keep=ident.token_id)
        await audit.record(session, "2fa:enabled", actor=ident, origin=origin(request),
                           details={"mode": user.tfa_mode, "via": "website"})
    forget_cached(request)
    links.notify(request, user, f"Two-factor authentication was turned on ({user.tfa_mode})")
    return await _tfa_view(request, user, codes=codes, enabled=True)


# -- security keys ----------------------------------------------------------------------------

async def _keys_view(request: Request, user: User, status: int = 200, **values) -> Response:
    async with ctx(request).db.read() as session:
        keys = await security_keys.list_keys(session, user.id)
    return render(request, "settings_keys.html", status, scripts=True, tab=TAB_KEYS, user=user, keys=keys,
                  totp=bool(tfa.active_mode(user)), **values)


async def keys_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    user = await load_user(request, ident)
    if request.method == "GET":
        return await _keys_view(request, user)
    data = await form(request, max_fields=12)
    if not csrf_ok(request, data):
        return await _keys_view(request, user, 403, error=SESSION_EXPIRED)
    action = field(data, "action")
    try:
        if action == "begin":
            await confirm(request, ident, data)
            raw, options = await security_keys.start_registration(request, user)
            return await _keys_view(request, user, registering=raw, options=options,
                                    key_name=field(data, "name").strip()[:100])
        if action == "register":
            key = await security_keys.finish_registration(request, user, field(data, "registration"),
                                                          field(data, "credential"), field(data, "name"))
            forget_cached(request)
            links.notify(request, user, f"A security key ({key.name}) was added")
            return redirect(request, TAB_KEYS, notice="key-added")
        if action == "remove":
            await confirm(request, ident, data)
            key_id = field(data, "key")
            if not key_id.isdigit() or len(key_id) > 12:
                raise BadRequest("No such security key.")
            name = await security_keys.remove_key(request, user, int(key_id))
            links.notify(request, user, f"A security key ({name}) was removed")
            return redirect(request, TAB_KEYS, notice="key-removed")
        raise BadRequest("Unknown action.")
    except ApiError as e:
        return await _keys_view(request, user, e.status, error=e.error, failed=action)


routes = [
    Route(TAB_2FA, tfa_page, methods=["GET", "POST"]),
    Route(TAB_KEYS, keys_page, methods=["GET", "POST"]),
]
