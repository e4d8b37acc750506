"""Organization pages of the website: create an org, and its settings page (members and roles,
emailed invitations, teams, team members, the packages each team may read or write, and deleting
the org).

Every change calls the service function `npm org`, `npm team` and `npm access` use
(:mod:`ketch.orgs.services`), so the role rules (owners manage owners, the last owner stays, the
developers team cannot go), audit events and limits are the same. Outsiders get the same 404 page
whether or not the org exists. With ``auth-and-writes`` two-factor authentication, each change
needs a one-time password in the form.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts import throttle
from ketch.accounts.auth import client_ip, origin
from ketch.accounts.email import link_base, send_org_invitation
from ketch.accounts.pages import (SESSION_EXPIRED, csrf_ok, field, form, login_redirect, page_user, redirect, render,
                                  write_otp)
from ketch.context import ctx
from ketch.http.errors import ApiError, BadRequest
from ketch.orgs import api as orgs_api
from ketch.orgs import invitations, services
from ketch.orgs.models import ROLES
from ketch.registry import transfer

PERMISSION_LABELS = {"read-only": "Read-only", "read-write": "Read and write"}
# The fixed messages of these pages after a redirect (``?notice=<key>``), besides the shared ones.
NOTICES = {
    "invited": "The invitation is sent. It is valid for 7 days.",
    "transferred-to-org": "The package is transferred: it belongs to this organization now.",
    "org-deleted": "The organization is deleted.",
    "joined": "Welcome! You are a member of this organization now.",
}


def own_notice(request: Request) -> dict:
    """``notice=`` for the messages of these pages (:func:`render` picks the shared ones itself)."""
    text = NOTICES.get(request.query_params.get("notice", ""))
    return {"notice": text} if text else {}


async def orgs_list_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    async with ctx(request).db.read() as session:
        orgs = await services.orgs_of(session, ident.user_id)
    return render(request, "settings_orgs.html", tab="/-/web/settings/orgs", orgs=orgs, **own_notice(request))


async def new_org_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    page = "org_new.html"
    if request.method == "GET":
        return render(request, page)
    data = await form(request)
    name = field(data, "name").strip().lstrip("@")
    if not csrf_ok(request, data):
        return render(request, page, 403, error=SESSION_EXPIRED, name=name)
    try:
        await write_otp(request, ident, data)
        async with ctx(request).db.write() as session:
            org = await services.create_org(session, name, ident, origin=origin(request))
    except ApiError as e:
        return render(request, page, e.status, error=e.error, name=name)
    return redirect(request, f"/-/web/org/{org.name}/settings", notice="org-created")


async def _view(request: Request, ident, name: str, status: int = 200, **values) -> Response:
    async with ctx(request).db.read() as session:
        org, role = await services.visible_org(session, name, ident)
        members = await services.members(session, org.id)
        teams = []
        for team in await services.teams(session, org.id):
            teams.append({"name": team.name, "description": team.description,
                          "members": await services.team_members(session, org.name, ident, team.name),
                          "packages": await services.team_packages(session, org.name, ident, team.name)})
        packages = await transfer.org_packages(session, org, ident)
        invited = await invitations.pending(session, org.id) if role in ("owner", "admin") else []
    values = {**own_notice(request), **values}
    return render(request, "org_settings.html", status, org=org, role=role, manager=role in ("owner", "admin"),
                  members=members, teams=teams, packages=packages, roles=ROLES, invited=invited, **values)


async def org_settings_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    name = request.path_params["org"].lstrip("@")
    if request.method == "GET":
        return await _safe_view(request, ident, name)
    data = await form(request)
    if not csrf_ok(request, data):
        return await _safe_view(request, ident, name, 403, error=SESSION_EXPIRED)
    action = field(data, "action")
    try:
        await write_otp(request, ident, data)
        notice = await (_invite(request, ident, name, data) if action == "invite" else
                        _change(request, ident, name, action, data))
    except ApiError as e:
        return await _safe_view(request, ident, name, e.status, error=e.error, failed=action)
    if notice == "deleted":
        return redirect(request, "/-/web/settings/orgs", notice="org-deleted")
    if notice == "invited":
        return redirect(request, f"/-/web/org/{name}/settings?notice=invited#invitations")
    return redirect(request, f"/-/web/org/{name}/settings?notice=saved#{notice}")


async def _safe_view(request: Request, ident, name: str, status: int = 200, **values) -> Response:
    """The settings page, or the same 404 page for an org that does not exist and one the caller is
    not a member of."""
    try:
        return await _view(request, ident, name, status, **values)
    except ApiError as e:
        if e.status == 404:
            return render(request, "account_not_found.html", 404)
        raise


async def _invite(request: Request, ident, name: str, data) -> str:
    role, invitee = field(data, "role"), field(data, "invitee").strip()
    # The budget of emailed links per address (and per client IP), as for reset emails.
    await throttle.mail(ctx(request).db, "invite", invitee.lstrip("@") or "-", client_ip(request))
    async with ctx(request).db.write() as session:
        sent = await invitations.invite(session, name, ident, invitee, role, origin=origin(request))
    # Sent once the invitation is committed, so a link never points at an invitation that is not there.
    send_org_invitation(request, sent.address, name, role, ident.name,
                        f"{link_base(request)}/-/web/org-invitation?token={sent.secret}")
    return "invited"


async def _change(request: Request, ident, name: str, action: str, data) -> str:
    where = origin(request)
    user, team = field(data, "user").strip().lstrip("@"), field(data, "team").strip()
    async with ctx(request).db.write() as session:
        if action == "set-member":
            await services.set_member(session, name, ident, user, field(data, "role"), origin=where)
            return "members"
        if action == "revoke-invitation":
            await invitations.revoke(session, name, ident, field(data, "invitation"), origin=where)
            return "invitations"
        if action == "delete-org":
            await services.delete_org(session, name, ident, field(data, "confirm_name"), origin=where)
            return "deleted"
        if action == "remove-member":
            await services.remove_member(session, name, ident, user, origin=where)
            return "members"
        if action == "create-team":
            await services.create_team(session, name, ident, team, field(data, "description").strip() or None,
                                       origin=where)
            return "teams"
        if action == "destroy-team":
            await services.destroy_team(session, name, ident, team, origin=where)
            return "teams"
        if action == "team-add":
            await services.add_team_member(session, name, ident, team, user, origin=where)
            return "team-" + team
        if action == "team-remove":
            await services.remove_team_member(session, name, ident, team, user, origin=where)
            return "team-" + team
        if action in ("grant", "revoke"):
            package = await orgs_api._grantable_package(session, name, ident, field(data, "package").strip())
            if action == "grant":
                await services.grant(session, name, ident, team, package, field(data, "permission"), origin=where)
            else:
                await services.revoke(session, name, ident, team, package, origin=where)
            return "team-" + team
    raise BadRequest("Unknown action.")


routes = [
    Route("/-/web/settings/orgs", orgs_list_page, methods=["GET"]),
    Route("/-/web/orgs/new", new_org_page, methods=["GET", "POST"]),
    Route("/-/web/org/{org}/settings", org_settings_page, methods=["GET", "POST"]),
]
