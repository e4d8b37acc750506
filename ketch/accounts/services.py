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

class _AllNames(frozenset):
    """The name list of a granular token that covers every package (or org): everything is in it,
    so ``name in limits`` checks need no special case."""

    def __contains__(self, item: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALL"


ALL = _AllNames()
TOKEN_PERMISSIONS = ("read-only", "read-write", "no-access")
MAX_TOKEN_NAMES = 100
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
    # Granular tokens: (package names, scopes, "read-only"|"read-write"|"no-access"), or None when the
    # token may do with every package whatever the user may. ``ALL`` as the names means every package.
    token_limits: tuple[frozenset, frozenset, str] | None = None
    # Granular tokens: (org names or ``ALL``, "read-only"|"read-write"|"no-access"), or None for no limit.
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

def parse_cidrs(value: object) -> list[str] | None:
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


@dataclass(frozen=True)
class TokenGrants:
    """What a granular token (``npm token create --packages … --orgs …``) may reach. A list of None
    means "all": every package (with ``packages_permission``) or every org of the user."""

    packages: list[str] | None
    scopes: list[str] | None
    packages_permission: str
    orgs: list[str] | None
    orgs_permission: str

    @property
    def readonly(self) -> bool:
        return "read-write" not in (self.packages_permission, self.orgs_permission)


GRANULAR_KEYS = ("packages", "packages_all", "scopes", "orgs", "packages_and_scopes_permission", "orgs_permission")


def token_grants(body: dict) -> TokenGrants | None:
    """The limits a token-create body asks for (npm 11 sends each key only when set), or None for a
    classic token, which may do whatever its user may. Checks the shape only; whether the names
    exist and belong to the user is the caller's next step."""
    if not any(body.get(key) not in (None, False, [], "") for key in GRANULAR_KEYS):
        return None
    packages = _name_list(body, "packages")
    scopes = [s.removeprefix("@") for s in _name_list(body, "scopes")]
    orgs = [o.removeprefix("@") for o in _name_list(body, "orgs")]
    packages_all = body.get("packages_all")
    if packages_all not in (None, True, False):
        raise BadRequest("packages_all must be true or false.")
    if packages_all and (packages or scopes):
        raise BadRequest("Give either packages_all or a list of packages and scopes, not both.")
    packages_permission = _permission(body, "packages_and_scopes_permission", bool(packages or scopes or packages_all),
                                      "packages and scopes")
    orgs_permission = _permission(body, "orgs_permission", bool(orgs), "organizations")
    if packages_permission == "no-access" and (packages or scopes):
        raise BadRequest("A token with no-access to packages cannot also list packages or scopes.")
    if orgs_permission == "no-access" and orgs:
        raise BadRequest("A token with no-access to organizations cannot also list organizations.")
    if packages_permission == orgs_permission == "no-access":
        raise BadRequest("This token would have no access to anything: give packages_and_scopes_permission "
                         "or orgs_permission.")
    return TokenGrants(packages or None, scopes or None, packages_permission, orgs or None, orgs_permission)


def _name_list(body: dict, key: str) -> list[str]:
    """A list of names from the body; npm sends a single value as a plain string."""
    value = body.get(key)
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 214 for v in value):
        raise BadRequest(f"{key} must be a list of names.")
    if len(value) > MAX_TOKEN_NAMES:
        raise BadRequest(f"A token may list at most {MAX_TOKEN_NAMES} {key}.")
    return list(dict.fromkeys(value))


def _permission(body: dict, key: str, selected: bool, what: str) -> str:
    value = body.get(key)
    if value is None:
        if selected:
            raise BadRequest(f'Say what the token may do with the {what} it lists: {key} "read-only" or '
                             '"read-write".')
        return "no-access"
    if value not in TOKEN_PERMISSIONS:
        raise BadRequest(f'{key} must be "read-only", "read-write" or "no-access".')
    return value


def expiry_problem(days: object) -> str | None:
    """Why ``days`` (npm's ``--expires``, in days) is not a valid token lifetime, if it is not."""
    if days is None:
        return None
    if not isinstance(days, int) or isinstance(days, bool):
        return "expires must be a whole number of days."
    if days < 1:
        return "expires must be at least 1 day: a token cannot expire in the past."
    if days > 3650:
        return "expires must be at most 3650 days."
    return None


def _json_list(values: list[str] | None) -> str | None:
    return orjson.dumps(values).decode() if values else None


