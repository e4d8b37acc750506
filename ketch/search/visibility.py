"""Which restricted packages a caller may find: the registry's own read rule, applied to a short list.

A search cannot ask ``registry.services.can_read`` about every package, so it first narrows the
restricted packages to those the caller has any tie to — a maintainer, their own ``@user`` scope, a
team grant, or an org they own or administer (a superset of who may read) — and then keeps those
``can_read`` allows. The rule itself (tokens limited to packages, read-only grants …) stays in
``ketch.registry.access``; this module never decides access on its own.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts.services import Identity
from ketch.orgs import services as orgs
from ketch.orgs.models import Org, OrgMember
from ketch.registry import services as registry
from ketch.registry.models import Maintainer, Package


async def readable_private_ids(session: AsyncSession, ident: Identity | None) -> list[int]:
    if ident is None:
        return []
    granted = list(await orgs.user_grants(session, ident.user_id))
    admin_scopes = select(Org.name).join(OrgMember, OrgMember.org_id == Org.id).where(
        OrgMember.user_id == ident.user_id, OrgMember.role.in_(("owner", "admin")))
    maintained = select(Maintainer.package_id).where(Maintainer.user_id == ident.user_id)
    ties = [Package.scope == ident.name, Package.scope.in_(admin_scopes), Package.id.in_(maintained)]
    if granted:
        ties.append(Package.id.in_(granted))
    candidates = (await session.execute(
        select(Package).where(Package.access == "restricted", Package.unpublished.is_(None), or_(*ties))
    )).scalars().all()
    return [p.id for p in candidates if await registry.can_read(session, p, ident)]
