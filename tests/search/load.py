"""Load a generated corpus straight into a migrated database: package rows, a week of daily
downloads and the dependents table (the stats domain's own tables), then the search index through
its own row builder (``ketch.search.document.row``) and bulk save, and finally ``index.refresh``,
which reads popularity back through ``ketch.stats.services`` as the running registry does.

Publishing thousands of packages over HTTP would take minutes; what search sees is the same.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from ketch.db import Database
from ketch.registry.models import Package
from ketch.search import document, index
from ketch.stats import periods
from ketch.stats.models import Dependent, PackageDownloads
from tests.search.corpus import NOW, Pkg

CHUNK = 1000


def manifest(pkg: Pkg) -> dict:
    m = {"name": pkg.name, "version": pkg.version, "description": pkg.description, "keywords": pkg.keywords,
         "license": "MIT", "author": f"{pkg.author} <{pkg.author}@example.test>",
         "_npmUser": {"name": pkg.author, "email": f"{pkg.author}@example.test"},
         "dependencies": {d: "^1.0.0" for d in pkg.deps}}
    if pkg.tested:
        m["scripts"] = {"test": "node --test"}
        m["repository"] = {"type": "git", "url": f"git+https://example.test/{pkg.name}.git"}
    if pkg.typed:
        m["types"] = "index.d.ts"
    return m


async def load(db: Database, packages: list[Pkg]) -> None:
    ids = {p.name: i + 1 for i, p in enumerate(packages)}
    days = periods.last_days(7, periods.today())
    dependents: dict[str, int] = {}
    for pkg in packages:
        for dep in pkg.deps:
            dependents[dep] = dependents.get(dep, 0) + 1
    top_weekly = max(p.weekly for p in packages)
    top_dependents = max(dependents.values(), default=0)
    for start in range(0, len(packages), CHUNK):
        chunk = packages[start:start + CHUNK]
        async with db.write() as session:
            await session.execute(insert(Package), [
                {"id": ids[p.name], "name": p.name, "scope": p.name[1:].split("/")[0] if p.name.startswith("@") else None,
                 "access": "public", "created": min(p.releases), "modified": max(p.releases), "rev": 1}
                for p in chunk])
            downloads = []
            for p in chunk:
                for n in range(7):
                    count = p.weekly // 7 + (1 if n < p.weekly % 7 else 0)
                    if count:
                        downloads.append({"package": p.name, "day": days.start + timedelta(days=n), "count": count})
            if downloads:
                await session.execute(insert(PackageDownloads), downloads)
            edges = [{"dependency": d, "dependent_id": ids[p.name], "kind": "dependencies", "dependent": p.name,
                      "private": False} for p in chunk for d in p.deps]
            if edges:
                await session.execute(insert(Dependent), edges)
            rows = []
            for p in chunk:
                facts = document.Facts(
                    name=p.name, access="public", latest=p.version, manifest=manifest(p), readme=p.readme,
                    deprecated=p.deprecated, releases=p.releases,
                    maintainers=[{"name": m, "email": f"{m}@example.test"} for m in p.maintainers],
                    modified=max(p.releases))
                rows.append({"package_id": ids[p.name], **document.row(
                    facts, NOW, weekly=p.weekly, dependents=dependents.get(p.name, 0),
                    max_weekly=top_weekly, max_dependents=top_dependents)})
            await index.save(session, rows)
    await index.refresh(db)
