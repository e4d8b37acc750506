"""Account settings pages: profile (with email change and re-verification), password, and the
account's audit log.

Each change uses the rules of `npm profile` (:mod:`ketch.accounts.profile`): the same field checks,
audit events, emails and throttles. With two-factor authentication on, every change also needs a
one-time password; changing the email or the password needs the current password too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import audit, links, passwords, profile, tfa, throttle, web_session
from ketch.accounts.auth import client_ip, origin
from ketch.accounts.models import User
from ketch.accounts.pages import (OTP_MISSING, SESSION_EXPIRED, check_code, confirm, csrf_ok, field, form,
                                  load_user, login_redirect, page_user, redirect, render)
from ketch.context import ctx
from ketch.http.errors import ApiError, BadRequest

AUDIT_PAGE = 50


def forget_cached(request: Request) -> None:
    """After a change to credentials: no node-local cache may keep answering with the old state."""
    ctx(request).caches.get("auth", {}).clear()
    web_session.forget_cached(request)


# -- profile --------------------------------------------------------------------------------

async def profile_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    user = await load_user(request, ident)
    page, tab = "settings_profile.html", "/-/web/settings"
    if request.method == "GET":
        return render(request, page, tab=tab, user=user)
    data = await form(request)
    if not csrf_ok(request, data):
        return render(request, page, 403, tab=tab, user=user, error=SESSION_EXPIRED)
    action = field(data, "action")
    try:
        if action == "email":
            notice = await _change_email(request, ident, user, data)
        elif action == "resend":
            notice = await _resend(request, user)
        else:
            notice = await _save_profile(request, ident, user, data)
    except ApiError as e:
        user = await load_user(request, ident)
        return render(request, page, e.status, tab=tab, user=user, error=e.error, form_values=dict(data),
                      failed=action or "profile")
    return redirect(request, "/-/web/settings", notice=notice)


async def _save_profile(request: Request, ident, user: User, data) -> str:
    changes = profile.plan_changes(user, {key: field(data, key) for key in profile.FIELDS})
    if not changes:
        return "saved"
    if tfa.active_mode(user):
        code = field(data, "otp").strip()
        if not code:
            raise ApiError(401, OTP_MISSING)
        await check_code(request, ident, code)
    async with ctx(request).db.write() as session:
        user = await session.get(User, ident.user_id)
        profile.apply_changes(user, changes)
        await audit.record(session, "profile:changed", actor=ident, origin=origin(request),
                           details={"fields": sorted(changes)})
    return "profile-saved"


async def _change_email(request: Request, ident, user: User, data) -> str:
    address = field(data, "email").strip()
    changes = profile.plan_changes(user, {"email": address})
    if not changes:
        raise BadRequest("That is already your email address.")
    await confirm(request, ident, data)
    c = ctx(request)
    await throttle.mail(c.db, "verify", ident.name, client_ip(request))
    async with c.db.write() as session:
        user = await session.get(User, ident.user_id)
        old_email = user.email
        profile.apply_changes(user, changes)
        await audit.record(session, "email:changed", actor=ident, origin=origin(request),
                           details={"from": old_email, "to": user.email})
        verify = await links.issue(session, user, "verify")
    links.send_verification(request, user, verify)
    links.notify(request, user, f"Your email address was changed to {user.email}", to=old_email)
    return "email-changed"


async def _resend(request: Request, user: User) -> str:
    if user.email_verified:
        raise BadRequest("Your email address is already verified.")
    c = ctx(request)
    await throttle.mail(c.db, "verify", user.name, client_ip(request))
    async with c.db.write() as session:
        verify = await links.issue(session, user, "verify")
    links.send_verification(request, user, verify)
    return "verification-sent"


# -- password -------------------------------------------------------------------------------

async def password_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    page, tab = "settings_password.html", "/-/web/settings/password"
    user = await load_user(request, ident)
    if request.method == "GET":
        return render(request, page, tab=tab, user=user)
    data = await form(request)
    if not csrf_ok(request, data):
        return render(request, page, 403, tab=tab, user=user, error=SESSION_EXPIRED)
    new = field(data, "new_password")
    try:
        problem = passwords.password_problem(new, ident.name)
        if problem is None and new != field(data, "confirm"):
            problem = "The two new passwords are not the same."
        if problem:
            raise BadRequest(problem)
        await confirm(request, ident, data)
        new_hash = await passwords.hash_password(new)
        async with ctx(request).db.write() as session:
            user = await session.get(User, ident.user_id)
            await profile.set_password(session, user, new_hash, keep_token=None)
            await web_session.end_other_sessions(session, user.id, keep=None)
            await audit.record(session, "password:changed", actor=ident, origin=origin(request),
                               details={"via": "website"})
    except ApiError as e:
        return render(request, page, e.status, tab=tab, user=user, error=e.error)
    forget_cached(request)
    links.notify(request, user, "Your password was changed")
    response = redirect(request, "/-/web/settings/password", notice="password-changed")
    await web_session.start_session(request, response, user)  # the old session ended with the others
    return response


# -- audit log -------------------------------------------------------------------------------

async def audit_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    before = request.query_params.get("before")
    before_id = int(before) if before and before.isdigit() and len(before) < 19 else None
    async with ctx(request).db.read() as session:
        events = await audit.list_events(session, user_id=ident.user_id, before=before_id, limit=AUDIT_PAGE + 1)
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    shown = [audit.event_json(e) for e in events]
    return render(request, "settings_audit.html", tab="/-/web/settings/audit", events=shown,
                  older=events[-1].id if more and events else None, first_page=before_id is None)


routes = [
    Route("/-/web/settings", profile_page, methods=["GET", "POST"]),
    Route("/-/web/settings/password", password_page, methods=["GET", "POST"]),
    Route("/-/web/settings/audit", audit_page, methods=["GET"]),
]
