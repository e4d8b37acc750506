"""SQLite backend: FTS5 with the porter stemmer for words, an FTS5 trigram table for names.

``search_fts`` keeps its own copy of the texts (rowid = package id; SQLite 3.40 has no contentless
delete), ``search_names`` the unscoped name key. Relevance is FTS5's bm25 with column weights
name 10, keywords 4, description 3, README 1, squashed into 0..1 as s / (s + 6).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, column, func, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.search.models import SearchDocument

FTS = table("search_fts", column("rowid"))
NAMES = table("search_names", column("rowid"))
BM25 = "bm25(search_fts, 10.0, 4.0, 3.0, 1.0)"
SQUASH = 6.0


def _phrase(term: str) -> str:
    return '"' + term.replace('"', "") + '"'


def match_expression(terms: list[str], any_term: bool = False) -> str:
    parts = [_phrase(t) for t in terms]
    parts[-1] += "*"
    return (" OR " if any_term else " AND ").join(parts)


class SqliteBackend:
    async def save(self, session: AsyncSession, rows: list[dict]) -> None:
        if not rows:
            return
        await self.remove(session, [r["package_id"] for r in rows])
        await session.execute(
            text("INSERT INTO search_fts(rowid, name, keywords, description, readme) "
                 "VALUES (:package_id, :name_words, :keywords, :description, :readme)"),
            [{k: r[k] for k in ("package_id", "name_words", "keywords", "description", "readme")} for r in rows])
        await session.execute(text("INSERT INTO search_names(rowid, name) VALUES (:package_id, :short_key)"),
                              [{"package_id": r["package_id"], "short_key": r["short_key"]} for r in rows])

    async def remove(self, session: AsyncSession, package_ids: list[int]) -> None:
        for start in range(0, len(package_ids), 500):
            chunk = package_ids[start:start + 500]
            await session.execute(FTS.delete().where(FTS.c.rowid.in_(chunk)))
            await session.execute(NAMES.delete().where(NAMES.c.rowid.in_(chunk)))

    async def text_matches(self, session, terms, filters, *, rank_by, limit, any_term=False, only_ids=None):
        if not terms:
            return [], 0
        where = [text("search_fts MATCH :q").bindparams(q=match_expression(terms, any_term)), *filters]
        if only_ids is not None:
            where.append(FTS.c.rowid.in_(only_ids))
        joined = FTS.join(SearchDocument, SearchDocument.package_id == FTS.c.rowid)
        score = -literal_column(BM25)
        relevance = score / (score + SQUASH)
        rows = (await session.execute(
            select(SearchDocument.package_id, relevance).select_from(joined).where(*where)
            .order_by((relevance * rank_by).desc()).limit(limit))).all()
        if len(rows) < limit:
            return [(i, float(r)) for i, r in rows], len(rows)
        total = (await session.execute(select(func.count()).select_from(joined).where(*where))).scalar_one()
        return [(i, float(r)) for i, r in rows], total

    async def similar_names(self, session, key, filters, limit):
        grams = sorted({key[i:i + 3] for i in range(len(key) - 2)})
        if not grams:
            return []
        joined = NAMES.join(SearchDocument, SearchDocument.package_id == NAMES.c.rowid)
        q = " OR ".join(_phrase(g) for g in grams)
        rows = await session.execute(
            select(SearchDocument.package_id).select_from(joined)
            .where(text("search_names MATCH :q").bindparams(q=q), *filters)
            .order_by(literal_column("bm25(search_names)")).limit(limit))
        return [i for (i,) in rows.all()]

    def starts_with(self, column_: ColumnElement, prefix: str) -> ColumnElement:
        # A range, not LIKE: SQLite's LIKE is case-insensitive and so cannot use the index.
        return and_(column_ >= prefix, column_ < prefix + "\U0010ffff")
