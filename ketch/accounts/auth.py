"""Who is calling: resolves the Authorization header into an :class:`Identity`, and the OTP rules.

Tokens are high-entropy, so they are looked up by digest (no slow hash per request) and the
decision is cached for one second per process — revocation reaches every node within that second.
Basic credentials cost an argon2 verification, cached for a few seconds under a digest of the pair;
for an account with two-factor authentication they also need a valid ``npm-otp`` on each request.

A token's last use (time and IP) is written at most once a minute per token, or sooner when it
shows up from a new IP address, which is also an audit event (``token:used-from-new-ip``).

Tokens may expire (checked on every use: 401 saying so) and may be limited to CIDR ranges (401 with
``www-authenticate: ipaddress``, which npm shows as EAUTHIP). Granular tokens carry their package and
org limits in the :class:`Identity`; :mod:`ketch.registry.access` applies them.

Two-factor rules (npm's documented modes): ``auth-only`` asks for a code at login, token creation,
password, profile and 2FA changes (the account routes call :func:`require_otp` for those);
``auth-and-writes`` also for every write, which :func:`require_writer` enforces through
:func:`require_write_otp`. Automation tokens (``npm token create --bypass-2fa``) skip the write rule.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from datetime import timedelta

from starlette.requests import Request

from ketch.accounts import audit, second_factor, services
from ketch.accounts.audit import Origin
from ketch.accounts.services import Identity
from ketch.accounts.tokens import short_digest
from ketch.context import ctx
from ketch.db.base import utcnow
from ketch.http.errors import ApiError, Forbidden, Unauthorized

log = logging.getLogger("ketch.auth")
TOKEN_TTL = 1.0
BASIC_TTL = 5.0
TOUCH_INTERVAL = 60.0  # seconds between writes of a token's last use
_MAX_CACHE = 10_000
_ANON = object()
OTP_OK = "ketch.otp_ok"
_background: set[asyncio.Task] = set()


class _Invalid:
    def __init__(self, error: ApiError):
        self.error = error


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def origin(request: Request) -> Origin:
    """The request's IP and user agent, for the audit log."""
    return Origin(client_ip(request), request.headers.get("user-agent"))


async def identify(request: Request) -> Identity | None:
    """The caller's identity, None when anonymous. Bad credentials are anonymous here;
    :func:`require_user` turns them into the 401 npm understands."""
    got = request.scope.get("ketch.identity", _ANON)
    if got is _ANON:
        got = await _resolve(request)
        request.scope["ketch.identity"] = got
    return got if isinstance(got, Identity) else None


async def require_user(request: Request, action: str = "do that") -> Identity:
    await identify(request)
    got = request.scope.get("ketch.identity")
    if isinstance(got, _Invalid):
        raise got.error
    if got is None:
        raise Unauthorized(f"You must be logged in to {action}.")
    return got


async def require_writer(request: Request, action: str = "do that", otp_exempt: bool = False,
                         account: bool = False) -> Identity:
    """A caller who may change things: not a read-only token and, for ``auth-and-writes`` accounts,
    with a valid one-time password (unless ``otp_exempt``: star/unstar, non-latest dist-tags).
    ``account`` changes (profile, email, token revocation) also refuse granular tokens: a token
    limited to one package must not be able to take over the account, e.g. by changing its email."""
    ident = await require_user(request, action)
    if ident.readonly:
        raise Forbidden("This token is read-only and cannot be used to make changes.")
    if account and is_granular(ident):
        raise Forbidden(f"This token is limited to some packages or organizations and cannot be used to {action}.")
    if not otp_exempt:
        await require_write_otp(request, ident)
    return ident


def is_granular(ident: Identity) -> bool:
    return ident.token_limits is not None or ident.org_limits is not None


async def require_otp(request: Request, ident: Identity, reason: str, *, allow_automation: bool = True) -> None:
    """Raise npm's OTP challenge (401 + ``www-authenticate: OTP``) unless the request carries a
    valid ``npm-otp`` for this user. Automation tokens pass when ``allow_automation`` (a package
    with ``mfa=publish`` passes False: only ``mfa=automation`` lets them through). A user without
    two-factor authentication cannot produce a code: 403 telling them to turn it on.
    A code is checked (and spent) once per request, however many callers ask."""
    if request.scope.get(OTP_OK) == ident.user_id:
        return
    if allow_automation and ident.kind == "automation":
        return
    if not ident.tfa_mode:
        raise Forbidden(f"Two-factor authentication is required to {reason}. "
                        "Turn it on with `npm profile enable-2fa auth-and-writes`.")
    credential = str(ident.token_id) if ident.token_id is not None else "basic"
    await second_factor.check(ctx(request), ident.user_id, request.headers.get("npm-otp"), credential,
                              origin(request))
    request.scope[OTP_OK] = ident.user_id


async def require_write_otp(request: Request, ident: Identity) -> None:
    """The ``auth-and-writes`` rule: writes need a one-time password (automation tokens excepted)."""
    if ident.tfa_mode == "auth-and-writes" and ident.kind != "automation":
        await require_otp(request, ident, "make changes")


