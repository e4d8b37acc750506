"""Registry rules: publish, metadata updates, unpublish, dist-tags, owners, stars.

Every write runs inside one transaction that also rebuilds the stored packuments, so readers see
either the old documents or the new ones. Functions take an open session and never commit.
"""

from __future__ import annotations

from datetime import timedelta

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts import audit
from ketch.accounts.models import User
from ketch.accounts.services import Identity
from ketch.db import touch
from ketch.registry import events
from ketch.db.base import utcnow
from ketch.http.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from ketch.orgs import services as orgs
from ketch.registry import access, names, packument
from ketch.registry.models import DistTag, Maintainer, Package, Packument, Star, Version
from ketch.registry.publish import BadPublish, PublishCommand, check_tag, readme_of, stored_manifest
from ketch.registry.versions import InvalidVersion, max_version, parse_version, version_key

MAX_VERSIONS = 10_000


def forbidden_publish(name: str) -> ApiError:
    return Forbidden(f'You do not have permission to publish "{name}". Are you logged in as the correct user?')


def republish_refused(version: str) -> ApiError:
    return Forbidden(f"You cannot publish over the previously published versions: {version}.")


# -- reading -------------------------------------------------------------------------------

async def get_package(session: AsyncSession, name: str) -> Package | None:
    return (await session.execute(select(Package).where(Package.name == name))).scalar_one_or_none()


async def can_read(session: AsyncSession, package: Package, ident: Identity | None) -> bool:
    if package.access != "restricted" and (ident is None or ident.token_limits is None):
        return True
    return access.at_least(await access.level(session, package, ident), "read")


async def readable_package(session: AsyncSession, name: str, ident: Identity | None) -> Package:
    """The live package, or the one 404 for missing, unpublished and hidden packages alike."""
    package = await get_package(session, name)
    if package is None or package.unpublished is not None or not await can_read(session, package, ident):
        raise NotFound()
    return package


async def dist_tags(session: AsyncSession, package_id: int) -> dict[str, str]:
    rows = await session.execute(select(DistTag.tag, DistTag.version).where(DistTag.package_id == package_id))
    return dict(rows.all())


async def maintainers(session: AsyncSession, package_id: int) -> list[dict]:
    rows = await session.execute(
        select(User.name, User.email).join(Maintainer, Maintainer.user_id == User.id)
        .where(Maintainer.package_id == package_id).order_by(User.name))
    return [{"name": n, "email": e or ""} for n, e in rows.all()]


async def live_versions(session: AsyncSession, package_id: int) -> list[Version]:
    rows = await session.execute(
        select(Version).where(Version.package_id == package_id, Version.unpublished.is_(None)))
    return list(rows.scalars())


async def load_rows(session: AsyncSession, package: Package) -> packument.PackageRows:
    # Plain column tuples, not ORM objects, and no per-version READMEs: only the latest one is
    # served. This runs in every write transaction, for packages with hundreds of versions.
    versions = (await session.execute(
        select(Version.version, Version.manifest, Version.created, Version.deprecated)
        .where(Version.package_id == package.id, Version.unpublished.is_(None)))).all()
    stars = await session.execute(
        select(User.name).join(Star, Star.user_id == User.id).where(Star.package_id == package.id))
    tags = await dist_tags(session, package.id)
    readme = readme_filename = None
    if "latest" in tags:
        found = (await session.execute(
            select(Version.readme, Version.readme_filename).where(
                Version.package_id == package.id, Version.version == tags["latest"],
                Version.unpublished.is_(None)))).first()
        if found is not None:
            readme, readme_filename = found
    loads = orjson.loads
    return packument.PackageRows(
        name=package.name, rev=package.rev, created=package.created, modified=package.modified,
        versions=[packument.VersionRow(v, loads(m), c, d) for v, m, c, d in versions],
        dist_tags=tags, maintainers=await maintainers(session, package.id), stars=[s for (s,) in stars.all()],
        readme=readme, readme_filename=readme_filename,
    )


