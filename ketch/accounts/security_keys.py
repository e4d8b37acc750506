"""WebAuthn security keys as a second factor for website logins.

A key is registered from the security settings page (password, and one-time password when TOTP is
on, are asked first). At login, an account with keys may finish the second step with any of them.

Challenges are never trusted from the browser: a registration challenge is derived from a single-use
server secret (stored as a digest, 5 minutes) and a login challenge from the login's single-use
second-step secret, so each assertion is good for one login only. The relying party is the host
the browser is on (the public URL's host when one is configured), and the expected origin is that
URL's origin. A signature counter that does not grow is refused and recorded in the audit log
(``security-key:counter``), since it means a cloned authenticator.

Keys are web-only: the npm command line keeps asking for TOTP codes (``npm-otp``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import orjson
from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request
from webauthn import (generate_authentication_options, generate_registration_options, options_to_json,
                      verify_authentication_response, verify_registration_response)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, AuthenticatorTransport,
                                      PublicKeyCredentialDescriptor, ResidentKeyRequirement,
                                      UserVerificationRequirement)

from ketch.accounts import audit, links
from ketch.accounts.auth import origin
from ketch.accounts.models import EmailToken, User
from ketch.accounts.tokens import short_digest
from ketch.context import base_url, ctx
from ketch.db.base import Base, UTCDateTime, utcnow
from ketch.http.errors import ApiError, BadRequest

MAX_KEYS = 10
REGISTER_PURPOSE = "webauthn-reg"
REGISTER_TTL = timedelta(minutes=5)
MAX_CREDENTIAL_JSON = 16_000
RP_NAME = "Ketch"
KEY_REFUSED = "That security key did not sign in. Try again, or use a code from your authenticator app."


class SecurityKey(Base):
    """A WebAuthn credential of a user (public key and signature counter; no secret is stored)."""

    __tablename__ = "security_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[str] = mapped_column(Text)  # base64url COSE key
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    name: Mapped[str] = mapped_column(String(100))
    transports: Mapped[str | None] = mapped_column(String(200))  # JSON list
    created: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def relying_party(request: Request) -> tuple[str, str]:
    """(RP ID, expected origin) for this request: the site's host and origin."""
    parts = urlsplit(base_url(request))
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


async def list_keys(session: AsyncSession, user_id: int) -> list[SecurityKey]:
    rows = await session.execute(select(SecurityKey).where(SecurityKey.user_id == user_id).order_by(SecurityKey.id))
    return list(rows.scalars())


def _descriptors(keys: list[SecurityKey]) -> list[PublicKeyCredentialDescriptor]:
    out = []
    for key in keys:
        transports = [AuthenticatorTransport(t) for t in orjson.loads(key.transports or "[]")
                      if t in {x.value for x in AuthenticatorTransport}]
        out.append(PublicKeyCredentialDescriptor(id=unb64url(key.credential_id), transports=transports or None))
    return out


def _challenge(kind: str, secret: str) -> bytes:
    return hashlib.sha256(f"{kind}:{secret}".encode()).digest()


# -- registration -------------------------------------------------------------------------------

