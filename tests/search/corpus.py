"""A deterministic, realistic package corpus for the relevance test and the benchmark.

Well-known packages (``corpus_data.ANCHORS``) sit among generated ones of the kinds a real registry
has: plugins named after the big packages, generic word-pair names, scoped packages, typo-squats
and clones that copy a famous description but have no users, and keyword-stuffing spam. Weekly
downloads follow a power law; dependencies attach preferentially to popular packages, so
dependents follow one too. The same seed always gives the same corpus.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from tests.search import corpus_data as data

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


@dataclass
class Pkg:
    name: str
    description: str
    keywords: list[str]
    weekly: int
    author: str
    readme: str = ""
    maintainers: list[str] = field(default_factory=list)
    releases: list[datetime] = field(default_factory=list)
    version: str = "1.0.0"
    deprecated: str | None = None
    deps: list[str] = field(default_factory=list)
    tested: bool = True
    typed: bool = False


def _readme(rng: random.Random, pkg: Pkg, long: bool) -> str:
    body = [f"# {pkg.name}", "", pkg.description, ""]
    body += rng.sample(data.SENTENCES, 3 if long else 1)
    if long:
        body += ["", "## Usage", "", f"```js\nconst x = require('{pkg.name}')\n```"]
    return "\n".join(body)


def _releases(rng: random.Random, count: int, newest_days_ago: int) -> list[datetime]:
    latest = NOW - timedelta(days=newest_days_ago, hours=rng.randint(0, 23))
    dates, when = [], latest
    for _ in range(count):
        dates.append(when)
        when -= timedelta(days=rng.randint(3, 90))
    return sorted(dates)


def _anchor(rng: random.Random, name, description, keywords, weekly, author) -> Pkg:
    pkg = Pkg(name, description, keywords.split(), weekly, author, maintainers=[author], typed=rng.random() < 0.5)
    pkg.releases = _releases(rng, rng.randint(20, 60), rng.randint(1, 150))
    pkg.version = f"{rng.randint(1, 18)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    pkg.readme = _readme(rng, pkg, True)
    return pkg


def _noise_name(rng: random.Random, anchors: list[str]) -> tuple[str, str]:
    """(name, kind) of one generated package."""
    roll = rng.random()
    adj, noun, noun2 = rng.choice(data.ADJECTIVES), rng.choice(data.NOUNS), rng.choice(data.NOUNS)
    if roll < 0.30:
        return rng.choice([f"{adj}-{noun}", f"{noun}-{noun2}", f"{rng.choice(data.VERBS)}-{noun}"]), "plain"
    if roll < 0.55:
        base = rng.choice(data.TOPICS + [a for a in anchors if "/" not in a][:25])
        return rng.choice([f"{base}-{noun}", f"{base}-{adj}-{noun}", f"{noun}-{base}"]), "plugin"
    if roll < 0.72:
        return f"@{rng.choice(data.SCOPES)}/{rng.choice([noun, f'{adj}-{noun}', f'{noun}-{noun2}'])}", "scoped"
    if roll < 0.77:
        return "", "clone"
    if roll < 0.80:
        return "", "spam"
    return rng.choice([f"{noun}{noun2}", f"{noun}.{rng.choice(data.VERBS)}", f"{adj}{noun}js"]), "plain"


def _clone_name(rng: random.Random, base: str) -> str:
    short = base.split("/")[-1]
    return rng.choice([short + short[-1], f"{short}-fork", f"{short}-next", f"{short}2", f"{short}-clone",
                       f"my-{short}", f"{short}-lite"])


def _noise_description(rng: random.Random, name: str) -> str:
    adj, noun = rng.choice(data.ADJECTIVES), rng.choice(data.NOUNS)
    topic, verb = rng.choice(data.TOPICS), rng.choice(data.VERBS)
    return rng.choice([
        f"A {adj} {noun} for {topic}", f"{verb.capitalize()} {noun} data in {topic} apps",
        f"{adj.capitalize()} {noun} library with a {adj} API", f"Utilities to {verb} {noun} objects",
        f"A {adj} web framework for {topic} projects", f"A {adj} http client with retries",
        f"{adj.capitalize()} date formatting helpers", f"{adj.capitalize()} schema validation for {topic}",
        f"{noun.capitalize()} plugin for {topic}", f"Tiny {noun} {verb}er",
    ])


def generate(count: int = 5000, seed: int = 5) -> list[Pkg]:
    rng = random.Random(seed)
    packages = [_anchor(rng, *a) for a in data.ANCHORS]
    for name, (description, keywords, weekly, author, message) in data.DEPRECATED.items():
        pkg = _anchor(rng, name, description, keywords, weekly, author)
        pkg.deprecated, pkg.releases = message, _releases(rng, 40, 1500)
        packages.append(pkg)
    for name, (description, keywords, weekly, author) in data.UNSTABLE.items():
        pkg = _anchor(rng, name, description, keywords, weekly, author)
        pkg.version = "0.9.1"
        packages.append(pkg)
    anchors = [p.name for p in packages]
    taken = set(anchors)
    while len(packages) < count:
        name, kind = _noise_name(rng, anchors)
        if kind in ("clone", "spam"):
            base = packages[rng.randrange(len(data.ANCHORS))]
            name = _clone_name(rng, base.name) if kind == "clone" else f"npmdoc-{base.name.split('/')[-1]}"
        if not name or name in taken:
            continue
        taken.add(name)
        author = rng.choice(data.PEOPLE)
        weekly = int(min(200_000, 2 * (1 / (1 - rng.random())) ** 1.5))
        pkg = Pkg(name, _noise_description(rng, name), rng.sample(data.NOUNS + data.TOPICS, rng.randint(0, 6)),
                  weekly, author, maintainers=[author] + rng.sample(data.PEOPLE, rng.randint(0, 2)),
                  tested=rng.random() < 0.4, typed=rng.random() < 0.2)
        if kind == "clone":
            pkg.description, pkg.keywords, pkg.weekly = base.description, list(base.keywords), rng.randint(0, 20)
        elif kind == "spam":
            pkg.description = f"Documentation for {base.name}: " + " ".join(rng.sample(anchors, 12))
            pkg.keywords, pkg.weekly = rng.sample(anchors, 20), rng.randint(0, 5)
        pkg.releases = _releases(rng, 1 + int(rng.expovariate(0.25)), rng.randint(0, 2000))
        unstable = rng.random() < 0.3
        pkg.version = f"{0 if unstable else rng.randint(1, 6)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"
        if rng.random() < 0.02:
            pkg.deprecated = "no longer maintained"
        pkg.readme = _readme(rng, pkg, rng.random() < 0.5) if rng.random() < 0.8 else ""
        packages.append(pkg)
    _attach_dependencies(rng, packages)
    return packages


def _attach_dependencies(rng: random.Random, packages: list[Pkg]) -> None:
    """Preferential attachment: a dependency is picked with probability ∝ its weekly downloads."""
    names = [p.name for p in packages]
    cumulative = list(itertools.accumulate(p.weekly + 1 for p in packages))
    for pkg in packages:
        wanted = rng.randint(0, 5)
        pkg.deps = sorted({d for d in rng.choices(names, cum_weights=cumulative, k=wanted) if d != pkg.name})
