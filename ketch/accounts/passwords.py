"""Password hashing with argon2id; verification runs off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verified against when the user does not exist, so unknown users cost the same time as wrong passwords.
# Made on first use: an argon2 hash at import time costs every process start (server workers, fsck, …)
# about a second of CPU.
_DUMMY: str | None = None

MIN_LENGTH = 8
MAX_LENGTH = 1024


def _dummy() -> str:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = _hasher.hash("ketch-dummy-password")
    return _DUMMY


def _verify(hashed: str | None, password: str) -> bool:
    try:
        return _hasher.verify(hashed or _dummy(), password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(hashed: str | None, password: str) -> bool:
    ok = await asyncio.to_thread(_verify, hashed, password)
    return ok and hashed is not None


def password_problem(password: object, username: str) -> str | None:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        return f"Password must be at least {MIN_LENGTH} characters long."
    if len(password) > MAX_LENGTH:
        return "Password is too long."
    if password.lower() == username.lower():
        return "Password must not be the same as the username."
    return None
