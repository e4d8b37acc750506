"""Tables of the accounts domain: users, API tokens, pending web logins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ketch.db.base import Base, UTCDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(214), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


class Token(Base):
    """An API token. Only its SHA-512 digest is stored; the secret is shown once, at creation."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(128), unique=True)  # sha512 hex; also npm's token "key"
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, for listings
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="session")  # session | publish | automation
    readonly: Mapped[bool] = mapped_column(Boolean, default=False)
    cidr_whitelist: Mapped[str | None] = mapped_column(Text)  # JSON list of CIDRs
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    expires: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebLogin(Base):
    """A pending `npm login --auth-type=web`: the browser approves ``id``; npm polls with the done secret."""

    __tablename__ = "web_logins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_digest: Mapped[str] = mapped_column(String(64), unique=True)
    create: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    expires: Mapped[datetime] = mapped_column(UTCDateTime)
