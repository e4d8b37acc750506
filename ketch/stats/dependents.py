"""Which packages depend on which: one row per (dependency, dependent package, kind) for the
*latest* version of every live package, kept current inside each package write transaction.

:func:`update` is called by ``ketch.registry.events.package_changed``; :func:`dependents_of` and
``ketch.stats.services.dependent_counts`` are what the website and search read.
"""

from __future__ import annotations

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts.services import Identity
from ketch.registry import services as registry
from ketch.registry.models import DistTag, Package, Version
from ketch.stats.models import Dependent

KINDS = ("dependencies", "peerDependencies", "optionalDependencies")
MAX_NAME = 214


def edges(manifest: dict) -> list[tuple[str, str]]:
    """(dependency name, kind) pairs a version manifest declares; malformed entries are skipped."""
    found = []
    for kind in KINDS:
        deps = manifest.get(kind)
        if not isinstance(deps, dict):
            continue
        for name in deps:
            if isinstance(name, str) and 0 < len(name) <= MAX_NAME:
                found.append((name, kind))
    return found


async def latest_manifest(session: AsyncSession, package_id: int) -> dict | None:
    row = (await session.execute(
        select(Version.manifest)
        .join(DistTag, (DistTag.package_id == Version.package_id) & (DistTag.version == Version.version))
        .where(DistTag.package_id == package_id, DistTag.tag == "latest", Version.unpublished.is_(None))
    )).first()
    if row is None:
        return None
    try:
        manifest = orjson.loads(row[0])
    except orjson.JSONDecodeError:
        return None
    return manifest if isinstance(manifest, dict) else None


async def update(session: AsyncSession, package: Package, rows=None) -> None:
    """Make the rows of ``package`` match its latest version (none when it is unpublished);
    ``rows`` (registry PackageRows) when the caller has loaded them already."""
    await session.flush()  # the caller's pending version and dist-tag rows must be visible below
    await session.execute(delete(Dependent).where(Dependent.dependent_id == package.id))
    if package.unpublished is not None:
        return
    if rows is not None:
        latest = rows.dist_tags.get("latest")
        manifest = next((v.manifest for v in rows.versions if v.version == latest), None)
    else:
        manifest = await latest_manifest(session, package.id)
    if not manifest:
        return
    private = package.access == "restricted"
    rows = [{"dependency": name, "dependent_id": package.id, "kind": kind, "dependent": package.name,
             "private": private} for name, kind in edges(manifest)]
    if rows:
        await session.execute(insert(Dependent), rows)


async def dependents_of(session: AsyncSession, name: str, ident: Identity | None) -> list[str]:
    """Names of the packages whose latest version depends on ``name`` (any kind), sorted; private
    dependents only when ``ident`` may read them."""
    rows = await session.execute(
        select(Dependent.dependent, Dependent.private).where(Dependent.dependency == name).distinct())
    found = set()
    for dependent, private in rows.all():
        if private:
            package = await registry.get_package(session, dependent)
            if package is None or not await registry.can_read(session, package, ident):
                continue
        found.add(dependent)
    return sorted(found)
