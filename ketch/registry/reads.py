"""Read-only registry queries for the website and the other domains' pages (the registry's tables
are read here, not in :mod:`ketch.web`). Access rules are never decided here: callers filter
private packages with :func:`ketch.registry.services.can_read`.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.registry.models import Maintainer, Package, Version


async def package_id(session: AsyncSession, name: str) -> int | None:
    return (await session.execute(select(Package.id).where(Package.name == name))).scalar_one_or_none()


async def version_readme(session: AsyncSession, package_id: int, version: str) -> tuple[str | None, str | None]:
    row = (await session.execute(
        select(Version.readme, Version.readme_filename)
        .where(Version.package_id == package_id, Version.version == version, Version.unpublished.is_(None)))).first()
    return (row[0], row[1]) if row else (None, None)


async def sole_maintainer_of(session: AsyncSession, user_id: int) -> list[str]:
    """The live packages whose only maintainer the user is."""
    mine = select(Maintainer.package_id).where(Maintainer.user_id == user_id)
    rows = await session.execute(
        select(Package.name).join(Maintainer, Maintainer.package_id == Package.id)
        .where(Package.id.in_(mine), Package.unpublished.is_(None)).group_by(Package.id, Package.name)
        .having(func.count() == 1).order_by(Package.name))
    return list(rows.scalars())
