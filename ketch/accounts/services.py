"""Account rules: sign-up, password login, API tokens, the web-login handshake.

Functions take an open session and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ketch.accounts import passwords, tfa, tokens
from ketch.accounts.models import Token, User, WebLogin
from ketch.db.base import utcnow
from ketch.http.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,213}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MAX_TOKENS_PER_USER = 1000


@dataclass(frozen=True)
class Identity:
    """Who is calling: the user, and the token (if any) that proved it."""

    user_id: int
    name: str
    email: str | None
    token_id: int | None = None
    readonly: bool = False
    kind: str = "password"
    # Granular tokens: (package names, scopes, "read-only"|"read-write"|"no-access") or None for all packages.
    token_limits: tuple[frozenset, frozenset, str] | None = None
    # Granular tokens: (org names, "read-only"|"read-write"|"no-access") or None for all orgs.
    org_limits: tuple[frozenset, str] | None = None
    # The user's two-factor mode once set up ("auth-only" | "auth-and-writes"), else None.
    tfa_mode: str | None = None


def username_problem(name: object) -> str | None:
    if not isinstance(name, str) or not _USERNAME.match(name):
        return ("Invalid username: use 1-214 lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter or digit.")
    return None


def email_problem(email: object) -> str | None:
    if not isinstance(email, str) or not _EMAIL.match(email):
        return "A valid email address is required."
    return None


async def get_user(session: AsyncSession, name: str) -> User | None:
    return (await session.execute(select(User).where(User.name == name))).scalar_one_or_none()


async def create_user(session: AsyncSession, name: str, password: str, email: str) -> User:
    for problem in (username_problem(name), email_problem(email), passwords.password_problem(password, name)):
        if problem:
            raise BadRequest(problem)
    now = utcnow()
    user = User(name=name, email=email, password_hash=await passwords.hash_password(password), created=now, updated=now)
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f'User "{name}" already exists.') from None
    return user


async def authenticate(session: AsyncSession, name: str, password: str) -> User | None:
    """The user whose password this is, or None; unknown users cost the same time as wrong passwords."""
    user = await get_user(session, name) if isinstance(name, str) else None
    if user is not None and user.deleted is not None:
        user = None
    ok = await passwords.verify_password(user.password_hash if user else None, str(password))
    return user if ok else None


# -- tokens ------------------------------------------------------------------------------

def _parse_cidrs(value: object) -> list[str] | None:
    if value in (None, [], ""):
        return None
    if not isinstance(value, list) or len(value) > 100:
        raise BadRequest("cidr_whitelist must be a list of CIDR ranges.")
    out = []
    for item in value:
        try:
            out.append(str(ipaddress.ip_network(str(item), strict=False)))
        except ValueError:
            raise BadRequest(f"Invalid CIDR range: {str(item)[:50]!r}") from None
    return out


async def issue_token(
    session: AsyncSession, user: User | Identity, *, kind: str = "session", readonly: bool = False,
    cidr_whitelist: object = None, name: str | None = None, expires_days: object = None, ip: str | None = None,
) -> tuple[Token, str]:
    user_id = user.user_id if isinstance(user, Identity) else user.id
    count = len((await session.execute(select(Token.id).where(Token.user_id == user_id))).all())
    if count >= MAX_TOKENS_PER_USER:
        raise Forbidden(f"Token limit reached ({MAX_TOKENS_PER_USER}); revoke unused tokens first.")
    expires = None
    if expires_days is not None:
        if not isinstance(expires_days, int) or isinstance(expires_days, bool) or not 1 <= expires_days <= 3650:
            raise BadRequest("expires must be a number of days between 1 and 3650.")
        expires = utcnow() + timedelta(days=expires_days)
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise BadRequest("Token name must be a string of at most 200 characters.")
    raw = tokens.new_token()
    now = utcnow()
    cidrs = _parse_cidrs(cidr_whitelist)
    token = Token(
        user_id=user_id, digest=tokens.digest(raw), prefix=raw[:10], name=name, kind=kind, readonly=readonly,
        cidr_whitelist=orjson.dumps(cidrs).decode() if cidrs else None, created=now, updated=now, expires=expires,
        last_ip=(ip or None) and ip[:64],
    )
    session.add(token)
    await session.flush()
    return token, raw


async def identity_for_token(session: AsyncSession, raw: str) -> tuple[Identity, Token] | None:
    if not tokens.well_formed(raw):
        return None
    row = (await session.execute(
        select(Token, User).join(User, User.id == Token.user_id).where(Token.digest == tokens.digest(raw))
    )).first()
    if row is None:
        return None
    token, user = row
    if (token.expires is not None and token.expires <= utcnow()) or user.deleted is not None:
        return None
    ident = Identity(user.id, user.name, user.email, token.id, token.readonly, token.kind,
                     token_limits=_limits(token), org_limits=_org_limits(token), tfa_mode=tfa.active_mode(user))
    return ident, token


def password_identity(user: User) -> Identity:
    """The identity of a caller who proved the password (Basic credentials)."""
    return Identity(user.id, user.name, user.email, tfa_mode=tfa.active_mode(user))


async def touch_token(session: AsyncSession, token_id: int, ip: str | None, min_age: timedelta) -> bool:
    """Record the token's use (time, IP) unless already recorded within ``min_age`` from that IP."""
    now = utcnow()
    ip = (ip or "")[:64] or None
    result = await session.execute(
        update(Token).where(Token.id == token_id)
        .where(or_(Token.last_used.is_(None), Token.last_used < now - min_age, Token.last_ip.is_(None),
                   Token.last_ip != ip))
        .values(last_used=now, last_ip=ip))
    return result.rowcount == 1


