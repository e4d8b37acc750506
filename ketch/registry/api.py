"""npm wire protocol for packages: packuments, tarballs, publish, unpublish, dist-tags, owners, stars.

Package paths are routed by :func:`package_endpoint` rather than by route patterns, because a scoped
name arrives percent-decoded (``@scope%2fname`` → ``@scope/name``) and so spans two path segments.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ketch.accounts import audit
from ketch.accounts.auth import identify, origin, require_otp, require_user, require_writer
from ketch.blobs import blob_key
from ketch.context import base_url, ctx
from ketch.http.body import read_json
from ketch.http.errors import ApiError, BadRequest, NotFound, not_found
from ketch.ops.metrics import PUBLISHES
from ketch.proxy.services import Streamed
from ketch.registry import access, names, services
from ketch.registry.fastpath import Entry, PackumentCache, packument_matches, validator_headers
from ketch.registry.packument import splice_base
from ketch.registry.publish import BadPublish, check_contents, parse_publish
from ketch.stats.counter import count as count_download

ABBREVIATED_TYPE = "application/vnd.npm.install-v1+json"


def _ok(extra: dict | None = None, status: int = 200) -> Response:
    body = {"ok": True, "success": True}
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status)


def split_package_path(path: str) -> tuple[str, list[str]] | None:
    """'/@s/n/-/n-1.0.0.tgz' → ('@s/n', ['-', 'n-1.0.0.tgz']); None when it cannot be a package path."""
    parts = path.lstrip("/").split("/")
    if not parts or not parts[0]:
        return None
    if parts[0] == "-":
        # /-/… is the endpoint namespace. The one package named "-" is addressed as /-, /-/-rev/<rev>
        # and /-/-/--<version>.tgz; no endpoint path starts with /-/-. Names like "-x" are ordinary.
        if len(parts) == 1 or parts[1] in ("-", "-rev"):
            return "-", parts[1:]
        return None
    if parts[0].startswith("@"):
        if len(parts) < 2:
            return None
        return parts[0] + "/" + parts[1], parts[2:]
    return parts[0], parts[1:]


async def package_endpoint(request: Request) -> Response:
    split = split_package_path(request.scope["path"])
    if split is None:
        return _unroutable(request)
    name, rest = split
    method = request.method
    if not rest or rest == [""]:
        if method in ("GET", "HEAD"):
            return await get_packument(request, name)
        if method == "PUT":
            return await put_package(request, name)
    elif len(rest) == 2 and rest[0] == "-rev":
        if method == "PUT":
            return await put_package(request, name, rev=rest[1])
        if method == "DELETE":
            return await delete_package(request, name, rest[1])
    elif len(rest) == 2 and rest[0] == "-":
        if method in ("GET", "HEAD"):
            return await get_tarball(request, name, rest[1])
    elif len(rest) == 1 and rest[0] and method in ("GET", "HEAD"):
        return await get_version(request, name, rest[0])
    elif len(rest) == 4 and rest[0] == "-" and rest[2] == "-rev" and method == "DELETE":
        await require_writer(request, "unpublish packages")
        return _ok()
    else:
        return _unroutable(request)
    raise ApiError(405, f"Method {method} is not allowed here.")


def _unroutable(request: Request) -> Response:
    """A path that addresses no package: a publish to it names an invalid package (400), else 404."""
    path = request.scope["path"]
    if request.method == "PUT" and not path.startswith("/-/"):
        try:
            names.validate_name(path.lstrip("/"))
        except names.InvalidName as e:
            raise BadRequest(str(e)) from None
    return not_found()


# -- reads ------------------------------------------------------------------------------------

async def _readable_entry(request: Request, name: str, *, revalidate: bool = True) -> Entry | None:
    """The cached documents of ``name`` if the caller may read them (None: answer 404).

    A missing name and a private one the caller may not read cost the same work — identify the
    caller, look the package up, check access (on a stand-in when missing) — so timing does not
    reveal which names exist (catalogue C02). Names with no local package that an uplink may
    serve, or that were mirrored, are answered by the proxy instead (public to every caller).
    """
    c = ctx(request)
    entry = await c.caches["packuments"].get(name)
    if entry.origin is not None or (entry.absent and c.proxy is not None and c.proxy.routes_upstream(name)):
        if c.proxy is None:
            return entry
        return await c.proxy.entry(name, entry, request.scope, revalidate=revalidate)
    if entry.etag is not None and entry.access != "restricted":
        return entry
    ident = await identify(request)
    async with c.db.read() as session:
        package = await access.hidden_package(session, name)
        if entry.etag is None:  # no documents: never published, or every version unpublished
            package = None
        if not await access.can_read_hidden(session, package, name, ident):
            return None
    return entry


def _upstream_warning(request: Request, response: Response) -> Response:
    """A copy served because the uplink failed says so (RFC 7234 ``Warning``, plus the reason)."""
    warning = request.scope.get("ketch.warning")
    if warning is not None:
        response.headers["warning"] = warning[0]
        response.headers["x-ketch-upstream"] = warning[1][:300]
    return response


async def get_packument(request: Request, name: str) -> Response:
    """The slow path's packument: private packages (after an access check), ``?write=true`` and HEAD.

    Documents come from the same proven-fresh cache and renderer as the hot path, so both paths
    answer with the same bytes and headers (except ``private`` caching for restricted packages).
    """
    write = "write" in request.query_params
    abbreviated = ABBREVIATED_TYPE in request.headers.get("accept", "") and not write
    entry = await _readable_entry(request, name)
    if entry is None:
        return not_found()
    private = entry.access == "restricted"
    inm = request.headers.get("if-none-match")
    if inm and not write and packument_matches(entry, abbreviated, inm.encode("latin-1")):
        response = Response(status_code=304)
        response.raw_headers = validator_headers(entry, abbreviated, private)
        return response
    cache: PackumentCache = ctx(request).caches["packuments"]
    headers, body = cache.render(entry, abbreviated, base_url(request).encode(),
                                 "gzip" in request.headers.get("accept-encoding", ""), private=private)
    response = Response(b"" if request.method == "HEAD" else body)
    response.raw_headers = list(headers)  # content-length stays the GET body's, as HEAD requires
    return _upstream_warning(request, response)


async def get_version(request: Request, name: str, spec: str) -> Response:
    """`GET /<name>/<version or dist-tag>`: one version's document (pnpm asks for /<name>/latest)."""
    entry = await _readable_entry(request, name)
    if entry is None:
        return not_found()
    doc = orjson.loads(splice_base(entry.full, base_url(request)))
    version = doc["dist-tags"].get(spec, spec)
    manifest = doc["versions"].get(version)
    if manifest is None:
        return not_found()
    return _upstream_warning(request, JSONResponse(manifest, headers={"cache-control": "no-cache"}))


