"""npm wire protocol for `npm org`, `npm team` and `npm access list packages`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ketch.accounts import audit
from ketch.accounts.auth import origin, require_org_reader, require_org_writer, require_user
from ketch.context import ctx
from ketch.http.body import read_json
from ketch.http.errors import BadRequest, Forbidden, NotFound
from ketch.orgs import services
from ketch.registry import access
from ketch.registry import services as registry
from ketch.registry import transfer


def _org(request: Request) -> str:
    return request.path_params["org"].lstrip("@")


async def _body(request: Request) -> dict:
    return await read_json(request, ctx(request).settings.max_json_body)


async def org_create(request: Request) -> Response:
    ident = await require_org_writer(request, _org(request))
    async with ctx(request).db.write() as session:
        org = await services.create_org(session, _org(request), ident, origin=origin(request))
    return JSONResponse({"name": org.name, "created": True}, status_code=201)


async def org_users(request: Request) -> Response:
    name = _org(request)
    c = ctx(request)
    if request.method == "GET":
        ident = await require_org_reader(request, name, "list organisation members")
        async with c.db.read() as session:
            org, _ = await services.visible_org(session, name, ident)
            return JSONResponse(await services.members(session, org.id))
    ident = await require_org_writer(request, name)
    body = await _body(request)
    async with c.db.write() as session:
        if request.method == "PUT":
            org, size, role = await services.set_member(session, name, ident, body.get("user"), body.get("role"),
                                                        origin=origin(request))
            return JSONResponse({"org": {"name": org.name, "size": size}, "user": body["user"].lstrip("@"),
                                 "role": role}, status_code=201)
        await services.remove_member(session, name, ident, body.get("user"), origin=origin(request))
    return JSONResponse({"ok": True})


async def org_teams(request: Request) -> Response:
    name = _org(request)
    c = ctx(request)
    if request.method == "GET":
        ident = await require_org_reader(request, name, "list teams")
        async with c.db.read() as session:
            org, _ = await services.visible_org(session, name, ident)
            return JSONResponse([f"{org.name}:{t.name}" for t in await services.teams(session, org.id)])
    ident = await require_org_writer(request, name)
    body = await _body(request)
    async with c.db.write() as session:
        team = await services.create_team(session, name, ident, body.get("name"), body.get("description"),
                                          origin=origin(request))
    return JSONResponse({"name": team.name, "description": team.description}, status_code=201)


async def org_packages(request: Request) -> Response:
    ident = await require_user(request, "list packages")
    async with ctx(request).db.read() as session:
        org, _ = await services.visible_org(session, _org(request), ident)
        return JSONResponse(await transfer.org_packages(session, org, ident))


async def org_audit(request: Request) -> Response:
    """The organisation's audit log, newest first (owners and admins only; Ketch extension)."""
    ident = await require_org_reader(request, _org(request), "read the audit log")
    before = request.query_params.get("before", "")
    async with ctx(request).db.read() as session:
        org, _ = await services.managed_org(session, _org(request), ident)
        events = await audit.list_events(session, org=org.name, before=int(before) if before.isdigit() else None)
    return JSONResponse({"objects": [audit.event_json(e) for e in events]})


async def team_destroy(request: Request) -> Response:
    name = _org(request)
    ident = await require_org_writer(request, name)
    async with ctx(request).db.write() as session:
        await services.destroy_team(session, name, ident, request.path_params["team"], origin=origin(request))
    return JSONResponse({"ok": True})


async def team_users(request: Request) -> Response:
    name, team = _org(request), request.path_params["team"]
    c = ctx(request)
    if request.method == "GET":
        ident = await require_org_reader(request, name, "list team members")
        async with c.db.read() as session:
            return JSONResponse(await services.team_members(session, name, ident, team))
    ident = await require_org_writer(request, name)
    body = await _body(request)
    async with c.db.write() as session:
        if request.method == "PUT":
            await services.add_team_member(session, name, ident, team, body.get("user"), origin=origin(request))
            return JSONResponse({"ok": True}, status_code=201)
        await services.remove_team_member(session, name, ident, team, body.get("user"), origin=origin(request))
    return JSONResponse({"ok": True})


async def team_packages(request: Request) -> Response:
    name, team = _org(request), request.path_params["team"]
    c = ctx(request)
    if request.method == "GET":
        ident = await require_org_reader(request, name, "list team packages")
        async with c.db.read() as session:
            return JSONResponse(await services.team_packages(session, name, ident, team))
    ident = await require_org_writer(request, name)
    body = await _body(request)
    package_name = body.get("package")
    if not isinstance(package_name, str):
        raise BadRequest("A package name is required.")
    async with c.db.write() as session:
        package = await _grantable_package(session, name, ident, package_name)
        if request.method == "PUT":
            await services.grant(session, name, ident, team, package, body.get("permissions"), origin=origin(request))
        else:
            await services.revoke(session, name, ident, team, package, origin=origin(request))
    return JSONResponse({"ok": True}, status_code=201 if request.method == "PUT" else 200)


async def _grantable_package(session, org_name: str, ident, package_name: str):
    """The package whose team access an org owner or admin is changing. Outsiders get the org's
    404 before any package lookup, and a package the org does not own gets the same answer as
    one that does not exist, so nobody learns other scopes' private names here. The token must
    also cover the package: granting access is an admin change to it."""
    org, _ = await services.managed_org(session, org_name, ident)
    package = await registry.get_package(session, package_name)
    if package is None or package.unpublished is not None or not await services.owns_package(session, org, package):
        raise NotFound(f"@{org.name} has no package {package_name} (in its scope or transferred to it).")
    if not access.at_least(await access.level(session, package, ident), "admin"):
        raise Forbidden(f"This token may not change access to {package_name}.")
    return package


async def user_packages(request: Request) -> Response:
    """`npm access list packages <user>`: what that user can reach, as far as the caller may see."""
    ident = await require_user(request, "list packages")
    async with ctx(request).db.read() as session:
        return JSONResponse(await registry.user_packages(session, request.path_params["user"], ident))


routes = [
    Route("/-/org/{org}", org_create, methods=["PUT"]),
    Route("/-/org/{org}/user", org_users, methods=["GET", "PUT", "DELETE"]),
    Route("/-/org/{org}/team", org_teams, methods=["GET", "PUT"]),
    Route("/-/org/{org}/package", org_packages, methods=["GET"]),
    Route("/-/org/{org}/audit", org_audit, methods=["GET"]),
    Route("/-/team/{org}/{team}", team_destroy, methods=["DELETE"]),
    Route("/-/team/{org}/{team}/user", team_users, methods=["GET", "PUT", "DELETE"]),
    Route("/-/team/{org}/{team}/package", team_packages, methods=["GET", "PUT", "DELETE"]),
    Route("/-/user/{user}/package", user_packages, methods=["GET"]),
]
