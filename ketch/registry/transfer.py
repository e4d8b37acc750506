"""Transferring a package to an organization, and the packages an organization owns.

An org owns the packages of its scope and the packages transferred to it (an unscoped package, or
one in a user's scope). After a transfer the org's owners become the package's maintainers, the
org's owners and admins administer it (:mod:`ketch.registry.access`), its teams can be granted it,
and its developers team may read and write it, as for a package published into the org's scope.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts import audit
from ketch.accounts.services import Identity
from ketch.http.errors import BadRequest
from ketch.orgs import services as orgs
from ketch.orgs.models import Org
from ketch.registry import access, services
from ketch.registry.models import Maintainer, Package


async def transfer_to_org(db, session: AsyncSession, name: str, org_name: str, ident: Identity, *,
                          origin: audit.Origin = audit.NO_ORIGIN) -> Org:
    """Give package ``name`` to org ``org_name``. The caller must administer the package and be an
    owner or admin of the org."""
    package = await services.require_admin(session, name, ident)
    org, _ = await orgs.managed_org(session, org_name, ident)
    current = await orgs.package_org(session, package.id)
    if (current is not None and current.id == org.id) or package.scope == org.name:
        raise BadRequest(f"{name} already belongs to @{org.name}.")
    if package.scope and await orgs.get_org(session, package.scope) is not None:
        raise BadRequest(f"{name} is in the scope of the @{package.scope} organization and stays with it. "
                         "Only unscoped packages and packages in a user's scope can be transferred.")
    owners = [n for n, role in (await orgs.members(session, org.id)).items() if role == "owner"]
    body = {"_id": name, "name": name, "maintainers": [{"name": n} for n in owners]}
    await services.update_document(db, session, name, body, ident, f"{package.rev}-", origin)
    await orgs.adopt_package(session, org, package.id)
    await audit.record(session, "package:transfer", actor=ident, origin=origin, package=name, org=org.name,
                       details={"from": current.name if current else None, "owners": owners})
    await services.rebuild(session, package)
    return org


async def org_packages(session: AsyncSession, org: Org, ident: Identity | None) -> dict[str, str]:
    """name → "write"/"read" for the live packages ``org`` owns that the caller may read."""
    result = await services.scope_packages(session, org.name, ident)
    ids = await orgs.transferred_package_ids(session, org.id)
    if ids:
        rows = await session.execute(select(Package).where(Package.id.in_(ids), Package.unpublished.is_(None)))
        for package in rows.scalars():
            got = await access.level(session, package, ident)
            if access.at_least(got, "read"):
                result[package.name] = "write" if access.at_least(got, "write") else "read"
    return dict(sorted(result.items()))


async def leave_packages(session: AsyncSession, user_id: int) -> None:
    """Take a user who is leaving Ketch off every package they maintain with others (the caller has
    checked there is no package they maintain alone), rebuilding each package's documents."""
    ids = list((await session.execute(select(Maintainer.package_id).where(Maintainer.user_id == user_id))).scalars())
    await session.execute(delete(Maintainer).where(Maintainer.user_id == user_id))
    await session.flush()
    for package in (await session.execute(select(Package).where(Package.id.in_(ids)))).scalars():
        await services.rebuild(session, package)
