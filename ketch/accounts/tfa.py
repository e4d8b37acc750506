"""Two-factor authentication: TOTP (RFC 6238, 30 s steps, 6 digits) and single-use recovery codes.

What npm sends as ``npm-otp`` is either a TOTP code or one of the user's recovery codes (64 hex
characters, the other form npm's OTP prompt accepts). A code is accepted for the current step and
one step either side. Replays are refused: a step at or below ``User.tfa_last_counter`` is spent —
except for the one credential (token) that spent it, because ``npm <cmd> --otp=<code>`` sends the
same code with every request of one command (e.g. unpublish = PUT + DELETE). Which credential spent
which step is kept in the shared rate-counter table (``otp-use:<user>:<credential>``, window = the
step's start time), so every node agrees and rows age out with the other counters.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from ketch.accounts.models import RateCounter, RecoveryCode, User
from ketch.db.base import utcnow

STEP = 30
DIGITS = 6
RECOVERY_CODES = 10
ISSUER = "Ketch"
MODES = ("auth-only", "auth-and-writes")
_TOTP_CODE = re.compile(r"^\d{6}$")
_RECOVERY_CODE = re.compile(r"^[0-9a-f]{64}$")


def active_mode(user: User) -> str | None:
    """The user's 2FA mode once set up (a pending setup protects nothing yet), else None."""
    return user.tfa_mode if user.tfa_mode in MODES and not user.tfa_pending and user.tfa_secret else None


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, base32 as authenticator apps expect


def otpauth_url(secret: str, username: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(name=username, issuer_name=ISSUER)


def normalise(code: object) -> str:
    return re.sub(r"\s+", "", code).lower() if isinstance(code, str) else ""


def totp_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The step (±1 around now) whose TOTP is ``code``, or None. Constant-time comparisons."""
    if not _TOTP_CODE.match(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int((time.time() if now is None else now) // STEP)
    found = None
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def recovery_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    return [secrets.token_hex(32) for _ in range(RECOVERY_CODES)]


async def replace_recovery_codes(session: AsyncSession, user: User) -> list[str]:
    """Issue a fresh set of codes (the old ones stop working); only digests are stored."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = new_recovery_codes()
    now = utcnow()
    session.add_all([RecoveryCode(user_id=user.id, digest=recovery_digest(c), created=now) for c in codes])
    return codes


async def drop_recovery_codes(session: AsyncSession, user_id: int) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


@dataclass(frozen=True)
class Accepted:
    kind: str  # "totp" | "recovery"
    step: int | None = None


async def accept_code(session: AsyncSession, is_sqlite: bool, user: User, code: object,
                      credential: str | None) -> Accepted | None:
    """Check ``code`` for ``user`` (whose row this transaction should hold locked) and spend it.

    ``credential`` names what presented the code (a token id, "basic"); None for one-shot logins.
    """
    code = normalise(code)
    if not code or not active_mode(user):
        return None
    if _RECOVERY_CODE.match(code):
        result = await session.execute(
            update(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used.is_(None),
                                       RecoveryCode.digest == recovery_digest(code)).values(used=utcnow()))
        return Accepted("recovery") if result.rowcount == 1 else None
    step = totp_step(user.tfa_secret, code)
    if step is None:
        return None
    key = f"otp-use:{user.id}:{credential}" if credential else None
    if user.tfa_last_counter is None or step > user.tfa_last_counter:
        result = await session.execute(
            update(User).where(User.id == user.id)
            .where((User.tfa_last_counter.is_(None)) | (User.tfa_last_counter < step))
            .values(tfa_last_counter=step))
        if result.rowcount != 1:
            return None  # a concurrent request spent this step first
        set_committed_value(user, "tfa_last_counter", step)
        if key:
            insert = sqlite_insert if is_sqlite else pg_insert
            await session.execute(insert(RateCounter).values(key=key[:200], window=step * STEP, count=1)
                                  .on_conflict_do_nothing(index_elements=["key", "window"]))
        return Accepted("totp", step)
    if key:
        again = await session.execute(select(RateCounter.count).where(
            RateCounter.key == key[:200], RateCounter.window == step * STEP))
        if again.scalar_one_or_none() is not None:
            return Accepted("totp", step)  # the same credential re-sending its code (one npm command)
    return None


def confirm_setup(user: User, code: object) -> int | None:
    """The step of a correct first code for a pending setup, else None."""
    if not user.tfa_pending or not user.tfa_secret:
        return None
    return totp_step(user.tfa_secret, normalise(code))
