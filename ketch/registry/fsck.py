"""`ketch fsck`: check the registry's invariants against the database and the blob store.

- every live version's tarball blob exists and hashes to the version's integrity;
- every stored packument equals the one rebuilt from the rows, and exists exactly for live packages;
- every dist-tag points at a live version, and every live package has a `latest` tag.
"""

from __future__ import annotations

import base64
import hashlib

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import select

from ketch.blobs import open_blob_store
from ketch.config import Settings
from ketch.db import Database
from ketch.registry import packument, services
from ketch.registry.models import DistTag, Package, Packument, Version


async def run_fsck(settings: Settings, console: Console | None = None) -> list[str]:
    db = Database(settings.resolved_database_url)
    blobs = open_blob_store(settings)
    problems: list[str] = []
    try:
        async with db.read() as session:
            packages = list((await session.execute(select(Package).order_by(Package.name))).scalars())
            with Progress(console=console, transient=True, disable=console is None) as progress:
                task = progress.add_task("checking packages", total=len(packages))
                for package in packages:
                    problems += await _check_package(session, blobs, package)
                    progress.advance(task)
            known = {p.id for p in packages}
            orphans = await session.execute(select(Packument.name).where(Packument.package_id.not_in(known)))
            problems += [f"{name}: stored packument without a package row" for (name,) in orphans.all()]
    finally:
        await db.dispose()
    return problems


async def _check_package(session, blobs, package: Package) -> list[str]:
    problems = []
    name = package.name
    stored = await session.get(Packument, package.id)
    live = package.unpublished is None
    if not live:
        if stored is not None:
            problems.append(f"{name}: unpublished package still has a stored packument")
        return problems

    versions = (await session.execute(
        select(Version).where(Version.package_id == package.id, Version.unpublished.is_(None)))).scalars().all()
    for version in versions:
        try:
            data = await blobs.get(version.blob_key)
        except KeyError:
            problems.append(f"{name}@{version.version}: tarball blob {version.blob_key} is missing")
            continue
        actual = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if actual != version.integrity:
            problems.append(f"{name}@{version.version}: tarball blob does not match its integrity")

    numbers = {v.version for v in versions}
    tags = (await session.execute(select(DistTag).where(DistTag.package_id == package.id))).scalars().all()
    for tag in tags:
        if tag.version not in numbers:
            problems.append(f"{name}: dist-tag {tag.tag!r} points at missing version {tag.version}")
    if versions and not any(t.tag == "latest" for t in tags):
        problems.append(f"{name}: has no 'latest' dist-tag")

    if stored is None:
        problems.append(f"{name}: live package has no stored packument")
        return problems
    rebuilt = packument.build(await services.load_rows(session, package))
    if stored.full != rebuilt.full or stored.etag != rebuilt.etag:
        problems.append(f"{name}: stored full packument differs from the rebuilt one")
    if stored.abbreviated != rebuilt.abbreviated:
        problems.append(f"{name}: stored abbreviated packument differs from the rebuilt one")
    if stored.access != package.access:
        problems.append(f"{name}: stored packument has access {stored.access!r}, package has {package.access!r}")
    return problems
