"""API token format and digests (pure).

A token is ``ketch_`` + 40 base62 characters of randomness + a 6-character CRC32 checksum, so a
leaked token is recognisable by secret scanners and a mistyped one is rejected without a database
lookup. Only ``digest(token)`` (SHA-512 hex, which npm calls the token's "key") is stored.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib

PREFIX = "ketch_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY = 40
_CHECK = 6


def _b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def new_token() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_BODY))
    return PREFIX + body + _b62(zlib.crc32(body.encode()), _CHECK)


def well_formed(token: str) -> bool:
    if len(token) != len(PREFIX) + _BODY + _CHECK or not token.startswith(PREFIX):
        return False
    body, check = token[len(PREFIX):-_CHECK], token[-_CHECK:]
    if any(c not in _ALPHABET for c in body):
        return False
    return secrets.compare_digest(_b62(zlib.crc32(body.encode()), _CHECK), check)


def digest(token: str) -> str:
    return hashlib.sha512(token.encode()).hexdigest()


def short_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