async def rebuild(session: AsyncSession, package: Package, kind: str = "update") -> packument.Built | None:
    """Recompute and store the packuments of ``package`` (inside the caller's transaction);
    ``kind`` names the change for the replication feed (publish, dist-tag, deprecate, …)."""
    touch(session, package.name)
    await session.execute(delete(Packument).where(Packument.package_id == package.id))
    if package.unpublished is not None:
        await events.package_changed(session, package, None, kind, f"{package.rev}-deleted")
        return None
    await session.flush()  # pending version/dist-tag rows must be visible to the loads below
    rows = await load_rows(session, package)
    built = packument.build(rows)
    await events.package_changed(session, package, rows, kind, built.rev)
    session.add(Packument(package_id=package.id, name=package.name, etag=built.etag, modified=package.modified,
                          access=package.access, full=built.full, abbreviated=built.abbreviated))
    await session.flush()
    return built


def _advance(package: Package) -> None:
    """Advance rev and modified; modified never goes backwards even if the wall clock does."""
    now = utcnow()
    if package.modified is not None and now <= package.modified:
        now = package.modified + timedelta(milliseconds=1)
    package.modified = now
    package.rev = (package.rev or 0) + 1


async def _check_new_package_scope(session: AsyncSession, scope: str | None, ident: Identity, name: str):
    """May ``ident`` create a package in ``scope``? Returns the owning org, if any."""
    if ident.token_limits is not None:
        packages, scopes, permission = ident.token_limits
        if permission != "read-write" or (name not in packages and scope not in scopes):
            raise forbidden_publish(name)
    if scope is None:
        return None
    org = await orgs.get_org(session, scope)
    role = await orgs.role_of(session, org.id, ident.user_id) if org else None
    user_exists = org is None and (await session.execute(select(User.id).where(User.name == scope))).first() is not None
    problem = access.scope_owner_problem(scope, ident, role, org is not None, user_exists)
    if problem == "unowned":
        raise Forbidden(f"The scope @{scope} does not exist. Publish under your own scope (@{ident.name}) "
                        f"or ask an operator to create an organisation named {scope}.")
    if problem:
        raise forbidden_publish(name)
    return org


async def _lock_package(db, session: AsyncSession, name: str) -> Package | None:
    await db.lock(session, "pkg:" + name)
    return await get_package(session, name)


async def _require(session: AsyncSession, package: Package, ident: Identity, wanted: str) -> None:
    """Raise unless ``ident`` has at least ``wanted`` on ``package``: 404 when it may not even
    read it (existence must not leak), 403 otherwise."""
    got = await access.level(session, package, ident)
    if access.at_least(got, wanted):
        return
    if got == "none":
        raise NotFound()
    if ident.readonly:
        raise Forbidden("This token is read-only and cannot be used to make changes.")
    if wanted == "admin" and got == "write":
        raise Forbidden(f'Only owners and admins of "{package.name}" can do that.')
    raise forbidden_publish(package.name)


def _check_rev(package: Package, rev: str | None) -> None:
    if rev is not None and not str(rev).startswith(f"{package.rev}-"):
        raise Conflict("Document update conflict: the package changed since you read it. Please retry.")


# -- publish -------------------------------------------------------------------------------