async def require_org_writer(request: Request, org: str) -> Identity:
    """A caller who may change organisation ``org`` as far as their token is concerned
    (whether their role allows the change is the orgs service's decision)."""
    ident = await require_writer(request, "manage organisations")
    if ident.org_limits is not None:
        orgs, permission = ident.org_limits
        if org not in orgs or permission != "read-write":
            raise Forbidden(f"This token may not manage the @{org} organisation.")
    return ident


async def require_org_reader(request: Request, org: str, action: str) -> Identity:
    """A caller whose token may read organisation ``org``'s members and teams (granular tokens
    need the org in their list, or all orgs, with read-only or read-write)."""
    ident = await require_user(request, action)
    if ident.org_limits is not None:
        orgs, permission = ident.org_limits
        if org not in orgs or permission == "no-access":
            raise Forbidden(f"This token may not read the @{org} organisation.")
    return ident


async def _resolve(request: Request):
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, cred = header.strip().partition(" ")
    scheme = scheme.lower()
    cred = cred.strip()
    if scheme == "bearer":
        return await _bearer(request, cred)
    if scheme == "basic":
        return await _basic(request, cred)
    return _Invalid(Unauthorized("Unsupported authorization scheme.", scheme="Bearer"))


def _cache(request: Request) -> dict:
    return ctx(request).caches.setdefault("auth", {})


def _cached(cache: dict, key: str):
    hit = cache.get(key)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    return None


def _store(cache: dict, key: str, value, ttl: float) -> None:
    if len(cache) >= _MAX_CACHE:
        cache.clear()
    cache[key] = (time.monotonic() + ttl, value)


async def _bearer(request: Request, raw: str):
    invalid = _Invalid(Unauthorized("Unable to authenticate: your token is invalid, expired or revoked. "
                                    "Run `npm login` again.", scheme="Bearer"))
    if len(raw) > 200:
        return invalid
    cache = _cache(request)
    key = "t:" + raw
    entry = _cached(cache, key)
    if entry is None:
        async with ctx(request).db.read() as session:
            found = await services.token_identity(session, raw)
        entry = (found[0], found[1].cidr_whitelist, found[1].last_ip, found[1].last_used,
                 found[1].expires) if found else False
        _store(cache, key, entry, TOKEN_TTL)
    if entry is False:
        return invalid
    ident, cidrs, last_ip, last_used, expires = entry
    if services.expired(expires):  # checked on every use, not only when the cache is filled
        return _Invalid(Unauthorized(f"This token expired on {services._iso(expires)}. Create a new one with "
                                     "`npm token create`, or run `npm login` again.", scheme="Bearer"))
    if not services.ip_allowed(cidrs, client_ip(request)):
        return _Invalid(ApiError(401, "This token may not be used from your IP address.",
                                 headers={"www-authenticate": "ipaddress"}))
    await _note_use(request, ident, last_ip, last_used)
    return ident


async def _note_use(request: Request, ident: Identity, last_ip: str | None, last_used) -> None:
    """Keep Token.last_used/last_ip current to the minute; audit a use from a new IP. The write
    runs in the background: a request never waits for this bookkeeping."""
    ip = client_ip(request)
    uses = ctx(request).caches.setdefault("token-uses", {})
    now = time.monotonic()
    seen = uses.get(ident.token_id)
    if seen is not None and seen[1] == ip and now - seen[0] < TOUCH_INTERVAL:
        return
    if len(uses) >= _MAX_CACHE:
        uses.clear()
    uses[ident.token_id] = (now, ip)
    if last_ip == ip and last_used is not None and (utcnow() - last_used).total_seconds() < TOUCH_INTERVAL:
        return
    task = asyncio.get_running_loop().create_task(_touch(ctx(request), ident, origin(request), last_ip))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _touch(c, ident: Identity, where: Origin, last_ip: str | None) -> None:
    try:
        async with c.db.write() as session:
            changed = await services.touch_token(session, ident.token_id, where.ip,
                                                 timedelta(seconds=TOUCH_INTERVAL))
            if changed and last_ip and where.ip and last_ip != where.ip:
                await audit.record(session, "token:used-from-new-ip", actor=ident, origin=where,
                                   details={"token": ident.token_id, "previous_ip": last_ip})
    except Exception as e:  # noqa: BLE001 - bookkeeping must never surface as an error
        log.warning("could not record the use of token %s: %s", ident.token_id, type(e).__name__)


async def _basic(request: Request, cred: str):
    invalid = _Invalid(Unauthorized("Incorrect username or password.", scheme="Basic"))
    if len(cred) > 2048:
        return invalid
    try:
        name, sep, password = base64.b64decode(cred, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return invalid
    if not sep:
        return invalid
    cache = _cache(request)
    key = "b:" + short_digest(cred)
    entry = _cached(cache, key)
    if entry is None:
        async with ctx(request).db.read() as session:
            user = await services.authenticate(session, name, password)
        entry = services.password_identity(user) if user else False
        _store(cache, key, entry, BASIC_TTL)
    if not entry:
        return invalid
    if entry.tfa_mode:  # a password alone is not enough for a two-factor account
        try:
            await second_factor.check(ctx(request), entry.user_id, request.headers.get("npm-otp"), "basic",
                                      origin(request))
        except ApiError as e:
            return _Invalid(e)
        request.scope[OTP_OK] = entry.user_id
    return entry
