"""The package settings page of the website (owners and admins of the package): visibility and
publishing 2FA, owners, deprecating versions, dist-tags, and transferring the package to another
user or to an organization (:mod:`ketch.registry.transfer`).

Each form calls the service function behind the matching npm command (`npm access set`,
`npm owner`, `npm deprecate`, `npm dist-tag`; :mod:`ketch.registry.services`), so the permission
rules, audit events and packument rebuilds are those of the API. A package the caller may not read
gets the same 404 page as one that does not exist; a writer who is not an owner gets 403.

Two-factor rules as on the API: with ``auth-and-writes``, changes need a one-time password in the
form — except dist-tags other than ``latest``, which npm lets through without one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ketch.accounts.auth import origin
from ketch.accounts.pages import (SESSION_EXPIRED, csrf_ok, field, form, login_redirect, page_user, redirect, render,
                                  write_otp)
from ketch.context import ctx
from ketch.http.errors import ApiError, BadRequest
from ketch.orgs import services as orgs
from ketch.registry import services, transfer

MFA_MODES = {"none": (False, False), "publish": (True, False), "automation": (True, True)}


def _settings_path(name: str) -> str:
    return f"/-/web/package/{name}/settings"


async def _view(request: Request, ident, name: str, status: int = 200, **values) -> Response:
    async with ctx(request).db.read() as session:
        package = await services.require_admin(session, name, ident)
        tags = await services.dist_tags(session, package.id)
        versions = [v.version for v in await services.live_versions(session, package.id)]
        deprecated = {v.version: v.deprecated for v in await services.live_versions(session, package.id)
                      if v.deprecated}
        owners = await services.maintainers(session, package.id)
        collaborators = await services.collaborators(session, name, ident)
    mfa = "automation" if package.publish_requires_tfa and package.automation_token_overrides_tfa else (
        "publish" if package.publish_requires_tfa else "none")
    return render(request, "package_settings.html", status, package=package, tags=tags, versions=versions[::-1],
                  deprecated=deprecated, owners=owners, collaborators=collaborators, mfa=mfa, **values)


async def package_settings_page(request: Request) -> Response:
    ident = await page_user(request)
    if ident is None:
        return login_redirect(request)
    name = request.path_params["name"]
    if request.method == "GET":
        return await _safe_view(request, ident, name, 200)
    data = await form(request)
    if not csrf_ok(request, data):
        return await _safe_view(request, ident, name, 403, error=SESSION_EXPIRED)
    action = field(data, "action")
    try:
        if not (action in ("tag-add", "tag-remove") and field(data, "tag").strip() != "latest"):
            await write_otp(request, ident, data)
        section = await _change(request, ident, name, action, data)
    except ApiError as e:
        return await _safe_view(request, ident, name, e.status, error=e.error, failed=action)
    if section == "transferred":
        return redirect(request, "/-/web/settings/orgs", notice="transferred")
    if section.startswith("org:"):
        return redirect(request, f"/-/web/org/{section[4:]}/settings?notice=transferred-to-org#packages")
    return redirect(request, f"{_settings_path(name)}?notice=saved#{section}")


async def _safe_view(request: Request, ident, name: str, status: int, **values) -> Response:
    """The settings page; the "not found" page for a package the caller may not read (the same as
    for one that does not exist) and a 403 page for one they may write but not manage."""
    try:
        return await _view(request, ident, name, status, **values)
    except ApiError as e:
        if e.status == 404:
            return render(request, "account_not_found.html", 404)
        if e.status == 403:
            return render(request, "account_not_found.html", 403, error=values.get("error") or e.error)
        raise


async def _change(request: Request, ident, name: str, action: str, data) -> str:
    c = ctx(request)
    where = origin(request)
    async with c.db.write() as session:
        if action == "access":
            body = {}
            access = field(data, "access")
            if access:
                body["access"] = access
            mfa = field(data, "mfa")
            if mfa:
                if mfa not in MFA_MODES:
                    raise BadRequest("Choose none, publish or automation.")
                body["publish_requires_tfa"], body["automation_token_overrides_tfa"] = MFA_MODES[mfa]
            await services.set_access(c.db, session, name, body, ident, where)
            return "access"
        if action == "tag-add":
            await services.add_dist_tag(c.db, session, name, field(data, "tag").strip(), field(data, "version"), ident)
            return "tags"
        if action == "tag-remove":
            await services.remove_dist_tag(c.db, session, name, field(data, "tag").strip(), ident)
            return "tags"
        if action == "deprecate":
            version, message = field(data, "version"), field(data, "message").strip()
            live = [v.version for v in await services.live_versions(session, (await _package(session, name, ident)).id)]
            chosen = live if version == "*" else [version]
            if not chosen or any(v not in live for v in chosen):
                raise BadRequest("Choose a version of this package.")
            body = {"_id": name, "name": name, "versions": {v: {"deprecated": message} for v in chosen}}
            await services.update_document(c.db, session, name, body, ident, None, where)
            return "deprecate"
        if action in ("owner-add", "owner-remove", "transfer"):
            package = await _package(session, name, ident)
            current = [m["name"] for m in await services.maintainers(session, package.id)]
            target = field(data, "user").strip().lstrip("@")
            if not target:
                raise BadRequest("Enter a user name." if action != "transfer" else
                                 "Enter the name of the user or organization to transfer the package to.")
            if action == "owner-add":
                wanted = current + [target] if target not in current else current
            elif action == "owner-remove":
                wanted = [n for n in current if n != target]
            else:
                if field(data, "confirm_name").strip() != name:
                    raise BadRequest("Type the package name to confirm the transfer.")
                if await orgs.get_org(session, target) is not None:
                    org = await transfer.transfer_to_org(c.db, session, name, target, ident, origin=where)
                    return "org:" + org.name
                wanted = [target]
            body = {"_id": name, "name": name, "maintainers": [{"name": n} for n in wanted]}
            await services.update_document(c.db, session, name, body, ident, f"{package.rev}-", where)
            return "transferred" if action == "transfer" and ident.name not in wanted else "owners"
    raise BadRequest("Unknown action.")


async def _package(session, name: str, ident):
    return await services.require_admin(session, name, ident)


routes = [Route("/-/web/package/{name:path}/settings", package_settings_page, methods=["GET", "POST"])]
