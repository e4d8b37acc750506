"""`ketch cache prune`: drop what the proxy cache holds beyond an age or a size.

Only unpinned rows are candidates (copies made by `ketch mirror` are pinned and stay). Rows older
than ``max_age`` (by last use) go first, then the least recently used until the unpinned rows fit
in ``max_size`` bytes. Tarball bytes are content-addressed and shared: a blob is deleted only when
no registry version and no other cached tarball names it any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ketch.blobs import BlobStore
from ketch.db import Database, touch
from ketch.db.base import utcnow
from ketch.proxy.models import CachedPackument, CachedTarball
from ketch.registry.models import Version

BATCH = 500


@dataclass(frozen=True)
class Item:
    name: str
    filename: str | None  # None: the packument
    size: int
    last_used: datetime
    blob_key: str | None = None


@dataclass
class Plan:
    drop: list[Item]
    kept_bytes: int  # unpinned bytes left afterwards


async def plan(db: Database, *, max_size: int | None = None, max_age: timedelta | None = None,
               now: datetime | None = None) -> Plan:
    async with db.read() as session:
        packuments = (await session.execute(
            select(CachedPackument.name, CachedPackument.size, CachedPackument.last_used)
            .where(CachedPackument.pinned.is_(False)))).all()
        tarballs = (await session.execute(
            select(CachedTarball.name, CachedTarball.filename, CachedTarball.size, CachedTarball.last_used,
                   CachedTarball.blob_key).where(CachedTarball.pinned.is_(False)))).all()
    items = [Item(n, None, s, u) for n, s, u in packuments] + [Item(*row) for row in tarballs]
    items.sort(key=lambda i: (i.last_used, i.name, i.filename or ""))
    total = sum(i.size for i in items)
    cutoff = (now or utcnow()) - max_age if max_age is not None else None
    drop = []
    for item in items:
        too_old = cutoff is not None and item.last_used < cutoff
        too_big = max_size is not None and total > max_size
        if not (too_old or too_big):
            break  # sorted by last use: every later row is newer, and the rest fits
        drop.append(item)
        total -= item.size
    return Plan(drop, total)


async def apply(db: Database, blobs: BlobStore, drop: list[Item], progress=lambda done: None) -> int:
    """Delete the planned rows (in batches), then the blobs nothing names any more; returns how many
    blobs were deleted. Rows used again since the plan was made are kept."""
    deleted = 0
    for start in range(0, len(drop), BATCH):
        keys = set()
        async with db.write() as session:
            for item in drop[start:start + BATCH]:
                if item.filename is None:
                    await session.execute(delete(CachedPackument).where(
                        CachedPackument.name == item.name, CachedPackument.pinned.is_(False),
                        CachedPackument.last_used <= item.last_used))
                    touch(session, item.name)  # every process's packument cache forgets it
                else:
                    gone = await session.execute(delete(CachedTarball).where(
                        CachedTarball.name == item.name, CachedTarball.filename == item.filename,
                        CachedTarball.pinned.is_(False), CachedTarball.last_used <= item.last_used)
                        .returning(CachedTarball.blob_key))
                    keys.update(gone.scalars())
        deleted += await release_blobs(db, blobs, keys)
        progress(min(start + BATCH, len(drop)))
    return deleted


async def release_blobs(db: Database, blobs: BlobStore, keys: set[str]) -> int:
    """Delete the blobs among ``keys`` that no registry version or cached tarball names (after the
    rows that named them were committed away); returns how many were deleted."""
    if not keys:
        return 0
    async with db.read() as session:
        used = set((await session.execute(select(Version.blob_key).where(Version.blob_key.in_(keys)))).scalars())
        used |= set((await session.execute(
            select(CachedTarball.blob_key).where(CachedTarball.blob_key.in_(keys)))).scalars())
    free = keys - used
    for key in sorted(free):
        await blobs.delete(key)
    return len(free)


_SIZES = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3,
          "t": 1024**4, "tb": 1024**4}
_AGES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """``10GB``, ``500M``, ``1.5g``, ``4096``: bytes, with units in powers of 1024."""
    number = text.strip().lower().rstrip("bkmgt")
    unit = text.strip().lower()[len(number):]
    try:
        value = float(number)
    except ValueError:
        value = -1
    if unit not in _SIZES or value < 0:
        raise ValueError(f"{text!r} is not a size such as 10GB, 500MB or 4096")
    return int(value * _SIZES[unit])


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s``."""
    number, unit = text.strip().lower()[:-1], text.strip().lower()[-1:]
    if unit not in _AGES or not number.replace(".", "", 1).isdigit():
        raise ValueError(f"{text!r} is not an age such as 30d, 12h, 90m or 2w")
    return timedelta(seconds=float(number) * _AGES[unit])