async def get_tarball(request: Request, name: str, filename: str) -> Response:
    entry = await _readable_entry(request, name, revalidate=False)
    if entry is not None and entry.origin is not None and ctx(request).proxy is not None:
        key = await ctx(request).proxy.tarball_key(name, filename, entry)
        if isinstance(key, Streamed):
            if key.claim():
                headers = {"cache-control": "public, max-age=31536000, immutable"}
                if key.answer.length is not None:
                    headers["content-length"] = str(key.answer.length)
                return StreamingResponse(key.body(), media_type="application/octet-stream", headers=headers)
            key = await asyncio.shield(key.done)
    else:
        key = entry.tarballs.get(filename) if entry is not None else None
    if key is None:
        return not_found()
    private = entry.access == "restricted"
    headers = {"cache-control": "private, max-age=31536000, immutable" if private
               else "public, max-age=31536000, immutable"}
    c = ctx(request)
    response = await c.blobs.response(key, headers)
    if response is None:
        raise ApiError(503, "The tarball is temporarily unavailable.", headers={"retry-after": "5"})
    count_download(c, request.scope, name, filename)
    return _upstream_warning(request, response)


# -- writes ------------------------------------------------------------------------------------

async def put_package(request: Request, name: str, rev: str | None = None) -> Response:
    c = ctx(request)
    if rev is None and request.headers.get("npm-command") in ("star", "unstar"):
        ident = await require_user(request, "star packages")  # stars need no one-time password
    else:
        # Read-only tokens and missing one-time passwords are refused before a large body is read.
        ident = await require_writer(request, "publish packages")
    body = await read_json(request, c.settings.max_body_size)
    if rev is None and body.get("_attachments"):
        return await _publish(request, name, body, ident)
    async with c.db.write() as session:
        built = await services.update_document(c.db, session, name, body, ident, rev, origin(request))
        if built is None:
            package = await services.get_package(session, name)
            current = f"{package.rev}-" if package else ""
        else:
            current = built.rev
    return _ok({"id": name, "rev": current}, 201 if rev is None else 200)


async def _publish(request: Request, name: str, body: dict, ident) -> Response:
    c = ctx(request)
    try:
        cmd = parse_publish(name, body)
        del body  # the base64 text can be large; drop it before inspecting the tarball
        await asyncio.to_thread(check_contents, cmd)
    except BadPublish as e:
        PUBLISHES.labels("refused").inc()
        raise BadRequest(str(e)) from None
    async with c.db.read() as session:
        existing = await services.get_package(session, name)
    if c.proxy is not None:
        await c.proxy.check_publish(name, [cmd.version])
    if existing is not None and existing.publish_requires_tfa:  # `npm access set mfa=publish|automation`
        await require_otp(request, ident, "publish this package",
                          allow_automation=existing.automation_token_overrides_tfa)
    cmd.blob_key = blob_key(cmd.sha512_hex)
    await c.blobs.put(cmd.blob_key, cmd.data)
    try:
        async with c.db.write() as session:
            built = await services.publish(c.db, session, cmd, ident, origin(request))
    except ApiError:
        PUBLISHES.labels("refused").inc()
        raise
    PUBLISHES.labels("ok").inc()
    return _ok({"id": name, "rev": built.rev}, 201)