async def issue_token(
    session: AsyncSession, user: User | Identity, *, kind: str = "session", readonly: bool = False,
    cidr_whitelist: object = None, name: str | None = None, expires_days: object = None, ip: str | None = None,
    description: object = None, grants: TokenGrants | None = None,
) -> tuple[Token, str]:
    user_id = user.user_id if isinstance(user, Identity) else user.id
    count = len((await session.execute(select(Token.id).where(Token.user_id == user_id))).all())
    if count >= MAX_TOKENS_PER_USER:
        raise Forbidden(f"Token limit reached ({MAX_TOKENS_PER_USER}); revoke unused tokens first.")
    problem = expiry_problem(expires_days)
    if problem:
        raise BadRequest(problem)
    expires = utcnow() + timedelta(days=expires_days) if expires_days is not None else None
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise BadRequest("Token name must be a string of at most 200 characters.")
    if description is not None and (not isinstance(description, str) or len(description) > 500):
        raise BadRequest("Token description must be a string of at most 500 characters.")
    raw = tokens.new_token()
    now = utcnow()
    cidrs = parse_cidrs(cidr_whitelist)
    token = Token(
        user_id=user_id, digest=tokens.digest(raw), prefix=raw[:10], name=name, kind=kind,
        readonly=readonly or (grants is not None and grants.readonly), description=description or None,
        cidr_whitelist=orjson.dumps(cidrs).decode() if cidrs else None, created=now, updated=now, expires=expires,
        last_ip=(ip or None) and ip[:64],
    )
    if grants is not None:
        token.packages, token.scopes = _json_list(grants.packages), _json_list(grants.scopes)
        token.orgs = _json_list(grants.orgs)
        token.packages_permission, token.orgs_permission = grants.packages_permission, grants.orgs_permission
    session.add(token)
    await session.flush()
    return token, raw


async def token_identity(session: AsyncSession, raw: str) -> tuple[Identity, Token] | None:
    """The identity a live user's token proves, and the token row — expired or not: the caller
    checks ``Token.expires`` on every use (it may cache this answer) and says why it refuses."""
    if not tokens.well_formed(raw):
        return None
    row = (await session.execute(
        select(Token, User).join(User, User.id == Token.user_id).where(Token.digest == tokens.digest(raw))
    )).first()
    if row is None:
        return None
    token, user = row
    if user.deleted is not None:
        return None
    ident = Identity(user.id, user.name, user.email, token.id, token.readonly, token.kind,
                     token_limits=_limits(token), org_limits=_org_limits(token), tfa_mode=tfa.active_mode(user))
    return ident, token


def expired(expires: datetime | None) -> bool:
    return expires is not None and expires <= utcnow()


async def identity_for_token(session: AsyncSession, raw: str) -> tuple[Identity, Token] | None:
    """Like :func:`token_identity`, but None for an expired token."""
    found = await token_identity(session, raw)
    if found is None or expired(found[1].expires):
        return None
    return found


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
    """A granular token's package limits (see :class:`Identity`); None for a classic token and for
    one granted read-write on every package."""
    permission = token.packages_permission or "read-write"
    if not token.packages and not token.scopes:
        if permission == "read-write":
            return None
        return ALL, frozenset(), permission
    packages = frozenset(orjson.loads(token.packages)) if token.packages else frozenset()
    scopes = frozenset(s.lstrip("@") for s in orjson.loads(token.scopes)) if token.scopes else frozenset()
    return packages, scopes, permission


def _org_limits(token: Token) -> tuple[frozenset, str] | None:
    """A granular token's org limits; None for a classic token (granular ones always store an
    ``orgs_permission``, "no-access" when they name no orgs)."""
    permission = token.orgs_permission or "read-write"
    if not token.orgs:
        if permission == "read-write":
            return None
        return ALL, permission
    return frozenset(o.lstrip("@") for o in orjson.loads(token.orgs)), permission


def is_granular(token: Token) -> bool:
    return token.packages_permission is not None or token.orgs_permission is not None


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
    """The user's tokens as `npm token list` shows them: browser sessions are not tokens."""
    result = await session.execute(
        select(Token).where(Token.user_id == user_id, Token.kind != "web").order_by(Token.id))
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
    """A token as `npm token list --json` shows it; a granular token's limits use the same keys
    as the create body, so what was asked for is what is listed."""
    data = {
        "token": raw if raw else token.prefix,  # npm adds the ellipsis, and matches revoke arguments on it
        "key": token.digest,
        "name": token.name,
        "description": token.description,
        "readonly": token.readonly,
        "automation": token.kind == "automation",
        "cidr_whitelist": orjson.loads(token.cidr_whitelist) if token.cidr_whitelist else None,
        "created": _iso(token.created),
        "updated": _iso(token.updated),
        "expires": _iso(token.expires) if token.expires else None,
        "granular": is_granular(token),
    }
    if is_granular(token):
        packages = orjson.loads(token.packages) if token.packages else None
        scopes = orjson.loads(token.scopes) if token.scopes else None
        data.update({
            "packages": packages, "scopes": scopes,
            "packages_all": packages is None and scopes is None and token.packages_permission != "no-access",
            "packages_and_scopes_permission": token.packages_permission,
            "orgs": orjson.loads(token.orgs) if token.orgs else None,
            "orgs_permission": token.orgs_permission,
        })
    return data


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
