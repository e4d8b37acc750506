"""Browser sessions of the website: the ``ketch_session`` cookie.

A session is a row of the token table with ``kind="web"``, so it is stored like every credential
(only the SHA-512 digest of its secret), dies with the account, and shows in the audit log. Its
secret has its own format (``kws_`` + 43 random characters), which the npm API's token check
(:func:`ketch.accounts.tokens.well_formed`) never accepts: a session cookie is useless as a Bearer
token, and an npm token is useless as a cookie (only ``kind="web"`` rows are looked up here).

The cookie is ``HttpOnly``, ``SameSite=Lax`` (links from elsewhere arrive logged in; cross-site
POSTs do not carry it) and ``Secure`` when the site is served over https. A session ends on logout,
after :data:`IDLE` without use, :data:`ABSOLUTE` after login, and when the password changes (a
session older than the last password change is refused, whichever way the password changed).

:func:`current_identity` gives the same :class:`~ketch.accounts.services.Identity` the npm API gets
from a token, so the registry's read and write rules apply unchanged.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

from sqlalchemy import delete, select, update
from starlette.requests import Request
from starlette.responses import Response

from ketch.accounts import tfa, tokens
from ketch.accounts.models import Token, User
from ketch.accounts.services import Identity
from ketch.context import ctx
from ketch.db.base import utcnow

COOKIE = "ketch_session"
KIND = "web"
PREFIX = "kws_"
IDLE = timedelta(days=2)
ABSOLUTE = timedelta(days=14)
TOUCH = timedelta(minutes=5)  # last use is written at most this often
CACHE_TTL = 1.0
_MAX_CACHE = 10_000
_SCOPE_KEY = "ketch.web_identity"
_UNSET = object()


def _new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _plausible(raw: str | None) -> bool:
    return bool(raw) and raw.startswith(PREFIX) and len(raw) <= 100


def secure(request: Request) -> bool:
    """Whether cookies must be ``Secure``: the request came over https, or the public URL is https."""
    public = ctx(request).settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def _cache(request: Request) -> dict:
    return ctx(request).caches.setdefault("web-sessions", {})


def forget_cached(request: Request) -> None:
    """Drop every cached session decision (after logout, a password change, 2FA changes)."""
    _cache(request).clear()


async def current_identity(request: Request) -> Identity | None:
    """The logged-in user of this browser request, or None. Looked up once per request, and the
    answer is cached for one second per process (logout clears it at once on this node)."""
    got = request.scope.get(_SCOPE_KEY, _UNSET)
    if got is _UNSET:
        got = await _resolve(request)
        request.scope[_SCOPE_KEY] = got
    return got


async def _resolve(request: Request) -> Identity | None:
    raw = request.cookies.get(COOKIE)
    if not _plausible(raw):
        return None
    key = tokens.digest(raw)
    cache = _cache(request)
    hit = cache.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    async with ctx(request).db.read() as session:
        row = (await session.execute(
            select(Token, User).join(User, User.id == Token.user_id)
            .where(Token.digest == key, Token.kind == KIND))).first()
    ident = None
    if row is not None:
        token, user = row
        if _alive(token, user):
            ident = Identity(user.id, user.name, user.email, token.id, False, KIND,
                             tfa_mode=tfa.active_mode(user))
            if token.last_used is None or utcnow() - token.last_used > TOUCH:
                async with ctx(request).db.write() as session:
                    await session.execute(update(Token).where(Token.id == token.id)
                                          .values(last_used=utcnow(), updated=utcnow()))
    if len(cache) >= _MAX_CACHE:
        cache.clear()
    cache[key] = (now + CACHE_TTL, ident)
    return ident


def _alive(token: Token, user: User) -> bool:
    now = utcnow()
    if user.deleted is not None:
        return False
    if token.expires is not None and token.expires <= now:
        return False
    if now - (token.last_used or token.created) > IDLE:
        return False
    if user.password_changed is not None and token.created < user.password_changed:
        return False
    return True


async def start_session(request: Request, response: Response, user: User | Identity) -> Identity:
    """Log ``user`` in on this browser: a fresh session (never one the browser already had, so a
    planted cookie cannot be promoted), the cookie set on ``response``. Ends the session the
    browser had before, if any."""
    await end_session(request, response)
    user_id = user.user_id if isinstance(user, Identity) else user.id
    raw = _new_secret()
    now = utcnow()
    ip = request.client.host if request.client else None
    agent = (request.headers.get("user-agent") or "")[:200] or None
    async with ctx(request).db.write() as session:
        found = await session.get(User, user_id)
        token = Token(user_id=user_id, digest=tokens.digest(raw), prefix=raw[:10], name="web session",
                      description=agent, kind=KIND, readonly=False, created=now, updated=now,
                      expires=now + ABSOLUTE, last_used=now, last_ip=(ip or None) and ip[:64])
        session.add(token)
        await session.flush()
        ident = Identity(found.id, found.name, found.email, token.id, False, KIND, tfa_mode=tfa.active_mode(found))
    response.set_cookie(COOKIE, raw, max_age=int(ABSOLUTE.total_seconds()), path="/", httponly=True,
                        samesite="lax", secure=secure(request))
    request.scope[_SCOPE_KEY] = ident
    return ident


async def end_session(request: Request, response: Response) -> bool:
    """Log this browser out: its session row is deleted and the cookie cleared. True when there
    was a session."""
    raw = request.cookies.get(COOKIE)
    request.scope[_SCOPE_KEY] = None
    if not _plausible(raw):
        return False
    key = tokens.digest(raw)
    async with ctx(request).db.write() as session:
        result = await session.execute(delete(Token).where(Token.digest == key, Token.kind == KIND))
    _cache(request).pop(key, None)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure(request))
    return result.rowcount > 0


async def end_other_sessions(session, user_id: int, keep: int | None) -> None:
    """End every browser session of the user except ``keep`` (in the caller's transaction)."""
    stmt = delete(Token).where(Token.user_id == user_id, Token.kind == KIND)
    if keep is not None:
        stmt = stmt.where(Token.id != keep)
    await session.execute(stmt)


async def list_sessions(session, user_id: int) -> list[Token]:
    result = await session.execute(select(Token).where(Token.user_id == user_id, Token.kind == KIND)
                                   .order_by(Token.id.desc()))
    return list(result.scalars())
