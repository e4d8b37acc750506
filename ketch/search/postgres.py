"""PostgreSQL backend: a generated ``tsv`` column (GIN) for words, pg_trgm (GIN) for names.

Each term matches as itself (``simple``) or stemmed (``english``), the last one also as a prefix.
Relevance is ``ts_rank`` with weights A name 1.0, B keywords 0.4, C description 0.2, D README 0.1,
squashed into 0..1 as r / (r + 0.1), which puts it on the scale of the SQLite backend.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.search.models import SearchDocument

SQUASH = 0.1
SIMILARITY_THRESHOLD = 0.25


def _tsquery(terms: list[str], any_term: bool) -> tuple[str, dict]:
    parts, params = [], {}
    for i, term in enumerate(terms):
        params[f"t{i}"] = term.replace("'", "").replace("\\", "") + (":*" if i == len(terms) - 1 else "")
        parts.append(f"(to_tsquery('simple', :t{i}) || to_tsquery('english', :t{i}))")
    return "(" + (" || " if any_term else " && ").join(parts) + ")", params


class PostgresBackend:
    async def save(self, session: AsyncSession, rows: list[dict]) -> None:
        return None  # the tsv column is generated from the row itself

    async def remove(self, session: AsyncSession, package_ids: list[int]) -> None:
        return None

    async def text_matches(self, session, terms, filters, *, rank_by, limit, any_term=False, only_ids=None):
        if not terms:
            return [], 0
        expression, params = _tsquery(terms, any_term)
        query = text(expression).bindparams(**params)
        matches = literal_column("tsv").op("@@")(query)
        rank = func.ts_rank(literal_column("tsv"), query)
        relevance = rank / (rank + SQUASH)
        where = [matches, *filters]
        if only_ids is not None:
            where.append(SearchDocument.package_id.in_(only_ids))
        rows = (await session.execute(
            select(SearchDocument.package_id, relevance).where(*where)
            .order_by((relevance * rank_by).desc()).limit(limit))).all()
        if len(rows) < limit:
            return [(i, float(r)) for i, r in rows], len(rows)
        total = (await session.execute(select(func.count()).select_from(SearchDocument).where(*where))).scalar_one()
        return [(i, float(r)) for i, r in rows], total

    async def similar_names(self, session, key, filters, limit):
        await session.execute(text(f"SET LOCAL pg_trgm.similarity_threshold = {SIMILARITY_THRESHOLD}"))
        rows = await session.execute(
            select(SearchDocument.package_id).where(SearchDocument.short_key.op("%")(key), *filters)
            .order_by(func.similarity(SearchDocument.short_key, key).desc()).limit(limit))
        return [i for (i,) in rows.all()]

    def starts_with(self, column_: ColumnElement, prefix: str) -> ColumnElement:
        return column_.like(prefix + "%")  # text_pattern_ops indexes serve this in any collation
