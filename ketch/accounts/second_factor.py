"""Checking the one-time password a request carries (``npm-otp``), with throttling and audit.

npm reacts to ``401`` + ``www-authenticate: OTP`` by asking for a code and repeating the request
with ``npm-otp`` (protocol §1.6); without a terminal it fails with EOTP and tells the user about
``--otp``. A wrong code gets the same challenge. Wrong codes are counted per account and per IP
(``otp_rate_limit``); past the budget every attempt, right or wrong, is a 429 with Retry-After.
"""

from __future__ import annotations

from sqlalchemy import select

from ketch.accounts import audit, throttle
from ketch.accounts.audit import Origin
from ketch.accounts.models import User
from ketch.accounts.tfa import Accepted, accept_code
from ketch.context import Context
from ketch.http.errors import ApiError

OTP_REQUIRED = "This operation requires a one-time password from your authenticator app " \
               "(npm asks for it, or pass --otp=<code>)."
OTP_INVALID = "The one-time password is incorrect or was already used."


def challenge(error: str = OTP_REQUIRED) -> ApiError:
    return ApiError(401, error, headers={"www-authenticate": "OTP"})


async def check(c: Context, user_id: int, code: str | None, credential: str | None, origin: Origin) -> Accepted:
    """Accept and spend ``code`` for the user, or raise the OTP challenge (401) / 429."""
    if not code:
        raise challenge()
    await throttle.check_otp(c.db, c.settings, user_id, origin.ip)
    async with c.db.write() as session:
        user = (await session.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
        accepted = None
        if user is not None and user.deleted is None:
            accepted = await accept_code(session, c.db.is_sqlite, user, code, credential)
        if accepted is not None and accepted.kind == "recovery":
            await audit.record(session, "recovery_codes:used", actor=user, origin=origin)
    if accepted is None:
        await throttle.otp_failed(c.db, c.settings, user_id, origin.ip)
        raise challenge(OTP_INVALID)
    return accepted
