"""Search: qualifiers → filters, candidates from the backend, ranking, the npm response shape.

Candidates come from three places, all under the same filters: exact and prefix name matches
(indexed lookups), typo-alike names (the backend's trigram index, plus names sharing the first
letters for short words), and full-text matches (the backend's ranked top N). Ranking itself is
plain Python over those candidates (:mod:`ketch.search.scoring`), so both backends rank alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from sqlalchemy import ColumnElement, and_, case, false, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts.services import Identity
from ketch.search import scoring
from ketch.search.backend import SearchBackend, backend_for
from ketch.search.models import SearchDocument as Doc
from ketch.search.query import Query
from ketch.search.visibility import readable_private_ids

EXTRA_CANDIDATES = 150  # beyond from + size: room for name matches and scores to reorder
PREFIX_CANDIDATES = 30
TYPO_CANDIDATES = 50
TYPO_SCAN = 2000
PARTIAL_MATCH = 0.6  # relevance kept by a package that has only some of the words
COPY_FACTOR = 0.3


@dataclass
class Params:
    query: Query
    size: int = 20
    offset: int = 0
    weights: tuple[float, float, float] = scoring.weights(*scoring.DEFAULT_WEIGHTS)


def _has(column, value: str) -> ColumnElement:
    return column.contains("|" + value.lower() + "|", autoescape=True)


def filters(query: Query, private_ids: list[int]) -> list[ColumnElement]:
    out: list[ColumnElement] = [or_(Doc.access != "restricted", Doc.package_id.in_(private_ids))
                                if private_ids else Doc.access != "restricted"]
    if query.author:
        out.append(_has(Doc.author_key, query.author))
    if query.maintainer:
        out.append(_has(Doc.maintainer_key, query.maintainer))
    if query.scope:
        out.append(Doc.scope == query.scope)
    if query.keyword_groups:
        out.append(or_(*[and_(*[_has(Doc.keyword_key, k) for k in group]) for group in query.keyword_groups]))
    for keyword in query.keywords_excluded:
        out.append(not_(_has(Doc.keyword_key, keyword)))
    flags = {"deprecated": Doc.deprecated.is_not(None), "unstable": Doc.unstable.is_(True), "insecure": false()}
    for flag in query.is_flags:
        out.append(flags[flag])
    for flag in query.not_flags:
        out.append(not_(flags[flag]) if flag != "insecure" else true())  # no advisories yet: nothing is insecure
    return out


def weighted(weights: tuple[float, float, float]) -> ColumnElement:
    wq, wp, wm = weights
    return wq * Doc.quality + wp * Doc.popularity + wm * Doc.maintenance


async def search(session: AsyncSession, params: Params, ident: Identity | None, base_url: str) -> dict:
    query = params.query
    started = datetime.now(timezone.utc)
    if not query.words and not query.has_filter:
        return {"objects": [], "total": 0, "time": _iso(started)}
    where = filters(query, await readable_private_ids(session, ident))
    if query.words:
        ranked, total = await _ranked(session, backend_for(session), params, where)
        page = ranked[params.offset:params.offset + params.size]
    else:
        page, total = await _filtered(session, params, where)
    return {"objects": [_object(doc, score, base_url) for doc, score in page], "total": total, "time": _iso(started)}


async def _filtered(session, params: Params, where) -> tuple[list, int]:
    """Qualifiers only: every match, best scores first."""
    s = weighted(params.weights)
    s = case((Doc.deprecated.is_not(None), s * 0.25), else_=s)
    docs = (await session.execute(select(Doc).where(*where).order_by(s.desc(), Doc.name)
                                  .offset(params.offset).limit(params.size))).scalars().all()
    total = (await session.execute(select(func.count()).select_from(Doc).where(*where))).scalar_one()
    scored = [(d, _s(d, params.weights) * (0.25 if d.deprecated else 1)) for d in docs]
    return scored, total


async def _ranked(session, backend: SearchBackend, params: Params, where) -> tuple[list, int]:
    query = params.query
    terms = query.terms
    limit = params.offset + params.size + EXTRA_CANDIDATES
    rank_by = 0.1 + weighted(params.weights)
    texts, total = await backend.text_matches(session, terms, where, rank_by=rank_by, limit=limit)
    text_of = dict(texts)
    if total < limit and len(terms) > 1:
        # Few packages have every word: also rank those with some of them, below a full match.
        some, total = await backend.text_matches(session, terms, where, rank_by=rank_by, limit=limit, any_term=True)
        for package_id, relevance in some:
            text_of.setdefault(package_id, relevance * PARTIAL_MATCH)
    name_ids = await _name_candidates(session, backend, query, where)
    extra = [i for i in name_ids if i not in text_of]
    if extra and total > len(text_of):  # some of them may be counted in total already
        total -= (await backend.text_matches(session, terms, where, rank_by=rank_by, limit=len(extra) + 1,
                                             only_ids=extra))[1]
    ids = list(text_of) + extra
    docs = {d.package_id: d for d in (await session.execute(select(Doc).where(Doc.package_id.in_(ids)))).scalars()}
    scored = []
    for package_id, doc in docs.items():
        match = scoring.name_score(query.text, terms, doc.name)
        text = text_of.get(package_id, 0.0)
        if match[1] == "none" and text == 0.0:
            continue  # a trigram neighbour that is not close enough after all
        score = scoring.final(match, text, _s(doc, params.weights), deprecated=doc.deprecated is not None,
                              boost_exact=query.boost_exact)
        scored.append((doc, score))
    scored = _demote_copies(scored)
    kept = {doc.package_id for doc, _ in scored}
    named = sum(1 for i in extra if i in kept)
    scored.sort(key=lambda item: (-item[1], item[0].name))
    return scored, total + named


def _demote_copies(scored: list[tuple[Doc, float]]) -> list[tuple[Doc, float]]:
    """A package whose description copies that of a more downloaded result is a fork, clone or
    typo-squat far more often than not (npm/www#95): it keeps COPY_FACTOR of its score."""
    top: dict[str, int] = {}
    for doc, _ in scored:
        key = doc.description.strip().lower()
        if len(key) >= 12:
            top[key] = max(top.get(key, 0), doc.weekly_downloads)
    out = []
    for doc, score in scored:
        key = doc.description.strip().lower()
        copied = len(key) >= 12 and top[key] > max(10 * doc.weekly_downloads, 100) and score < scoring.EXACT_BOOST
        out.append((doc, score * COPY_FACTOR if copied else score))
    return out


async def _name_candidates(session, backend: SearchBackend, query: Query, where) -> list[int]:
    key = scoring.name_key(query.text)
    if not key:
        return []
    ids: list[int] = []
    exact = select(Doc.package_id).where(or_(Doc.name_key == key, Doc.short_key == key), *where).limit(50)
    ids += (await session.execute(exact)).scalars().all()
    prefix = (select(Doc.package_id).where(or_(backend.starts_with(Doc.name_key, key),
                                               backend.starts_with(Doc.short_key, key)), *where)
              .order_by(Doc.popularity.desc()).limit(PREFIX_CANDIDATES))
    ids += (await session.execute(prefix)).scalars().all()
    budget = scoring.typo_budget(len(key))
    if budget and len(query.words) == 1:
        ids += await backend.similar_names(session, key, where, TYPO_CANDIDATES)
        # Trigrams miss typos in short names ("axois" shares none with "axios"): scan names with the
        # same first letters and a similar length, and keep those within the edit budget.
        lead = key[:2] if len(key) < 6 else key[:3]
        rows = await session.execute(
            select(Doc.package_id, Doc.short_key).where(
                backend.starts_with(Doc.short_key, lead),
                func.length(Doc.short_key).between(len(key) - budget, len(key) + budget), *where)
            .limit(TYPO_SCAN))
        ids += [i for i, short in rows.all() if scoring.edit_distance(key, short, budget) <= budget]
    return list(dict.fromkeys(ids))


def _s(doc: Doc, weights: tuple[float, float, float]) -> float:
    wq, wp, wm = weights
    return wq * doc.quality + wp * doc.popularity + wm * doc.maintenance


def _object(doc: Doc, score: float, base_url: str) -> dict:
    package = orjson.loads(doc.document)
    package["links"] = {"npm": f"{base_url}/package/{doc.name}", **package.get("links", {})}
    flags: dict = {"insecure": 0}
    if doc.unstable:
        flags["unstable"] = True
    if doc.deprecated is not None:
        flags["deprecated"] = doc.deprecated
    score = round(score, 6)
    return {
        "package": package,
        "score": {"final": score, "detail": {"quality": doc.quality, "popularity": doc.popularity,
                                              "maintenance": doc.maintenance}},
        "searchScore": score,
        "flags": flags,
        "downloads": {"weekly": doc.weekly_downloads},
        "dependents": doc.dependents,
        "updated": _iso(doc.updated),
    }


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
