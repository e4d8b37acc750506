"""Lists read from the search index for the website: newest, most downloaded, counts, summaries.

Only public packages are listed by the first three; :func:`summaries` returns rows for names the
caller has already checked the viewer may see (access is decided by the registry, never here).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.search.models import SearchDocument as Doc


async def recently_updated(session: AsyncSession, limit: int = 10) -> list[Doc]:
    rows = await session.execute(select(Doc).where(Doc.access != "restricted").order_by(Doc.updated.desc())
                                 .limit(limit))
    return list(rows.scalars())


async def most_downloaded(session: AsyncSession, limit: int = 10) -> list[Doc]:
    rows = await session.execute(select(Doc).where(Doc.access != "restricted")
                                 .order_by(Doc.weekly_downloads.desc(), Doc.popularity.desc(), Doc.name).limit(limit))
    return list(rows.scalars())


async def public_package_count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(Doc).where(Doc.access != "restricted"))).scalar_one()


async def summaries(session: AsyncSession, names: list[str]) -> dict[str, Doc]:
    """Index rows (description, latest version, dates) of ``names``, which the viewer may see."""
    if not names:
        return {}
    rows = await session.execute(select(Doc).where(Doc.name.in_(names)))
    return {d.name: d for d in rows.scalars()}