async def publish(db, session: AsyncSession, cmd: PublishCommand, ident: Identity,
                  origin: audit.Origin = audit.NO_ORIGIN) -> packument.Built:
    """Add one version. The tarball blob must already be stored (blob first, metadata second)."""
    scope, _ = names.split_name(cmd.name)
    if cmd.access == "restricted" and scope is None:
        raise BadRequest("Unscoped packages cannot be private; use a @scope/name.")
    package = await _lock_package(db, session, cmd.name)
    now = utcnow()
    created = package is None
    if created:
        org = await _check_new_package_scope(session, scope, ident, cmd.name)
        package = Package(name=cmd.name, scope=scope, access=cmd.access or "public", created=now, modified=now, rev=0)
        session.add(package)
        await session.flush()
        session.add(Maintainer(package_id=package.id, user_id=ident.user_id))
        if org is not None:
            await orgs.grant_new_package(session, org, package.id)
        await session.flush()
    else:
        got = await access.level(session, package, ident)
        if not access.at_least(got, "write"):
            if ident.readonly and got == "read":
                raise Forbidden("This token is read-only and cannot be used to make changes.")
            raise forbidden_publish(cmd.name)  # the same answer whether or not the caller may see it
        if cmd.access and cmd.access != package.access:
            await _require(session, package, ident, "admin")
            package.access = cmd.access
    key = version_key(cmd.version)
    taken = await session.execute(
        select(Version.id).where(Version.package_id == package.id, Version.version_key == key))
    if taken.first() is not None:
        raise republish_refused(cmd.version)
    count = await session.execute(select(func.count()).select_from(Version).where(Version.package_id == package.id))
    if count.scalar_one() >= MAX_VERSIONS:
        raise BadRequest(f"A package may have at most {MAX_VERSIONS} versions.")

    owners = await maintainers(session, package.id)
    publisher = {"name": ident.name, "email": ident.email or ""}
    readme, readme_filename = readme_of(cmd)
    version = Version(
        package_id=package.id, version=cmd.version, version_key=key,
        manifest=orjson.dumps(stored_manifest(cmd, publisher, owners)), readme=readme,
        readme_filename=readme_filename, integrity=cmd.integrity, shasum=cmd.shasum,
        blob_key=cmd.blob_key, size=len(cmd.data), publisher_id=ident.user_id, created=now,
    )
    session.add(version)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise republish_refused(cmd.version) from None

    tags = await dist_tags(session, package.id)
    for tag in cmd.tags:
        await _set_tag(session, package.id, tag, cmd.version, exists=tag in tags)
    if "latest" not in tags and "latest" not in cmd.tags:
        await _set_tag(session, package.id, "latest", cmd.version, exists=False)
    package.unpublished = None
    _advance(package)
    await audit.record(session, "package:publish", actor=ident, origin=origin, package=package.name,
                       org=scope, details={"version": cmd.version, "tags": cmd.tags})
    return await rebuild(session, package, "publish")


async def _set_tag(session: AsyncSession, package_id: int, tag: str, version: str, *, exists: bool) -> None:
    if exists:
        row = await session.get(DistTag, (package_id, tag))
        row.version = version
    else:
        session.add(DistTag(package_id=package_id, tag=tag, version=version))
    await session.flush()


# -- metadata updates ---------------------------------------------------------------------

