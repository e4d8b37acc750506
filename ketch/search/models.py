"""The search index: one row per live package, derived from its latest version.

Rebuilt inside every package write (``ketch.search.index.update``) and by ``ketch reindex``; never
the source of truth. The full-text side lives beside it and is backend specific: an FTS5 table
``search_fts`` (plus the trigram table ``search_names``) on SQLite, a generated ``tsv`` column
with GIN indexes on PostgreSQL (see migration 0004).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketch.db.base import Base, UTCDateTime


class SearchDocument(Base):
    __tablename__ = "search_documents"

    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(214), unique=True)
    # Lower-case letters and digits only: "React_Router" and "react-router" share a key, so an
    # exact-name match survives punctuation and case (npm/newww#1066).
    name_key: Mapped[str] = mapped_column(String(214), index=True)
    short_key: Mapped[str] = mapped_column(String(214), index=True)  # the same for the part after the scope
    name_words: Mapped[str] = mapped_column(String(300))  # "@babel/core" → "babel core", for word matching
    scope: Mapped[str | None] = mapped_column(String(214), index=True)
    access: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    keywords: Mapped[str] = mapped_column(Text, default="")  # space-separated, as indexed
    readme: Mapped[str] = mapped_column(Text, default="")  # the first README_CHARS characters
    # "|a|b|" lists (lower-case) so qualifier filters are one LIKE on either database.
    keyword_key: Mapped[str] = mapped_column(Text, default="|")
    author_key: Mapped[str] = mapped_column(Text, default="|")
    maintainer_key: Mapped[str] = mapped_column(Text, default="|")
    deprecated: Mapped[str | None] = mapped_column(Text)
    unstable: Mapped[bool] = mapped_column(Boolean, default=False)
    date: Mapped[datetime] = mapped_column(UTCDateTime)  # when the latest version was published
    updated: Mapped[datetime] = mapped_column(UTCDateTime)  # the package's last change
    quality: Mapped[float] = mapped_column(Float, default=0.0)
    maintenance: Mapped[float] = mapped_column(Float, default=0.0)
    popularity: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    weekly_downloads: Mapped[int] = mapped_column(Integer, default=0, index=True)
    dependents: Mapped[int] = mapped_column(Integer, default=0, index=True)
    # JSON: the response's package object (links, publisher, maintainers, license …) and the
    # release dates that maintenance is recomputed from when the index is refreshed.
    document: Mapped[str] = mapped_column(Text)
    releases: Mapped[str] = mapped_column(Text, default="[]")


class SearchMeta(Base):
    """One row per key: ``popularity`` holds when scores were last refreshed (multi-node safe claim)."""

    __tablename__ = "search_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    refreshed: Mapped[datetime] = mapped_column(UTCDateTime)
