"""Profile rules: the document `npm profile get` shows, field validation, password and 2FA state
changes, and account deletion. Functions take an open session and never commit."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts import links, services, tfa
from ketch.accounts.models import User, WebLogin
from ketch.db.base import utcnow
from ketch.http.errors import BadRequest

FIELDS = {"fullname": 200, "homepage": 500, "freenode": 100, "twitter": 100, "github": 100}
_HANDLE = re.compile(r"^[^\s<>\"'`\\]{1,100}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DELETED_HASH = "!deleted"  # not an argon2 hash: no password matches it


def tfa_json(user: User) -> dict | bool:
    mode = tfa.active_mode(user)
    if mode:
        return {"mode": mode, "pending": False}
    if user.tfa_pending and user.tfa_mode:
        return {"mode": user.tfa_mode, "pending": True}
    return False


def profile_json(user: User) -> dict:
    """The `GET /-/npm/v1/user` document (protocol §13)."""
    doc = {
        "name": user.name, "email": user.email or "", "email_verified": bool(user.email_verified),
        "created": services._iso(user.created), "updated": services._iso(user.updated),
        "tfa": tfa_json(user), "cidr_whitelist": None,
    }
    doc.update({key: getattr(user, key) or "" for key in FIELDS})
    return doc


def clean_field(key: str, value: object) -> str | None:
    """A profile field as stored (None when emptied); 400 for a value it cannot be."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string.")
    value = value.strip()
    if not value:
        return None
    if len(value) > FIELDS[key] or _CONTROL.search(value):
        raise BadRequest(f"{key} must be at most {FIELDS[key]} characters on one line.")
    if key == "homepage":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadRequest("homepage must be an http:// or https:// URL.")
    elif key != "fullname" and not _HANDLE.match(value):
        raise BadRequest(f"{key} must be a user name without spaces or quotes.")
    return value


def plan_changes(user: User, body: dict) -> dict[str, str | None]:
    """The fields ``body`` changes (npm sends every writable field; most are unchanged)."""
    changes: dict[str, str | None] = {}
    for key in FIELDS:
        if key in body:
            value = clean_field(key, body[key])
            if value != getattr(user, key):
                changes[key] = value
    address = body.get("email")
    if address is not None:  # an account always keeps an address: null means "unchanged"
        if not isinstance(address, str):
            raise BadRequest("email must be a string.")
        address = address.strip()
        problem = services.email_problem(address)
        if problem:
            raise BadRequest(problem)
        if address != user.email:
            changes["email"] = address
    return changes


def apply_changes(user: User, changes: dict[str, str | None]) -> None:
    for key, value in changes.items():
        setattr(user, key, value)
    if "email" in changes:
        user.email_verified = False
    user.updated = utcnow()


async def set_password(session: AsyncSession, user: User, password_hash: str, keep_token: int | None) -> None:
    """New password: other login sessions end, emailed links issued before now die."""
    now = utcnow()
    user.password_hash = password_hash
    user.password_changed = now
    user.updated = now
    await services.revoke_sessions(session, user.id, keep=keep_token)
    await links.kill(session, user.id)


def start_tfa(user: User, mode: str) -> str:
    """Begin (or restart) setting up 2FA: a new secret, pending until a first code confirms it."""
    secret = tfa.new_secret()
    user.tfa_mode = mode
    user.tfa_pending = True
    user.tfa_secret = secret
    user.tfa_last_counter = None
    user.updated = utcnow()
    return tfa.otpauth_url(secret, user.name)


async def finish_tfa(session: AsyncSession, user: User, step: int, keep_token: int | None) -> list[str]:
    user.tfa_pending = False
    user.tfa_last_counter = step
    user.updated = utcnow()
    await services.revoke_sessions(session, user.id, keep=keep_token)
    return await tfa.replace_recovery_codes(session, user)


async def disable_tfa(session: AsyncSession, user: User, keep_token: int | None) -> bool:
    """Turn 2FA off (or abandon a pending setup). True when it had been on."""
    was_on = tfa.active_mode(user) is not None
    user.tfa_mode = None
    user.tfa_pending = False
    user.tfa_secret = None
    user.tfa_last_counter = None
    user.updated = utcnow()
    await tfa.drop_recovery_codes(session, user.id)
    if was_on:
        await services.revoke_sessions(session, user.id, keep=keep_token)
    return was_on


async def delete_account(session: AsyncSession, user: User) -> None:
    """Tombstone the account: the row and its name stay (nobody can register the name or take over
    its packages, which keep their other maintainers), everything that could log in goes, and
    personal data is erased."""
    now = utcnow()
    await services.revoke_all_tokens(session, user.id)
    await tfa.drop_recovery_codes(session, user.id)
    await links.kill(session, user.id)
    await session.execute(delete(WebLogin).where(WebLogin.user_id == user.id))
    user.deleted = now
    user.updated = now
    user.password_changed = now
    user.password_hash = DELETED_HASH
    user.email = None
    user.email_verified = False
    for key in FIELDS:
        setattr(user, key, None)
    user.tfa_mode = None
    user.tfa_pending = False
    user.tfa_secret = None
    user.tfa_last_counter = None