async def update_document(db, session: AsyncSession, name: str, body: dict, ident: Identity,
                          rev: str | None, origin: audit.Origin = audit.NO_ORIGIN) -> packument.Built | None:
    """Apply a PUT of an edited packument: deprecations, removed versions, dist-tags, maintainers, stars.

    Only what differs from the stored document is applied, and only fields a client may change;
    everything else in the body is ignored (a deprecate cannot smuggle in new dependencies).
    """
    if body.get("_id", name) != name or body.get("name", name) != name:
        raise BadRequest("The package name in the URL does not match the name in the body.")
    package = await _lock_package(db, session, name)
    if package is None or package.unpublished is not None or not await can_read(session, package, ident):
        raise NotFound()
    _check_rev(package, rev if rev is not None else body.get("_rev"))
    live = {v.version: v for v in await live_versions(session, package.id)}
    kind = None  # what changed, for the replication feed; None: nothing

    versions = body.get("versions")
    if versions is not None:
        if not isinstance(versions, dict):
            raise BadRequest("versions must be an object.")
        unknown = [v for v in versions if v not in live]
        if unknown:
            raise BadRequest(f"Cannot add versions without a tarball: {', '.join(sorted(unknown)[:5])}. "
                             "Use npm publish.")
        deprecations = {}
        for number, manifest in versions.items():
            if isinstance(manifest, dict) and "deprecated" in manifest:
                message = manifest["deprecated"]
                if not isinstance(message, str) or len(message) > 1024:
                    raise BadRequest("A deprecation message must be a string of at most 1024 characters.")
                if (message or None) != live[number].deprecated:
                    deprecations[number] = message or None
        removed = [v for v in live if v not in versions] if rev is not None else []
        if deprecations:
            await _require(session, package, ident, "write")
        if removed:
            await _require(session, package, ident, "admin")
        for number, message in deprecations.items():
            live[number].deprecated = message
            kind = "deprecate"
        if deprecations:
            await audit.record(session, "package:deprecate", actor=ident, origin=origin, package=package.name,
                               details={"versions": sorted(deprecations)})
        if removed:
            await _unpublish_versions(session, package, [live[v] for v in removed], body.get("dist-tags"))
            await audit.record(session, "package:unpublish", actor=ident, origin=origin, package=package.name,
                               details={"versions": sorted(removed)})
            kind = "unpublish"

    owners = body.get("maintainers")
    if owners is not None and rev is not None and await _set_maintainers(session, package, owners, ident):
        kind = "owner"
        await audit.record(session, "package:owners", actor=ident, origin=origin, package=package.name,
                           details={"owners": sorted(o["name"] for o in owners)})

    users = body.get("users")
    if isinstance(users, dict) and await _star(session, package, ident, bool(users.get(ident.name))):
        kind = kind or "star"

    if kind is None:
        return None
    _advance(package)
    return await rebuild(session, package, kind)


async def _unpublish_versions(session: AsyncSession, package: Package, removed: list[Version], tags: object) -> None:
    now = utcnow()
    for version in removed:
        version.unpublished = now
    await session.flush()
    remaining = [v.version for v in await live_versions(session, package.id) if v.unpublished is None]
    if not remaining:
        raise BadRequest("Cannot unpublish the last version this way; unpublish the whole package instead.")
    current = await dist_tags(session, package.id)
    wanted = tags if isinstance(tags, dict) else current
    await session.execute(delete(DistTag).where(DistTag.package_id == package.id))
    await session.flush()
    for tag, target in wanted.items():
        if target in remaining and isinstance(tag, str):
            try:
                check_tag(tag)
            except BadPublish as e:
                raise BadRequest(str(e)) from None
            session.add(DistTag(package_id=package.id, tag=tag, version=target))
    if "latest" not in wanted or wanted.get("latest") not in remaining:
        session.add(DistTag(package_id=package.id, tag="latest", version=max_version(remaining)))
    await session.flush()


async def _set_maintainers(session: AsyncSession, package: Package, owners: object, ident: Identity) -> bool:
    if not isinstance(owners, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in owners):
        raise BadRequest("maintainers must be a list of {name, email} objects.")
    wanted = {o["name"] for o in owners}
    current = {m["name"] for m in await maintainers(session, package.id)}
    if wanted == current:
        return False
    await _require(session, package, ident, "admin")
    if not wanted:
        raise BadRequest("A package must keep at least one maintainer.")
    found = dict((await session.execute(select(User.name, User.id).where(User.name.in_(wanted)))).all())
    missing = wanted - set(found)
    if missing:
        raise NotFound(f"No such user: {sorted(missing)[0]}")
    await session.execute(delete(Maintainer).where(Maintainer.package_id == package.id))
    for user_id in found.values():
        session.add(Maintainer(package_id=package.id, user_id=user_id))
    await session.flush()
    return True


