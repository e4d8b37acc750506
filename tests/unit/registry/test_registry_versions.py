import time

import pytest
import semver

from ketch.registry.versions import (
    MAX_SAFE_INTEGER,
    InvalidVersion,
    is_prerelease,
    max_version,
    parse_version,
    sort_versions,
    version_key,
)

VALID = [
    "0.0.0",
    "1.0.0",
    "1.2.3",
    "10.20.30",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-0.3.7",
    "1.0.0-x.7.z.92",
    "1.0.0-x-y-z.--",
    "1.0.0--",
    "1.0.0-alpha+001",
    "1.0.0+20130313144700",
    "1.0.0-beta+exp.sha.5114f85",
    "1.0.0+21AF26D3----117B344092BD",
    "1.0.0-rc.1+build.1",
    "1.0.0+build.01",  # leading zeros are fine in build metadata
    "1.0.0-0a",
    f"{MAX_SAFE_INTEGER}.{MAX_SAFE_INTEGER}.{MAX_SAFE_INTEGER}",
    f"1.0.0-{MAX_SAFE_INTEGER}",
    "1.0.0-" + "a" * 250,  # exactly 256 characters
]


@pytest.mark.parametrize("v", VALID)
def test_valid(v: str) -> None:
    parsed = parse_version(v)
    assert isinstance(parsed, semver.Version)
    assert str(parsed) == v


INVALID = [
    "",
    "1",
    "1.0",
    "1.0.0.0",
    "01.0.0",
    "1.01.0",
    "1.0.01",
    "1.0.0-",
    "1.0.0+",
    "1.0.0-01",  # leading zero in numeric pre-release identifier
    "1.0.0-a..b",
    "1.0.0-a.",
    "1.0.0+a..b",
    "1.0.0-a_b",
    "v1.0.0",
    "V1.0.0",
    "=1.0.0",
    " 1.0.0",
    "1.0.0 ",
    "1.0.0\n",
    "1.0.0\t",
    "1 .0.0",
    "1.0.0/../../x",
    "../1.0.0",
    "1.0.0%2F",
    "1.0.0?x",
    "-1.0.0",
    "+1.0.0",
    "1.0.0\x00",
    "\u0661.0.0",  # Arabic-Indic digit one
    "\uff11.0.0",  # full-width digit one
    "1.0.0-\u0430",  # Cyrillic a
    "99999999999999999999.0.0",
    f"{MAX_SAFE_INTEGER + 1}.0.0",
    f"0.{MAX_SAFE_INTEGER + 1}.0",
    f"0.0.{MAX_SAFE_INTEGER + 1}",
    f"1.0.0-{MAX_SAFE_INTEGER + 1}",
    "1.0.0-" + "a" * 251,  # 257 characters
    "1.0.0-" + "a" * 294,  # 300 characters
    "1." * 150,
    "latest",
    "*",
    "^1.0.0",
    "~1.0.0",
    ">=1.0.0",
    "1.x",
    "1.0.0 || 2.0.0",
]


@pytest.mark.parametrize("v", INVALID)
def test_invalid(v: str) -> None:
    with pytest.raises(InvalidVersion) as info:
        parse_version(v)
    assert str(info.value).startswith("Invalid version ")
    assert len(str(info.value)) < 300


def test_non_string() -> None:
    with pytest.raises(InvalidVersion):
        parse_version(1)  # type: ignore[arg-type]


HOSTILE = [
    "1.0.0-" + "0" * 250 + "!",
    "1.0.0-" + "a" * 250 + "!",
    "1.0.0-" + "1a." * 83 + "!",
    "1.0.0-" + "-" * 125 + "+" + "-" * 124 + "!",
    "1.0.0-" + "0." * 125 + "!",
    "1.0.0+" + "a." * 125,
    "9" * 255 + "!",
    "1." * 200,
    "1.0.0-" + "a" * 10_000,
    "1" * 1_000_000,
]


@pytest.mark.parametrize("v", HOSTILE)
def test_hostile_inputs_are_fast(v: str) -> None:
    start = time.perf_counter()
    for _ in range(10):
        with pytest.raises(InvalidVersion):
            parse_version(v)
    assert (time.perf_counter() - start) / 10 < 0.05


def test_version_key_ignores_build() -> None:
    assert version_key("1.0.0+build.1") == "1.0.0"
    assert version_key("1.0.0-rc.1+exp") == "1.0.0-rc.1"
    assert version_key("1.0.0") == "1.0.0"
    assert version_key("1.0.0+a") == version_key("1.0.0+b")
    with pytest.raises(InvalidVersion):
        version_key("v1.0.0")


def test_is_prerelease() -> None:
    assert is_prerelease("1.0.0-0")
    assert is_prerelease("1.0.0-rc.1+b")
    assert not is_prerelease("1.0.0")
    assert not is_prerelease("1.0.0+rc")


def test_sort_follows_semver_precedence() -> None:
    # semver.org section 11 example, plus a few node-semver cross-checked cases.
    expected = [
        "0.9.9",
        "1.0.0-0",
        "1.0.0-1",
        "1.0.0--",
        "1.0.0-1a",
        "1.0.0-A",
        "1.0.0-a1",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0-rc.1.0",
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "2.0.0",
        "10.0.0",
    ]
    shuffled = expected[::2][::-1] + expected[1::2]
    assert sort_versions(shuffled) == expected
    assert sort_versions(iter(shuffled)) == expected


def test_sort_is_stable_for_equal_precedence() -> None:
    assert sort_versions(["1.0.0+b", "0.1.0", "1.0.0+a", "1.0.0"]) == ["0.1.0", "1.0.0+b", "1.0.0+a", "1.0.0"]
    assert sort_versions(["1.0.0", "1.0.0+b", "1.0.0+a"]) == ["1.0.0", "1.0.0+b", "1.0.0+a"]


def test_sort_rejects_invalid() -> None:
    assert sort_versions([]) == []
    with pytest.raises(InvalidVersion):
        sort_versions(["1.0.0", "nope"])


def test_max_version() -> None:
    vs = ["1.0.0", "2.0.0-rc.1", "1.5.0", "1.5.0-beta"]
    assert max_version(vs) == "1.5.0"
    assert max_version(vs, include_prerelease=True) == "2.0.0-rc.1"
    # No release at all: the highest prerelease.
    assert max_version(["1.0.0-a", "1.0.0-b", "0.9.0-z"]) == "1.0.0-b"
    # A release that outranks every prerelease is returned either way.
    assert max_version(["3.0.0", "2.0.0-rc.1"], include_prerelease=True) == "3.0.0"
    assert max_version([]) is None
    assert max_version([], include_prerelease=True) is None
    # Equal precedence: first one seen.
    assert max_version(["1.0.0+b", "1.0.0+a"]) == "1.0.0+b"
    assert max_version(iter(["0.1.0", "0.2.0"])) == "0.2.0"
    with pytest.raises(InvalidVersion):
        max_version(["1.0.0", "01.0.0"])
