"""Tables of the stats domain: daily download counts with their roll-ups, and the dependents index.

Counts are keyed by package *name* (not id), as npm's downloads API is: the history of a name
stays readable whatever happens to its package row.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ketch.db.base import Base


class VersionDownloads(Base):
    """The raw data: tarball GETs per (package, version, UTC day)."""

    __tablename__ = "version_downloads"

    package: Mapped[str] = mapped_column(String(214), primary_key=True)
    version: Mapped[str] = mapped_column(String(256), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class PackageDownloads(Base):
    """Roll-up: the sum of ``version_downloads`` per (package, day), kept exact at flush time."""

    __tablename__ = "package_downloads"

    package: Mapped[str] = mapped_column(String(214), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class TotalDownloads(Base):
    """Roll-up: the registry-wide sum per day (private packages included)."""

    __tablename__ = "total_downloads"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class Dependent(Base):
    """``dependent`` (a package's latest version) lists ``dependency`` under ``kind``.

    ``kind`` is "dependencies", "peerDependencies" or "optionalDependencies"; ``private`` copies
    the dependent package's access so public counts need no join.
    """

    __tablename__ = "dependents"

    dependency: Mapped[str] = mapped_column(String(214), primary_key=True)
    dependent_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True,
                                              index=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    dependent: Mapped[str] = mapped_column(String(214))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
