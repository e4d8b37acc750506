"""Tables of the registry domain: packages, versions, dist-tags, maintainers, stars, stored packuments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ketch.db.base import Base, UTCDateTime


class Package(Base):
    __tablename__ = "packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(214), unique=True)
    scope: Mapped[str | None] = mapped_column(String(214), index=True)
    access: Mapped[str] = mapped_column(String(16), default="public")  # "public" | "restricted"
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    modified: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when every version was unpublished; the row stays so the name and its version numbers stay taken.
    unpublished: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rev: Mapped[int] = mapped_column(Integer, default=0)
    # `npm access set mfa=…`: publishing needs 2FA; automation tokens may stand in for it.
    publish_requires_tfa: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    automation_token_overrides_tfa: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("package_id", "version_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(256))
    # The version without build metadata: 1.0.0+a and 1.0.0+b are the same version to every client.
    version_key: Mapped[str] = mapped_column(String(256))
    manifest: Mapped[bytes] = mapped_column(LargeBinary)  # JSON of the stored version object
    readme: Mapped[str | None] = mapped_column(Text)
    readme_filename: Mapped[str | None] = mapped_column(String(255))
    integrity: Mapped[str] = mapped_column(String(200))
    shasum: Mapped[str] = mapped_column(String(40))
    blob_key: Mapped[str] = mapped_column(String(200), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    publisher_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    deprecated: Mapped[str | None] = mapped_column(Text)
    # Unpublished versions keep their row: a version number once used is never reusable.
    unpublished: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DistTag(Base):
    __tablename__ = "dist_tags"

    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(256))


class Maintainer(Base):
    __tablename__ = "maintainers"

    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Star(Base):
    __tablename__ = "stars"

    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Packument(Base):
    """The serialized documents served on the hot path, rebuilt in the same transaction as every write.

    Tarball URLs inside are stored relative, behind a marker that the read path replaces with the
    base URL of the request (see ``ketch.registry.packument.TARBALL_MARKER``).
    """

    __tablename__ = "packuments"

    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(214), unique=True)
    etag: Mapped[str] = mapped_column(String(80))
    modified: Mapped[datetime] = mapped_column(UTCDateTime)
    access: Mapped[str] = mapped_column(String(16))
    full: Mapped[bytes] = mapped_column(LargeBinary)
    abbreviated: Mapped[bytes] = mapped_column(LargeBinary)
