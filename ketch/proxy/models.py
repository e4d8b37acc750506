"""Tables of the proxy cache: packuments and tarballs fetched from uplinks (or copied by `ketch mirror`).

They are kept apart from the registry's own tables: a local package of the same name always wins,
and dropping the whole cache never loses anything that was published here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ketch.db.base import Base, UTCDateTime


class CachedPackument(Base):
    __tablename__ = "proxy_packuments"

    name: Mapped[str] = mapped_column(String(214), primary_key=True)
    uplink: Mapped[str] = mapped_column(String(100))  # the uplink it came from, or "mirror:<source>"
    fetched: Mapped[datetime] = mapped_column(UTCDateTime)  # last time upstream confirmed it (200 or 304)
    last_used: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    upstream_etag: Mapped[str | None] = mapped_column(String(300))
    etag: Mapped[str] = mapped_column(String(80))  # ours: a digest of `full`
    # The upstream document with tarball URLs rewritten to MARKER + "/name/-/file" (as local ones).
    full: Mapped[bytes] = mapped_column(LargeBinary)
    abbreviated: Mapped[bytes] = mapped_column(LargeBinary)
    # JSON {file name: [upstream tarball URL, integrity, shasum]} for every version in `full`.
    files: Mapped[bytes] = mapped_column(LargeBinary)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)  # mirrored: never expires or pruned
    size: Mapped[int] = mapped_column(BigInteger)


class CachedTarball(Base):
    __tablename__ = "proxy_tarballs"

    name: Mapped[str] = mapped_column(String(214), primary_key=True)
    filename: Mapped[str] = mapped_column(String(300), primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(200), index=True)
    integrity: Mapped[str] = mapped_column(String(200))  # what the bytes were verified against
    size: Mapped[int] = mapped_column(BigInteger)
    fetched: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