async def delete_package(request: Request, name: str, rev: str) -> Response:
    c = ctx(request)
    ident = await require_writer(request, "unpublish packages")
    async with c.db.write() as session:
        await services.unpublish_package(c.db, session, name, ident, rev, origin(request))
    return _ok()


# -- /-/package/:name/dist-tags -----------------------------------------------------------------

async def package_meta_endpoint(request: Request) -> Response:
    rest = request.path_params["rest"]
    if rest.endswith("/dist-tags"):
        return await dist_tags_get(request, rest[: -len("/dist-tags")])
    name, _, what = rest.rpartition("/")
    if what in ("collaborators", "visibility", "access") and name:
        return await access_endpoint(request, name, what)
    if what == "audit" and name and request.method == "GET":
        return await package_audit(request, name)
    if "/dist-tags/" in rest:
        name, tag = rest.rsplit("/dist-tags/", 1)
        if request.method == "PUT":
            return await dist_tag_put(request, name, tag)
        if request.method == "DELETE":
            return await dist_tag_delete(request, name, tag)
    return not_found()


async def access_endpoint(request: Request, name: str, what: str) -> Response:
    """`npm access get status`, `list collaborators`, `set status=…|mfa=…` (pnpm reads /access too)."""
    c = ctx(request)
    if request.method == "GET":
        ident = await identify(request)
        async with c.db.read() as session:
            if what == "collaborators":
                return JSONResponse(await services.collaborators(session, name, ident))
            visible = await services.visibility(session, name, ident)
            if what == "access":
                return JSONResponse({"access": "public" if visible["public"] else "restricted"})
            return JSONResponse(visible)
    if request.method in ("POST", "PUT") and what == "access":
        ident = await require_writer(request, "change package access")
        body = await read_json(request, c.settings.max_json_body)
        async with c.db.write() as session:
            await services.set_access(c.db, session, name, body, ident, origin(request))
        return _ok()
    raise ApiError(405, "Method not allowed.")


async def package_audit(request: Request, name: str) -> Response:
    """The package's audit log, newest first (owners and admins only; Ketch extension)."""
    ident = await require_user(request, "read the audit log")
    before = request.query_params.get("before")
    async with ctx(request).db.read() as session:
        await services.require_admin(session, name, ident)
        events = await audit.list_events(session, package=name, before=int(before) if before and before.isdigit()
                                         else None, limit=int(request.query_params.get("limit", "100") or 100)
                                         if request.query_params.get("limit", "100").isdigit() else 100)
    return JSONResponse({"objects": [audit.event_json(e) for e in events]})


async def dist_tags_get(request: Request, name: str) -> Response:
    if request.method != "GET":
        raise ApiError(405, "Method not allowed.")
    c = ctx(request)
    ident = await identify(request)
    async with c.db.read() as session:
        package = await services.readable_package(session, name, ident)
        tags = await services.dist_tags(session, package.id)
    return JSONResponse(tags, headers={"cache-control": "no-cache"})


async def dist_tag_put(request: Request, name: str, tag: str) -> Response:
    c = ctx(request)
    ident = await require_writer(request, "change dist-tags", otp_exempt=tag != "latest")
    version = await read_json(request, c.settings.max_json_body, expect=(str, dict, list, int, float))
    async with c.db.write() as session:
        await services.add_dist_tag(c.db, session, name, tag, version, ident)
    return _ok(status=201)


async def dist_tag_delete(request: Request, name: str, tag: str) -> Response:
    c = ctx(request)
    ident = await require_writer(request, "change dist-tags", otp_exempt=tag != "latest")
    async with c.db.write() as session:
        await services.remove_dist_tag(c.db, session, name, tag, ident)
    return _ok()


async def starred_by_user(request: Request) -> Response:
    key = request.query_params.get("key", "")
    try:
        username = orjson.loads(key) if key.startswith('"') else key
    except orjson.JSONDecodeError:
        raise BadRequest("key must be a JSON string naming a user.") from None
    if not isinstance(username, str) or not username:
        raise NotFound()
    ident = await identify(request)
    async with ctx(request).db.read() as session:
        names = await services.starred_by(session, username, ident)
    return JSONResponse({"rows": [{"key": username, "value": n} for n in names]})


routes = [
    Route("/-/package/{rest:path}", package_meta_endpoint, methods=["GET", "PUT", "POST", "DELETE"]),
    Route("/-/_view/starredByUser", starred_by_user, methods=["GET"]),
]

# Mounted last by the app: everything that is not a /-/ route is a package path.
package_route = Route("/{path:path}", package_endpoint, methods=["GET", "HEAD", "PUT", "DELETE"])
