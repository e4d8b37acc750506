"""One interface over the two full-text engines; the dialect of the session picks the backend.

Filters (qualifiers, who may read what) are SQLAlchemy conditions on ``SearchDocument`` that every
method applies, so a backend only decides how words and names are matched, never who sees what.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession


class SearchBackend(Protocol):
    async def save(self, session: AsyncSession, rows: list[dict]) -> None:
        """Index the texts of ``rows`` (``SearchDocument`` values with ``package_id``), replacing old ones."""

    async def remove(self, session: AsyncSession, package_ids: list[int]) -> None: ...

    async def text_matches(self, session: AsyncSession, terms: list[str], filters: list[ColumnElement], *,
                           rank_by: ColumnElement, limit: int, any_term: bool = False,
                           only_ids: list[int] | None = None) -> tuple[list[tuple[int, float]], int]:
        """Packages whose words match ``terms`` (all of them, or any with ``any_term``; the last term
        also as a prefix): up to ``limit`` (package id, text relevance 0..1) ordered by relevance ×
        ``rank_by``, and how many match in all."""

    async def similar_names(self, session: AsyncSession, key: str, filters: list[ColumnElement],
                            limit: int) -> list[int]:
        """Packages whose unscoped name key looks like ``key`` (shared trigrams), most alike first."""

    def starts_with(self, column: ColumnElement, prefix: str) -> ColumnElement:
        """``column`` begins with ``prefix`` (letters and digits only), using its index."""


def backend_for(session: AsyncSession) -> SearchBackend:
    if session.bind.dialect.name == "sqlite":
        from ketch.search.sqlite import SqliteBackend
        return SqliteBackend()
    from ketch.search.postgres import PostgresBackend
    return PostgresBackend()
