"""Strict SemVer 2.0.0 versions for the registry, on top of python-semver.

Stricter than ``semver.Version.parse`` in a few ways that match node-semver's
strict mode: at most 256 characters, ASCII only, and every numeric part (major,
minor, patch and numeric pre-release identifiers) at most ``Number.MAX_SAFE_INTEGER``
so that precedence here and in JavaScript clients cannot disagree.
No leading ``v`` or ``=``, no whitespace: clients clean those before publishing.

Pre-checks are linear and bound the input, so the regex in python-semver only ever
sees short, plain ASCII strings.
"""

from __future__ import annotations

import functools

import string
from collections.abc import Iterable

import semver

__all__ = [
    "MAX_LENGTH",
    "MAX_SAFE_INTEGER",
    "InvalidVersion",
    "is_prerelease",
    "max_version",
    "parse_version",
    "sort_versions",
    "version_key",
]

MAX_LENGTH = 256
MAX_SAFE_INTEGER = 9007199254740991  # 2**53 - 1, node-semver's limit
_MAX_SAFE_DIGITS = len(str(MAX_SAFE_INTEGER))
_ALLOWED = frozenset(string.ascii_letters + string.digits + ".-+")


class InvalidVersion(ValueError):
    """A version string that is not strict SemVer 2.0.0."""


def _invalid(v: object, why: str) -> InvalidVersion:
    shown = repr(v) if not isinstance(v, str) or len(v) <= 64 else repr(v[:64] + "…")
    return InvalidVersion(f"Invalid version {shown}: {why}")


def _check_number(v: str, part: str) -> None:
    # Compare digit counts before int() so huge inputs never reach int conversion.
    if len(part) > _MAX_SAFE_DIGITS or int(part) > MAX_SAFE_INTEGER:
        raise _invalid(v, f"numeric part {part[:20]} is larger than {MAX_SAFE_INTEGER}")


def parse_version(v: str) -> semver.Version:
    """Parse a strict SemVer 2.0.0 string or raise :class:`InvalidVersion`."""
    if isinstance(v, str) and len(v) <= MAX_LENGTH:
        return _parse_cached(v)
    return _parse(v)


@functools.lru_cache(maxsize=16384)
def _parse_cached(v: str) -> semver.Version:
    # Every write re-sorts all of a package's versions; the strings repeat from write to write.
    # semver.Version is immutable, so sharing one parsed object is safe.
    return _parse(v)


def _parse(v: str) -> semver.Version:
    if not isinstance(v, str):
        raise _invalid(v, "must be a string")
    if not v:
        raise _invalid(v, "must not be empty")
    if len(v) > MAX_LENGTH:
        raise _invalid(v, f"longer than {MAX_LENGTH} characters")
    if v[0] in "vV=":
        raise _invalid(v, 'must not start with "v" or "="')
    bad = next((c for c in v if c not in _ALLOWED), None)
    if bad is not None:
        raise _invalid(v, f"character {bad!r} is not allowed")
    try:
        parsed = semver.Version.parse(v)
    except ValueError:
        raise _invalid(
            v, "not valid SemVer 2.0.0 (expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])"
        ) from None

    core, _, rest = v.partition("+")[0].partition("-")
    for part in core.split("."):
        _check_number(v, part)
    if rest:
        for ident in rest.split("."):
            if ident.isdigit():
                _check_number(v, ident)
    return parsed


def version_key(v: str) -> str:
    """Canonical identity of *v*, ignoring build metadata: ``1.0.0+b.1`` -> ``1.0.0``."""
    return str(parse_version(v).replace(build=None))


def is_prerelease(v: str) -> bool:
    return parse_version(v).prerelease is not None


def sort_versions(vs: Iterable[str]) -> list[str]:
    """Sort ascending by SemVer precedence; equal precedence (builds) keeps input order.

    Raises :class:`InvalidVersion` if any item is invalid.
    """
    keyed = [(parse_version(v), v) for v in vs]
    keyed.sort(key=lambda pair: pair[0])  # list.sort is stable; Version ignores build in comparisons
    return [v for _, v in keyed]


def max_version(vs: Iterable[str], include_prerelease: bool = False) -> str | None:
    """Highest version in *vs*, or ``None`` if *vs* is empty.

    Releases win: the highest non-prerelease is returned, unless *include_prerelease*
    is true or there is no release at all, in which case the highest version of any
    kind is returned. Among equal precedence (builds) the first one seen wins.
    Raises :class:`InvalidVersion` if any item is invalid.
    """
    best: tuple[semver.Version, str] | None = None
    best_release: tuple[semver.Version, str] | None = None
    for v in vs:
        parsed = parse_version(v)
        if best is None or parsed > best[0]:
            best = (parsed, v)
        if parsed.prerelease is None and (best_release is None or parsed > best_release[0]):
            best_release = (parsed, v)
    if best_release is not None and not include_prerelease:
        return best_release[1]
    return best[1] if best is not None else None
