"""The index row of one package, as a pure function of its rows (no I/O), so that publishes,
``ketch reindex``, the relevance corpus and the benchmark all index exactly alike."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import orjson

from ketch.search import scoring

README_CHARS = 4000  # enough for the words that matter; keeps the full-text index small
_EMAIL = re.compile(r"<([^>]*)>")


@dataclass
class Facts:
    """What the index needs to know about a live package."""
    name: str
    access: str
    latest: str  # version number the "latest" tag points at
    manifest: dict  # the stored manifest of that version
    readme: str | None
    deprecated: str | None  # of the latest version
    releases: list[datetime]  # publish times of the live versions
    maintainers: list[dict]  # [{"name", "email"}]
    modified: datetime


def unstable(version: str) -> bool:
    return version.startswith("0.") or "-" in version.split("+", 1)[0]


def _keywords(manifest: dict) -> list[str]:
    raw = manifest.get("keywords")
    if isinstance(raw, str):
        raw = re.split(r"[,\s]+", raw)
    if not isinstance(raw, list):
        return []
    return [k.strip() for k in raw if isinstance(k, str) and k.strip()][:50]


def _author(manifest: dict) -> dict | None:
    author = manifest.get("author")
    if isinstance(author, str) and author.strip():
        email = _EMAIL.search(author)
        name = _EMAIL.sub("", author).split("(")[0].strip()
        return {"name": name, **({"email": email.group(1).strip()} if email else {})}
    if isinstance(author, dict) and isinstance(author.get("name"), str):
        return {k: v for k, v in author.items() if k in ("name", "email", "url") and isinstance(v, str)}
    return None


def _url(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("url")
    return value if isinstance(value, str) and value else None


def _key(values) -> str:
    return "|" + "|".join(sorted({v.lower() for v in values if v})) + "|"


def row(facts: Facts, now: datetime, *, weekly: int, dependents: int, max_weekly: int, max_dependents: int) -> dict:
    """Column values for ``SearchDocument`` (plus the texts the full-text side indexes)."""
    m = facts.manifest
    name = facts.name
    scope = name[1:].split("/", 1)[0] if name.startswith("@") else None
    keywords = _keywords(m)
    description = m.get("description") if isinstance(m.get("description"), str) else ""
    readme = (facts.readme or "")[:README_CHARS]
    author = _author(m)
    publisher = m.get("_npmUser") if isinstance(m.get("_npmUser"), dict) else None
    is_unstable = unstable(facts.latest)
    scripts = m.get("scripts") if isinstance(m.get("scripts"), dict) else {}
    has_tests = isinstance(scripts.get("test"), str) and scoring.NPM_INIT_TEST not in scripts["test"]
    finished = not is_unstable and bool(readme.strip()) and has_tests
    date = max(facts.releases) if facts.releases else facts.modified
    package = {
        "name": name, "scope": scope or "unscoped", "version": facts.latest, "description": description,
        "keywords": keywords, "date": _iso(date),
        "links": {k: v for k, v in (("homepage", _url(m.get("homepage"))), ("repository", _url(m.get("repository"))),
                                    ("bugs", _url(m.get("bugs")))) if v},
        "author": author,
        "publisher": {"username": publisher.get("name", ""), "email": publisher.get("email", "")} if publisher else None,
        "maintainers": [{"username": x["name"], "email": x.get("email") or ""} for x in facts.maintainers],
        "license": m.get("license") if isinstance(m.get("license"), str) else None,
    }
    package = {k: v for k, v in package.items() if v is not None}
    releases = sorted(facts.releases)[-100:]
    return {
        "name": name, "name_key": scoring.name_key(name), "short_key": scoring.name_key(scoring.short_name(name)),
        "name_words": scoring.name_words(name), "scope": scope, "access": facts.access, "version": facts.latest,
        "description": description[:2000], "keywords": " ".join(keywords), "readme": readme,
        "keyword_key": _key(keywords),
        # author: matches the package.json author's name or email, or the publishing user (npms does too)
        "author_key": _key([*((author.get("name", ""), author.get("email", "")) if author else ()),
                            publisher.get("name", "") if publisher else ""]),
        "maintainer_key": _key(x["name"] for x in facts.maintainers),
        "deprecated": facts.deprecated, "unstable": is_unstable, "date": date, "updated": facts.modified,
        "quality": scoring.quality(m, readme, is_unstable),
        "maintenance": scoring.maintenance(facts.releases, now, deprecated=bool(facts.deprecated), finished=finished),
        "popularity": scoring.popularity(weekly, dependents, max_weekly, max_dependents),
        "weekly_downloads": weekly, "dependents": dependents,
        "document": orjson.dumps(package).decode(),
        "releases": orjson.dumps({"dates": [_iso(r) for r in releases], "finished": finished}).decode(),
    }


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