async def _star(session: AsyncSession, package: Package, ident: Identity, starred: bool) -> bool:
    current = await session.get(Star, (package.id, ident.user_id))
    if starred and current is None:
        session.add(Star(package_id=package.id, user_id=ident.user_id))
    elif not starred and current is not None:
        await session.delete(current)
    else:
        return False
    await session.flush()
    return True


async def unpublish_package(db, session: AsyncSession, name: str, ident: Identity, rev: str | None,
                            origin: audit.Origin = audit.NO_ORIGIN) -> None:
    """Unpublish every version. The row stays: the name and its version numbers remain taken."""
    package = await _lock_package(db, session, name)
    if package is None or package.unpublished is not None or not await can_read(session, package, ident):
        raise NotFound()
    await _require(session, package, ident, "admin")
    _check_rev(package, rev)
    now = utcnow()
    for version in await live_versions(session, package.id):
        version.unpublished = now
    await session.execute(delete(DistTag).where(DistTag.package_id == package.id))
    package.unpublished = now
    _advance(package)
    await audit.record(session, "package:unpublish", actor=ident, origin=origin, package=package.name,
                       details={"versions": "all"})
    await rebuild(session, package, "unpublish")


# -- dist-tags ------------------------------------------------------------------------------

async def add_dist_tag(db, session: AsyncSession, name: str, tag: str, version: object, ident: Identity) -> None:
    try:
        check_tag(tag)
    except BadPublish as e:
        raise BadRequest(str(e)) from None
    if not isinstance(version, str):
        raise BadRequest('The request body must be a JSON string naming a version, e.g. "1.0.0".')
    package = await _lock_package(db, session, name)
    if package is None or package.unpublished is not None or not await can_read(session, package, ident):
        raise NotFound()
    await _require(session, package, ident, "write")
    try:
        parse_version(version)
    except InvalidVersion as e:
        raise BadRequest(str(e)) from None
    if version not in {v.version for v in await live_versions(session, package.id)}:
        raise NotFound(f"Version {version} of {name} does not exist.")
    tags = await dist_tags(session, package.id)
    if tags.get(tag) == version:
        return
    await _set_tag(session, package.id, tag, version, exists=tag in tags)
    _advance(package)
    await rebuild(session, package, "dist-tag")


async def remove_dist_tag(db, session: AsyncSession, name: str, tag: str, ident: Identity) -> None:
    package = await _lock_package(db, session, name)
    if package is None or package.unpublished is not None or not await can_read(session, package, ident):
        raise NotFound()
    await _require(session, package, ident, "write")
    if tag == "latest":
        raise BadRequest('The "latest" tag cannot be removed; point it at another version instead.')
    row = await session.get(DistTag, (package.id, tag))
    if row is None:
        raise NotFound(f'"{tag}" is not a dist-tag on {name}.')
    await session.delete(row)
    await session.flush()  # the session does not autoflush: rebuild must not read the deleted tag back
    _advance(package)
    await rebuild(session, package, "dist-tag")


# -- stars -------------------------------------------------------------------------------------

async def starred_by(session: AsyncSession, username: str, ident: Identity | None) -> list[str]:
    rows = await session.execute(
        select(Package).join(Star, Star.package_id == Package.id).join(User, User.id == Star.user_id)
        .where(User.name == username, Package.unpublished.is_(None)).order_by(Package.name))
    return [p.name for p in rows.scalars() if await can_read(session, p, ident)]


# -- access (npm access …) ---------------------------------------------------------------------

async def _live_readable(session: AsyncSession, name: str, ident: Identity | None) -> Package:
    package = await get_package(session, name)
    if package is None or package.unpublished is not None or not await can_read(session, package, ident):
        raise NotFound()
    return package


async def require_admin(session: AsyncSession, name: str, ident: Identity) -> Package:
    package = await _live_readable(session, name, ident)
    await _require(session, package, ident, "admin")
    return package


async def visibility(session: AsyncSession, name: str, ident: Identity | None) -> dict:
    package = await _live_readable(session, name, ident)
    return {"public": package.access != "restricted"}


