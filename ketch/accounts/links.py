"""Emailed links (address verification, password reset) and the account notices sent by email.

A link carries a random secret; only its SHA-256 digest is stored (``EmailToken``). Links are
single use, expire (reset 1 h, verification 48 h), die when the password changes after they were
issued, and a verification link only verifies the address it was sent to.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from ketch.accounts import email
from ketch.accounts.models import EmailToken, User
from ketch.accounts.tokens import short_digest
from ketch.context import ctx
from ketch.db.base import utcnow
from ketch.http.errors import ApiError

TTL = {"verify": timedelta(hours=48), "reset": timedelta(hours=1), "login-otp": timedelta(minutes=10)}
PATHS = {"verify": "/-/web/verify-email", "reset": "/-/web/reset-password"}
INVALID = "This link is invalid, was already used or has expired."


async def issue(session: AsyncSession, user: User, purpose: str, address: str | None = None) -> str:
    """A new single-use secret for ``user``; ``address`` is the email it goes to (or, for the
    second step of a web login, the login it belongs to)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(EmailToken(user_id=user.id, purpose=purpose, digest=short_digest(raw),
                           email=(address or user.email or "")[:320], created=now, expires=now + TTL[purpose]))
    await session.flush()
    return raw


async def peek(session: AsyncSession, raw: str, purpose: str) -> tuple[EmailToken, User] | None:
    """The live token and its user, without spending it."""
    if not isinstance(raw, str) or not 10 <= len(raw) <= 200:
        return None
    row = (await session.execute(
        select(EmailToken, User).join(User, User.id == EmailToken.user_id)
        .where(EmailToken.digest == short_digest(raw), EmailToken.purpose == purpose)
    )).first()
    if row is None:
        return None
    token, user = row
    now = utcnow()
    if token.used is not None or token.expires <= now or user.deleted is not None:
        return None
    if user.password_changed is not None and token.created < user.password_changed:
        return None
    if purpose == "verify" and token.email != user.email:
        return None
    return token, user


async def consume(session: AsyncSession, raw: str, purpose: str) -> tuple[EmailToken, User]:
    """Spend the token (400 when it is not live). Concurrent uses: exactly one wins."""
    found = await peek(session, raw, purpose)
    if found is None:
        raise ApiError(400, INVALID)
    token, user = found
    result = await session.execute(
        update(EmailToken).where(EmailToken.id == token.id, EmailToken.used.is_(None)).values(used=utcnow()))
    if result.rowcount != 1:
        raise ApiError(400, INVALID)
    return token, user


async def kill(session: AsyncSession, user_id: int, purpose: str | None = None) -> None:
    """Spend every outstanding link of the user (of one purpose, or all)."""
    stmt = update(EmailToken).where(EmailToken.user_id == user_id, EmailToken.used.is_(None))
    if purpose:
        stmt = stmt.where(EmailToken.purpose == purpose)
    await session.execute(stmt.values(used=utcnow()))


def url(request: Request, purpose: str, raw: str) -> str:
    # The secret travels in the query string, which the access log leaves out.
    return f"{email.link_base(request)}{PATHS[purpose]}?token={raw}"


# -- messages ------------------------------------------------------------------------------------

def send_verification(request: Request, user: User, raw: str) -> None:
    link = url(request, "verify", raw)
    email.send(ctx(request).settings, user.email, "Verify your email address for Ketch",
               f"Hello {user.name},\n\n"
               f"please confirm that {user.email} is the email address of your Ketch account by opening\n"
               f"this link within 48 hours:\n\n{link}\n\n"
               "If you did not ask for this, ignore this message.\n")


def send_reset(request: Request, user: User, raw: str) -> None:
    link = url(request, "reset", raw)
    email.send(ctx(request).settings, user.email, "Reset your Ketch password",
               f"Hello {user.name},\n\n"
               "someone (hopefully you) asked to reset the password of your Ketch account.\n"
               f"Open this link within one hour to choose a new password:\n\n{link}\n\n"
               "If it was not you, ignore this message: your password stays as it is.\n")


def notify(request: Request, user: User, what: str, to: str | None = None) -> None:
    """A security notice ("your password was changed", …) to the account's address."""
    email.send(ctx(request).settings, to or user.email, f"Ketch account notice: {what}",
               f"Hello {user.name},\n\n{what} on your Ketch account.\n\n"
               "If this was you, nothing needs doing. If it was not, reset your password now and\n"
               "review your tokens with `npm token list`.\n")
