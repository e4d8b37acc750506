"""Tables of the accounts domain: users, API tokens, pending web logins, 2FA recovery codes,
emailed links, the audit log and rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
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
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Profile fields shown by `npm profile get`.
    fullname: Mapped[str | None] = mapped_column(String(200))
    homepage: Mapped[str | None] = mapped_column(String(500))
    twitter: Mapped[str | None] = mapped_column(String(100))
    github: Mapped[str | None] = mapped_column(String(100))
    freenode: Mapped[str | None] = mapped_column(String(100))
    # Two-factor authentication: None (off), "auth-only" or "auth-and-writes"; pending while being set up.
    tfa_mode: Mapped[str | None] = mapped_column(String(20))
    tfa_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    tfa_secret: Mapped[str | None] = mapped_column(String(64))
    tfa_last_counter: Mapped[int | None] = mapped_column(BigInteger)  # last accepted TOTP step (no replay)
    password_changed: Mapped[datetime | None] = mapped_column(UTCDateTime)  # links issued before it are dead
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Deleted accounts keep their row (tombstone) so nobody can take over their name or packages.
    deleted: Mapped[datetime | None] = mapped_column(UTCDateTime)


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
    description: Mapped[str | None] = mapped_column(String(500))
    # Granular tokens: JSON lists limiting the token to packages / @scopes / orgs, and its permissions.
    packages: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[str | None] = mapped_column(Text)
    orgs: Mapped[str | None] = mapped_column(Text)
    packages_permission: Mapped[str | None] = mapped_column(String(20))  # read-only | read-write | no-access
    orgs_permission: Mapped[str | None] = mapped_column(String(20))
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_ip: Mapped[str | None] = mapped_column(String(64))


class WebLogin(Base):
    """A pending `npm login --auth-type=web`: the browser approves ``id``; npm polls with the done secret."""

    __tablename__ = "web_logins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_digest: Mapped[str] = mapped_column(String(64), unique=True)
    create: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    expires: Mapped[datetime] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """A single-use 2FA recovery code; only its digest is stored."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    used: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EmailToken(Base):
    """An emailed link (address verification, password reset); single use, stored as a digest."""

    __tablename__ = "email_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # verify | reset
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    expires: Mapped[datetime] = mapped_column(UTCDateTime)
    used: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One security-relevant event: who did what, from where, to which user/package/org."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_subject_user_id_id", "subject_user_id", "id"),
        Index("ix_audit_events_package_id", "package", "id"),
        Index("ix_audit_events_org_id", "org", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(64))  # e.g. login, login:failed, token:created, package:publish
    actor_id: Mapped[int | None] = mapped_column(Integer)  # no FK: events outlive deleted rows
    actor_name: Mapped[str | None] = mapped_column(String(214))
    subject_user_id: Mapped[int | None] = mapped_column(Integer)
    package: Mapped[str | None] = mapped_column(String(214))
    org: Mapped[str | None] = mapped_column(String(214))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[str | None] = mapped_column(Text)  # JSON


class RateCounter(Base):
    """Fixed-window counters shared by every node (login, sign-up and OTP throttling)."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # window start, unix seconds
    count: Mapped[int] = mapped_column(Integer, default=0)
