"""Reading and writing the proxy cache's rows (used by the proxy and by `ketch mirror`).

Every function takes an open session and never commits. Writers mark the name with
:func:`ketch.db.touch`, so every process's packument cache reloads it after the commit.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.blobs import BlobStore, blob_key
from ketch.db import touch
from ketch.db.base import utcnow
from ketch.proxy.documents import Documents
from ketch.proxy.models import CachedPackument, CachedTarball


def _insert(session: AsyncSession, model):
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


async def get_packument(session: AsyncSession, name: str) -> CachedPackument | None:
    return await session.get(CachedPackument, name)


async def packument_state(session: AsyncSession, name: str):
    """(uplink, fetched, etag, upstream_etag) of the cached documents of ``name``, or None — the
    freshness facts alone, without loading the documents."""
    return (await session.execute(
        select(CachedPackument.uplink, CachedPackument.fetched, CachedPackument.etag,
               CachedPackument.upstream_etag).where(CachedPackument.name == name))).first()


async def save_packument(session: AsyncSession, name: str, origin: str, docs: Documents,
                         upstream_etag: str | None, *, pinned: bool = False,
                         fetched: datetime | None = None) -> None:
    """Store (or replace) the cached documents of ``name``; ``origin`` is the uplink's name, or
    ``mirror:<source URL>`` for copies made by `ketch mirror` (``pinned``: never expire or pruned)."""
    now = fetched or utcnow()
    values = dict(name=name, uplink=origin, fetched=now, last_used=now, upstream_etag=upstream_etag,
                  etag=docs.etag, full=docs.full, abbreviated=docs.abbreviated, files=orjson.dumps(docs.files),
                  pinned=pinned, size=len(docs.full) + len(docs.abbreviated))
    stmt = _insert(session, CachedPackument).values(**values)
    changed = {k: v for k, v in values.items() if k not in ("name", "pinned")}
    # A mirrored copy stays pinned even if a proxy refresh later rewrites it.
    changed["pinned"] = stmt.excluded.pinned | CachedPackument.pinned
    await session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=changed))
    touch(session, name)


async def mark_fresh(session: AsyncSession, name: str, upstream_etag: str | None) -> None:
    """Upstream answered 304: the cached documents are current as of now."""
    await session.execute(update(CachedPackument).where(CachedPackument.name == name)
                          .values(fetched=utcnow(), upstream_etag=upstream_etag))


async def get_tarball(session: AsyncSession, name: str, filename: str) -> CachedTarball | None:
    return await session.get(CachedTarball, (name, filename))


async def put_blob(blobs: BlobStore, data: bytes) -> str:
    """Write verified tarball bytes to the blob store (before any transaction); returns the key.

    Blobs are content-addressed, so a crash before the row is recorded leaves at most an
    unreferenced blob, never a row naming bytes that are not there."""
    key = blob_key(hashlib.sha512(data).hexdigest())
    await blobs.put(key, data)
    return key


async def record_tarball(session: AsyncSession, name: str, filename: str, key: str, size: int, integrity: str,
                         *, pinned: bool = False) -> None:
    """Record a stored tarball. Processes that cached the package without it find it on their
    next request for the file (the hot path sends unknown files of cached packages here)."""
    now = utcnow()
    stmt = _insert(session, CachedTarball).values(name=name, filename=filename, blob_key=key, integrity=integrity,
                                                  size=size, fetched=now, last_used=now, pinned=pinned)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["name", "filename"],
        set_={"blob_key": key, "integrity": integrity, "size": size, "fetched": now, "last_used": now,
              "pinned": stmt.excluded.pinned | CachedTarball.pinned}))


async def save_tarball(session: AsyncSession, blobs: BlobStore, name: str, filename: str, data: bytes,
                       integrity: str, *, pinned: bool = False) -> str:
    """:func:`put_blob` then :func:`record_tarball` (the caller checked ``integrity``)."""
    key = await put_blob(blobs, data)
    await record_tarball(session, name, filename, key, len(data), integrity, pinned=pinned)
    return key


async def cached_tarballs(session: AsyncSession, name: str) -> dict[str, tuple[str, int]]:
    rows = await session.execute(select(CachedTarball.filename, CachedTarball.blob_key, CachedTarball.size)
                                 .where(CachedTarball.name == name))
    return {f: (k, s) for f, k, s in rows.all()}


async def mark_used(session: AsyncSession, packuments: set[str], tarballs: set[tuple[str, str]]) -> None:
    """Record that these were served recently (for `ketch cache prune`); batched by the caller."""
    now = utcnow()
    if packuments:
        await session.execute(update(CachedPackument).where(CachedPackument.name.in_(sorted(packuments)))
                              .values(last_used=now))
    for name, filename in sorted(tarballs):
        await session.execute(update(CachedTarball).where(CachedTarball.name == name,
                                                          CachedTarball.filename == filename)
                              .values(last_used=now))