async def collaborators(session: AsyncSession, name: str, ident: Identity | None) -> dict[str, str]:
    """user → "write"/"read": maintainers, the org's owners and admins, and members of granted teams."""
    package = await _live_readable(session, name, ident)
    result = {m["name"]: "write" for m in await maintainers(session, package.id)}
    for user, permission in (await orgs.package_team_users(session, package.id)).items():
        result.setdefault(user, "write" if permission == "read-write" else "read")
    # The org that owns the package: by transfer (org_packages), else the one named by its scope.
    org = await orgs.package_org(session, package.id)
    if org is None and package.scope:
        org = await orgs.get_org(session, package.scope)
    if org is not None:
        for user, role in (await orgs.members(session, org.id)).items():
            if role in ("owner", "admin"):
                result[user] = "write"
    return dict(sorted(result.items()))


async def set_access(db, session: AsyncSession, name: str, body: dict, ident: Identity,
                     origin: audit.Origin = audit.NO_ORIGIN) -> None:
    """`npm access set status=…` and `npm access set mfa=…`."""
    package = await _lock_package(db, session, name)
    if package is None or package.unpublished is not None or not await can_read(session, package, ident):
        raise NotFound()
    await _require(session, package, ident, "admin")
    changed = False
    if "access" in body:
        wanted = body["access"]
        if wanted not in ("public", "restricted"):
            raise BadRequest('access must be "public" or "restricted".')
        if wanted == "restricted" and package.scope is None:
            raise BadRequest("Unscoped packages cannot be private.")
        changed |= package.access != wanted
        package.access = wanted
    for key in ("publish_requires_tfa", "automation_token_overrides_tfa"):
        if key in body:
            if not isinstance(body[key], bool):
                raise BadRequest(f"{key} must be true or false.")
            changed |= getattr(package, key) != body[key]
            setattr(package, key, body[key])
    if not ({"access", "publish_requires_tfa", "automation_token_overrides_tfa"} & set(body)):
        raise BadRequest("Nothing to change: send access, publish_requires_tfa or automation_token_overrides_tfa.")
    if changed:
        _advance(package)
        await audit.record(session, "package:access", actor=ident, origin=origin, package=package.name,
                           details={k: body[k] for k in ("access", "publish_requires_tfa",
                                                         "automation_token_overrides_tfa") if k in body})
        await rebuild(session, package, "access")


async def scope_packages(session: AsyncSession, scope: str, ident: Identity | None) -> dict[str, str]:
    rows = await session.execute(select(Package).where(Package.scope == scope, Package.unpublished.is_(None))
                                 .order_by(Package.name))
    result = {}
    for package in rows.scalars():
        got = await access.level(session, package, ident)
        if access.at_least(got, "read"):
            result[package.name] = "write" if access.at_least(got, "write") else "read"
    return result


async def user_packages(session: AsyncSession, username: str, ident: Identity | None) -> dict[str, str]:
    """Packages ``username`` can write (maintainer, own scope, team grants) or read (read-only grants),
    limited to those the caller may see."""
    user = (await session.execute(select(User).where(User.name == username))).scalar_one_or_none()
    if user is None:
        raise NotFound()
    target = Identity(user.id, user.name, user.email)
    candidates = set((await session.execute(
        select(Maintainer.package_id).where(Maintainer.user_id == user.id))).scalars())
    candidates |= set(await orgs.user_grants(session, user.id))
    candidates |= set((await session.execute(select(Package.id).where(Package.scope == user.name))).scalars())
    result = {}
    for package_id in candidates:
        package = await session.get(Package, package_id)
        if package is None or package.unpublished is not None or not await can_read(session, package, ident):
            continue
        got = await access.level(session, package, target)
        if access.at_least(got, "read"):
            result[package.name] = "write" if access.at_least(got, "write") else "read"
    return dict(sorted(result.items()))
