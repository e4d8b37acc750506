"""Who is calling: resolves the Authorization header into an :class:`Identity`.

Tokens are high-entropy, so they are looked up by digest (no slow hash per request) and the
decision is cached for one second per process — revocation reaches every node within that second.
Basic credentials cost an argon2 verification, cached for a few seconds under a digest of the pair.
"""

from __future__ import annotations

import base64
import binascii
import time

from starlette.requests import Request

from ketch.accounts import services
from ketch.accounts.audit import Origin
from ketch.accounts.services import Identity
from ketch.accounts.tokens import short_digest
from ketch.context import ctx
from ketch.http.errors import ApiError, Forbidden, Unauthorized

TOKEN_TTL = 1.0
BASIC_TTL = 5.0
_MAX_CACHE = 10_000
_ANON = object()


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


async def require_writer(request: Request, action: str = "do that") -> Identity:
    ident = await require_user(request, action)
    if ident.readonly:
        raise Forbidden("This token is read-only and cannot be used to make changes.")
    return ident


async def require_org_writer(request: Request, org: str) -> Identity:
    """A caller who may change organisation ``org`` as far as their token is concerned
    (whether their role allows the change is the orgs service's decision)."""
    ident = await require_writer(request, "manage organisations")
    if ident.org_limits is not None:
        orgs, permission = ident.org_limits
        if org not in orgs or permission != "read-write":
            raise Forbidden(f"This token may not manage the @{org} organisation.")
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
            found = await services.identity_for_token(session, raw)
        entry = (found[0], found[1].cidr_whitelist) if found else False
        _store(cache, key, entry, TOKEN_TTL)
    if entry is False:
        return invalid
    ident, cidrs = entry
    if not services.ip_allowed(cidrs, client_ip(request)):
        return _Invalid(ApiError(401, "This token may not be used from your IP address.",
                                 headers={"www-authenticate": "ipaddress"}))
    return ident


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
        entry = Identity(user.id, user.name, user.email) if user else False
        _store(cache, key, entry, BASIC_TTL)
    return entry if entry else invalid
