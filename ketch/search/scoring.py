"""How a package ranks: pure functions, shared by both backends so they rank alike.

The formulas are documented in docs/decisions/0004-search-ranking.md; keep the two in step.
Every score is in 0..1. ``final`` is unbounded like npm's: an exact name match is 100000 + S.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

EXACT_BOOST = 100_000.0
DEFAULT_WEIGHTS = (0.65, 0.98, 0.5)  # quality, popularity, maintenance — what the npm CLI sends
NPM_INIT_TEST = "no test specified"
DOWNLOAD_UNIT = 100
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def name_key(name: str) -> str:
    """Lower-case letters and digits only, so case and punctuation never hide an exact match."""
    return _NOT_ALNUM.sub("", name.lower())


def short_name(name: str) -> str:
    return name.split("/", 1)[1] if name.startswith("@") and "/" in name else name


def name_words(name: str) -> str:
    return " ".join(w for w in _NOT_ALNUM.split(name.lower()) if w)


# -- per-package scores ------------------------------------------------------------------------

def quality(manifest: dict, readme: str | None, unstable: bool) -> float:
    """README (0.30, full at 1,500 characters), license 0.20, repository 0.15, a real test script 0.20,
    type declarations 0.10, description with keywords 0.05; × 0.85 below 1.0.0."""
    scripts = manifest.get("scripts") if isinstance(manifest.get("scripts"), dict) else {}
    test = scripts.get("test")
    types = manifest.get("types") or manifest.get("typings") or _exports_types(manifest.get("exports"))
    score = (0.30 * min(1.0, len((readme or "").strip()) / 1500)
             + 0.20 * bool(manifest.get("license"))
             + 0.15 * bool(manifest.get("repository"))
             + 0.20 * bool(isinstance(test, str) and test.strip() and NPM_INIT_TEST not in test)
             + 0.10 * bool(types)
             + 0.05 * bool(manifest.get("description") and manifest.get("keywords")))
    return round(score * (0.85 if unstable else 1.0), 4)


def _exports_types(exports: object) -> bool:
    if isinstance(exports, dict):
        return "types" in exports or any(_exports_types(v) for v in exports.values())
    return False


def maintenance(releases: list[datetime], now: datetime, *, deprecated: bool, finished: bool) -> float:
    """0.6 × recency (halves every year since the latest release) + 0.4 × cadence (releases in the
    last year, 6 or more = 1). A finished package (≥ 1.0.0, README, tests, ≥ 5 releases) keeps at
    least 0.5; a deprecated one scores 0."""
    if deprecated or not releases:
        return 0.0
    latest = max(releases)
    age_years = max(0.0, (now - latest).total_seconds()) / (365.25 * 86400)
    recency = 0.5 ** age_years
    recent = sum(1 for r in releases if now - r <= timedelta(days=365))
    score = 0.6 * recency + 0.4 * min(1.0, recent / 6)
    if finished and len(releases) >= 5:
        score = max(score, 0.5)
    return round(score, 4)


def popularity(weekly: int, dependents: int, max_weekly: int, max_dependents: int) -> float:
    """0.7 × downloads + 0.3 × dependents, each on a log scale relative to the registry's largest
    value. Downloads count in units of DOWNLOAD_UNIT a week: mirrors and bots alone fetch every
    package that often, so tens of downloads say almost nothing about use."""
    downloads = math.log1p(max(0, weekly) / DOWNLOAD_UNIT) / math.log1p(max(max_weekly, weekly, 1000) / DOWNLOAD_UNIT)
    deps = math.log1p(max(0, dependents)) / math.log1p(max(max_dependents, dependents, 10))
    return round(0.7 * min(1.0, downloads) + 0.3 * min(1.0, deps), 4)


def weights(q: float, p: float, m: float) -> tuple[float, float, float]:
    """npm's weights, "normalized into a unit-vector"; all zero falls back to the defaults."""
    total = q + p + m
    if total <= 0:
        q, p, m = DEFAULT_WEIGHTS
        total = q + p + m
    return q / total, p / total, m / total


# -- matching ----------------------------------------------------------------------------------

def trigrams(word: str) -> set[str]:
    padded = f"  {word} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def similarity(a: str, b: str) -> float:
    """pg_trgm's similarity on one word: shared trigrams / all trigrams."""
    ta, tb = trigrams(a), trigrams(b)
    return len(ta & tb) / len(ta | tb) if ta and tb else 0.0


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Damerau–Levenshtein (adjacent transpositions count 1), stopping early past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def typo_budget(length: int) -> int:
    return 0 if length < 4 else 1 if length < 8 else 2


def name_score(text: str, words: list[str], name: str) -> tuple[float, str]:
    """How well the query names this package: (score, kind) with kind exact | short | prefix |
    words | typo | none. ``text`` is the raw query text, ``words`` its terms."""
    q = name_key(text)
    if not q:
        return 0.0, "none"
    full, short = name_key(name), name_key(short_name(name))
    if text == name.lower() or q == full:
        return 1.0, "exact"
    if q == short:
        return 0.85, "short"
    if short.startswith(q) or full.startswith(q):
        return 0.55 + 0.3 * len(q) / max(len(short), 1), "prefix"
    tokens = name_words(name).split()
    if words and all(any(t == w or t.startswith(w) for t in tokens) for w in words):
        covered = sum(len(w) for w in words) / max(1, sum(len(t) for t in tokens))
        return 0.5 + 0.3 * min(1.0, covered), "words"
    budget = typo_budget(len(q))
    if budget:
        d = edit_distance(q, short, budget)
        if d <= budget:
            return 0.7 - 0.1 * d, "typo"
        sim = similarity(q, short)
        if sim >= 0.45:
            return 0.6 * sim, "typo"
    return 0.0, "none"


def final(name_match: tuple[float, str], text: float, s: float, *, deprecated: bool, boost_exact: bool) -> float:
    """An exact name match comes first (npms's 100000 + S); otherwise relevance R × (0.1 + S)^1.5,
    where R = the better of name and text match plus a third of the other. Deprecated × 0.25."""
    score, kind = name_match
    if kind == "exact" and boost_exact:
        return EXACT_BOOST + s
    relevance = max(score, text) + min(score, text) / 3
    result = relevance * (0.1 + s) ** 1.5
    return result * 0.25 if deprecated else result
