"""Throttling policy for logins, sign-ups, one-time passwords and account emails.

Counters are the shared fixed-window ones of :mod:`ketch.accounts.ratelimit`, so every node counts
the same attempts. Logins and OTPs count *failures* only: each attempt is first checked against
the budget (over it: 429 + Retry-After, even with the right password), and only a failure spends
budget. Keys are per account and per client IP; the account key is the submitted name, whether or
not it exists, so the answer never tells which names are accounts.

Per-IP keys need a real IP address (in-process test clients have none). Sign-ups from the
loopback address are not limited per IP: they come from the registry machine itself — its
operator's tooling, or a reverse proxy that hides client addresses, where one per-IP budget would
be shared by everybody.
"""

from __future__ import annotations

import ipaddress
import time

from ketch.accounts import ratelimit
from ketch.accounts.ratelimit import RateLimited
from ketch.config import Settings

LOGIN_WINDOW = 300
OTP_WINDOW = 300
SIGNUP_WINDOW = 3600
# Account emails (verification links, reset links): per account and per IP.
VERIFY_MAILS = (5, 6 * 3600)
RESET_MAILS = (5, 24 * 3600)
MAIL_REQUESTS_PER_IP = (20, 3600)


def ip_key(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(ip or ""))
    except ValueError:
        return None


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback


async def _refuse_if_over(db, key: str, limit: int, window: int, what: str) -> None:
    if limit > 0 and await ratelimit.peek(db, key, window) >= limit:
        now = int(time.time())
        raise RateLimited(now - now % window + window - now, what)


def _login_keys(name: str, ip: str | None) -> list[str]:
    keys = [f"login:user:{str(name).lower()[:150]}"]
    if ip_key(ip):
        keys.append(f"login:ip:{ip_key(ip)}")
    return keys


async def check_login(db, settings: Settings, name: str, ip: str | None) -> None:
    """Before checking a password: 429 once this account or IP used up its failures."""
    for key in _login_keys(name, ip):
        await _refuse_if_over(db, key, settings.login_rate_limit, LOGIN_WINDOW, "login attempts")


async def login_failed(db, settings: Settings, name: str, ip: str | None) -> None:
    for key in _login_keys(name, ip):
        await ratelimit.hit(db, key, settings.login_rate_limit, LOGIN_WINDOW, "login attempts")


def _otp_keys(settings: Settings, user_id: int, ip: str | None) -> list[tuple[str, int]]:
    keys = [(f"otp:user:{user_id}", settings.otp_rate_limit)]
    if ip_key(ip):
        keys.append((f"otp:ip:{ip_key(ip)}", settings.login_rate_limit))
    return keys


async def check_otp(db, settings: Settings, user_id: int, ip: str | None) -> None:
    for key, limit in _otp_keys(settings, user_id, ip):
        await _refuse_if_over(db, key, limit, OTP_WINDOW, "one-time password attempts")


async def otp_failed(db, settings: Settings, user_id: int, ip: str | None) -> None:
    for key, limit in _otp_keys(settings, user_id, ip):
        await ratelimit.hit(db, key, limit, OTP_WINDOW, "one-time password attempts")


async def signup(db, settings: Settings, ip: str | None) -> None:
    """Count one sign-up against the client's IP (429 beyond ``signup_rate_limit`` per hour)."""
    key = ip_key(ip)
    if key and not _is_loopback(key):
        await ratelimit.hit(db, f"signup:ip:{key}", settings.signup_rate_limit, SIGNUP_WINDOW, "sign-ups")


async def mail(db, kind: str, account: str, ip: str | None) -> None:
    """Count one emailed link of ``kind`` ("verify" | "reset") for ``account`` and the client IP."""
    limit, window = VERIFY_MAILS if kind == "verify" else RESET_MAILS
    await ratelimit.hit(db, f"mail:{kind}:{account.lower()[:150]}", limit, window, "emails")
    if ip_key(ip):
        limit, window = MAIL_REQUESTS_PER_IP
        await ratelimit.hit(db, f"mail:ip:{ip_key(ip)}", limit, window, "email requests")