async def start_registration(request: Request, user: User) -> tuple[str, str]:
    """(single-use secret for the form, creation options JSON for navigator.credentials.create)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    async with ctx(request).db.write() as session:
        session.add(EmailToken(user_id=user.id, purpose=REGISTER_PURPOSE, digest=short_digest(raw), email="",
                               created=now, expires=now + REGISTER_TTL))
        keys = await list_keys(session, user.id)
    rp_id, _ = relying_party(request)
    options = generate_registration_options(
        rp_id=rp_id, rp_name=RP_NAME, user_name=user.name, user_id=user.id.to_bytes(8, "big"),
        user_display_name=user.fullname or user.name, challenge=_challenge("register", raw),
        exclude_credentials=_descriptors(keys),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED, user_verification=UserVerificationRequirement.DISCOURAGED),
    )
    return raw, options_to_json(options)


async def finish_registration(request: Request, user: User, raw: str, credential: str, name: str) -> SecurityKey:
    name = " ".join(name.split())[:100] or "Security key"
    if not credential or len(credential) > MAX_CREDENTIAL_JSON:
        raise BadRequest("Your browser sent no security key; try again.")
    rp_id, expected_origin = relying_party(request)
    async with ctx(request).db.write() as session:
        token, owner = await links.consume(session, raw, REGISTER_PURPOSE)
        if owner.id != user.id:
            raise BadRequest(links.INVALID)
        if len(await list_keys(session, user.id)) >= MAX_KEYS:
            raise BadRequest(f"An account may have at most {MAX_KEYS} security keys.")
        try:
            verified = verify_registration_response(
                credential=credential, expected_challenge=_challenge("register", raw), expected_rp_id=rp_id,
                expected_origin=expected_origin, require_user_verification=False)
        except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as e:
            raise BadRequest(f"The security key could not be registered: {str(e)[:200]}") from None
        credential_id = b64url(verified.credential_id)
        taken = await session.execute(select(SecurityKey.id).where(SecurityKey.credential_id == credential_id))
        if taken.first() is not None:
            raise BadRequest("This security key is already registered.")
        try:
            transports = orjson.loads(credential).get("response", {}).get("transports") or []
        except (orjson.JSONDecodeError, AttributeError):
            transports = []
        transports = [t for t in transports if isinstance(t, str)][:8]
        key = SecurityKey(user_id=user.id, credential_id=credential_id, public_key=b64url(verified.credential_public_key),
                          sign_count=verified.sign_count, name=name,
                          transports=orjson.dumps(transports).decode() if transports else None, created=utcnow())
        session.add(key)
        await session.flush()
        await audit.record(session, "security-key:added", actor=user, origin=origin(request),
                           details={"key": key.id, "name": name})
    return key


async def remove_key(request: Request, user: User, key_id: int) -> str:
    async with ctx(request).db.write() as session:
        key = await session.get(SecurityKey, key_id)
        if key is None or key.user_id != user.id:
            raise ApiError(404, "No such security key.")
        await session.execute(delete(SecurityKey).where(SecurityKey.id == key.id))
        await audit.record(session, "security-key:removed", actor=user, origin=origin(request),
                           details={"key": key.id, "name": key.name})
    return key.name


# -- login --------------------------------------------------------------------------------------

def login_options(request: Request, step: str, keys: list[SecurityKey]) -> str:
    """Request options JSON for navigator.credentials.get, bound to this login's step secret."""
    rp_id, _ = relying_party(request)
    options = generate_authentication_options(rp_id=rp_id, challenge=_challenge("login", step),
                                              allow_credentials=_descriptors(keys),
                                              user_verification=UserVerificationRequirement.DISCOURAGED)
    return options_to_json(options)


async def verify_login(request: Request, user: User, step: str, assertion: str) -> None:
    """Check an assertion for ``user``'s login ``step``; raise 401 when it does not hold."""
    if len(assertion) > MAX_CREDENTIAL_JSON:
        raise ApiError(401, KEY_REFUSED)
    try:
        credential_id = orjson.loads(assertion)["rawId"]
        if not isinstance(credential_id, str):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise ApiError(401, KEY_REFUSED) from None
    rp_id, expected_origin = relying_party(request)
    async with ctx(request).db.write() as session:
        key = (await session.execute(select(SecurityKey).where(
            SecurityKey.credential_id == credential_id, SecurityKey.user_id == user.id))).scalar_one_or_none()
        if key is None:
            raise ApiError(401, KEY_REFUSED)
        try:
            verified = verify_authentication_response(
                credential=assertion, expected_challenge=_challenge("login", step), expected_rp_id=rp_id,
                expected_origin=expected_origin, credential_public_key=unb64url(key.public_key),
                credential_current_sign_count=key.sign_count, require_user_verification=False)
        except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as e:
            if "sign count" in str(e).lower():
                await audit.record(session, "security-key:counter", actor=user, origin=origin(request),
                                   details={"key": key.id, "name": key.name})
            else:
                raise ApiError(401, KEY_REFUSED) from None
        else:
            key.sign_count = verified.new_sign_count
            key.last_used = utcnow()
            return
    raise ApiError(401, KEY_REFUSED + " (Its signature counter went backwards: it may have been copied.)")
