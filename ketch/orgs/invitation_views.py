"""The page an emailed org invitation links to: ``/-/web/org-invitation?token=…``.

Logged out, it says who invited whom to what and links to the login and sign-up pages, which come
back here. Logged in as the invitee, one button accepts (:func:`ketch.orgs.invitations.accept`);
with ``auth-and-writes`` two-factor authentication it needs a one-time password, as every org change
does. The secret travels in the query string, which the access log leaves out, and the page is never
cached nor sent on as a referrer (:data:`ketch.accounts.pages.NO_STORE`).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts.auth import origin
from ketch.accounts.pages import SESSION_EXPIRED, csrf_ok, field, form, page_user, redirect, render, write_otp
from ketch.context import ctx
from ketch.http.errors import ApiError
from ketch.orgs import invitations

PAGE = "org_invitation.html"


async def invitation_page(request: Request) -> Response:
    data = await form(request) if request.method == "POST" else None
    secret = field(data, "token") if data is not None else request.query_params.get("token", "")
    async with ctx(request).db.read() as session:
        found = await invitations.find(session, secret)
    if found is None:
        return render(request, PAGE, 400, error=invitations.INVALID)
    invitation, org, inviter = found
    here = "/-/web/org-invitation?token=" + quote(secret, safe="")
    values = {"org": org.name, "role": invitation.role, "inviter": inviter, "token": secret,
              "next": quote(here, safe="")}
    ident = await page_user(request)
    if data is None or ident is None:
        return render(request, PAGE, **values)
    if not csrf_ok(request, data):
        return render(request, PAGE, 403, error=SESSION_EXPIRED, **values)
    try:
        await write_otp(request, ident, data)
        async with ctx(request).db.write() as session:
            await invitations.accept(session, secret, ident, origin=origin(request))
    except ApiError as e:
        return render(request, PAGE, e.status, error=e.error, **values)
    return redirect(request, f"/-/web/org/{org.name}/settings", notice="joined")


routes = [Route("/-/web/org-invitation", invitation_page, methods=["GET", "POST"])]