async def revoke_sessions(session: AsyncSession, user_id: int, keep: int | None = None) -> None:
    """End the user's login sessions (tokens from `npm login`), except token ``keep``. Tokens made
    with `npm token create` are deliberate credentials and stay."""
    stmt = delete(Token).where(Token.user_id == user_id, Token.kind == "session")
    if keep is not None:
        stmt = stmt.where(Token.id != keep)
    await session.execute(stmt)


async def revoke_all_tokens(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(Token).where(Token.user_id == user_id))


def _limits(token: Token) -> tuple[frozenset, frozenset, str] | None:
    if not token.packages and not token.scopes:
        return None
    packages = frozenset(orjson.loads(token.packages)) if token.packages else frozenset()
    scopes = frozenset(s.lstrip("@") for s in orjson.loads(token.scopes)) if token.scopes else frozenset()
    return packages, scopes, token.packages_permission or "read-write"


def _org_limits(token: Token) -> tuple[frozenset, str] | None:
    if not token.orgs:
        return None
    return frozenset(o.lstrip("@") for o in orjson.loads(token.orgs)), token.orgs_permission or "read-write"


def ip_allowed(cidr_json: str | None, client_ip: str | None) -> bool:
    if not cidr_json:
        return True
    try:
        ip = ipaddress.ip_address(client_ip or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(c) for c in orjson.loads(cidr_json))


async def list_tokens(session: AsyncSession, user_id: int) -> list[Token]:
    result = await session.execute(select(Token).where(Token.user_id == user_id).order_by(Token.id))
    return list(result.scalars())


async def revoke_token(session: AsyncSession, user_id: int, key_or_token: str) -> int:
    """Revoke by npm's "key" (the digest) or by the token itself; the revoked token's id."""
    key = tokens.digest(key_or_token) if key_or_token.startswith(tokens.PREFIX) else key_or_token.lower()
    token_id = (await session.execute(
        select(Token.id).where(Token.user_id == user_id, Token.digest == key))).scalar_one_or_none()
    if token_id is None:
        raise NotFound("Token not found")
    await session.execute(delete(Token).where(Token.id == token_id))
    return token_id


async def revoke_token_value(session: AsyncSession, raw: str) -> bool:
    result = await session.execute(delete(Token).where(Token.digest == tokens.digest(raw)))
    return result.rowcount > 0


def token_json(token: Token, raw: str | None = None) -> dict:
    return {
        "token": raw if raw else token.prefix,  # npm adds the ellipsis, and matches revoke arguments on it
        "key": token.digest,
        "name": token.name,
        "readonly": token.readonly,
        "automation": token.kind == "automation",
        "cidr_whitelist": orjson.loads(token.cidr_whitelist) if token.cidr_whitelist else None,
        "created": _iso(token.created),
        "updated": _iso(token.updated),
        "expires": _iso(token.expires) if token.expires else None,
    }


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# -- web login ----------------------------------------------------------------------------

async def start_web_login(session: AsyncSession, *, create: bool, ttl: int) -> tuple[str, str]:
    """Return (login id for the browser URL, done secret for npm's poll URL)."""
    login_id = uuid.uuid4().hex
    done = secrets.token_urlsafe(32)
    now = utcnow()
    await session.execute(delete(WebLogin).where(WebLogin.expires < now))
    session.add(WebLogin(id=login_id, done_digest=tokens.short_digest(done), create=create, created=now,
                         expires=now + timedelta(seconds=ttl)))
    return login_id, done


async def get_web_login(session: AsyncSession, login_id: str) -> WebLogin | None:
    login = await session.get(WebLogin, login_id)
    if login is None or login.expires <= utcnow():
        return None
    return login


async def approve_web_login(session: AsyncSession, login: WebLogin, user: User) -> None:
    if login.user_id is not None:
        raise ApiError(409, "This login request was already approved.")
    login.user_id = user.id


async def poll_web_login(session: AsyncSession, done_secret: str, ip: str | None = None) -> str | None:
    """The new token once the browser approved, None while pending; 404 when unknown or expired.

    The token is minted here, at the first poll after approval, and the request is deleted, so the
    secret can be handed out exactly once and never needs to be stored.
    """
    login = (await session.execute(
        select(WebLogin).where(WebLogin.done_digest == tokens.short_digest(done_secret))
    )).scalar_one_or_none()
    if login is None or login.expires <= utcnow():
        raise NotFound("Login request not found or expired.")
    if login.user_id is None:
        return None
    user = await session.get(User, login.user_id)
    await session.delete(login)
    _, raw = await issue_token(session, user, kind="session", name="web login", ip=ip)
    return raw
