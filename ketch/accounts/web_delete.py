"""The account deletion page of the settings (``/-/web/settings/delete``).

Deleting needs the password, and a one-time password when two-factor authentication is on. It is
refused while the user is the only maintainer of a live package or the only owner of an
organization: they must hand those over first (package settings → Transfer or Owners; org settings
→ Members). The account then becomes the tombstone `DELETE /-/npm/v1/user` leaves
(:func:`ketch.accounts.profile.delete_account`); besides, its browser sessions and security keys
go, it leaves its orgs, teams and co-maintained packages, and this browser is logged out.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import audit, closing, links, tfa, web_session
from ketch.accounts.auth import origin
from ketch.accounts.models import User
from ketch.accounts.pages import SESSION_EXPIRED, confirm, csrf_ok, form, load_user, login_redirect, page_user, render
from ketch.accounts.web_settings import forget_cached
from ketch.context import ctx
from ketch.http.errors import ApiError, Conflict

PAGE, TAB = "settings_delete.html", "/-/web/settings/delete"


async def delete_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    user = await load_user(request, ident)
    async with ctx(request).db.read() as session:
        blockers = await closing.blockers(session, ident.user_id)
    values = {"tab": TAB, "user": user, "blockers": blockers, "tfa_on": bool(tfa.active_mode(user))}
    if request.method == "GET":
        return render(request, PAGE, **values)
    data = await form(request)
    if not csrf_ok(request, data):
        return render(request, PAGE, 403, error=SESSION_EXPIRED, **values)
    try:
        await confirm(request, ident, data)
        address = user.email
        async with ctx(request).db.write() as session:
            blockers = await closing.blockers(session, ident.user_id)
            if blockers["packages"] or blockers["orgs"]:
                raise Conflict("Hand over your packages and organizations first (see the list below).")
            user = await session.get(User, ident.user_id)
            await closing.close_account(session, user)
            await audit.record(session, "account:deleted", actor=ident, origin=origin(request),
                               details={"via": "website"})
    except ApiError as e:
        return render(request, PAGE, e.status, error=e.error, **{**values, "blockers": blockers})
    forget_cached(request)
    links.notify(request, user, "Your account was deleted", to=address)
    response = render(request, "account_deleted.html", me=None, name=ident.name)
    await web_session.end_session(request, response)
    return response


routes = [Route("/-/web/settings/delete", delete_page, methods=["GET", "POST"])]
