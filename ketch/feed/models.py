"""Tables of the replication feed: one row per change to a package, and where mirrors left off."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ketch.db.base import Base, UTCDateTime


class Change(Base):
    __tablename__ = "changes"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=True)
    name: Mapped[str] = mapped_column(String(214), index=True)
    rev: Mapped[str] = mapped_column(String(80))  # the package's _rev after the change
    kind: Mapped[str] = mapped_column(String(32))  # publish, unpublish, dist-tag, deprecate, owner, access, …
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)  # every version is unpublished
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class MirrorState(Base):
    """How far `ketch mirror` got in a source registry's feed, so an interrupted run resumes."""

    __tablename__ = "mirror_state"

    source: Mapped[str] = mapped_column(String(500), primary_key=True)
    since: Mapped[str] = mapped_column(String(100))  # the source's last fully copied sequence
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
