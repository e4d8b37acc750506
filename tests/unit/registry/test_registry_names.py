import pytest

from ketch.registry.names import InvalidName, existing_name_ok, split_name, unscoped, validate_name

VALID = [
    "react",
    "lodash.merge",
    "left-pad",
    "a",
    "0",
    "x" * 214,
    "-",  # leading hyphen stays valid (npm 5/6 rules)
    "-foo",
    "foo_bar",
    "foo.",
    "xn--80ak6aa92e",
    "constructor",
    "prototype",
    "hasownproperty",
    "tostring",
    "valueof",
    "@scope/pkg",
    "@babel/core",
    "@a/b",
    "@scope/_private",  # the lib only refuses a leading "." in the package part
    "@scope/-",
    "@scope/http",  # core module names only matter unscoped
    "@types/node",
    "@my-org.io/pkg",
]


@pytest.mark.parametrize("name", VALID)
def test_valid(name: str) -> None:
    validate_name(name)


INVALID = [
    # (name, fragment of the message)
    ("", "length must be greater than zero"),
    ("x" * 215, "more than 214 characters"),
    (".bin", "start with a period"),
    (".hidden", "start with a period"),
    ("_foo", "start with an underscore"),
    ("__proto__", "name is reserved"),
    ("_design", "name is reserved"),
    (" foo", "leading or trailing spaces"),
    ("foo ", "leading or trailing spaces"),
    ("foo\n", "URL-friendly"),
    ("React", "capital letters"),
    ("hasOwnProperty", "capital letters"),
    ("toString", "capital letters"),
    ("@Scope/pkg", "capital letters"),
    ("node_modules", "node_modules is not a valid package name"),
    ("Node_Modules", "node_modules is not a valid package name"),
    ("favicon.ico", "favicon.ico is not a valid package name"),
    ("http", "core module name"),
    ("fs", "core module name"),
    ("child_process", "core module name"),
    ("worker_threads", "core module name"),
    ("Buffer", "core module name"),
    ("fs/promises", "core module name"),
    ("node:test", "core module name"),
    ("foo~bar", "special characters"),
    ("foo'bar", "special characters"),
    ("foo!", "special characters"),
    ("foo(bar)", "special characters"),
    ("a*b", "special characters"),
    ("@scope/pk~g", "special characters"),
    ("@sc~pe/pkg", "special characters"),
    ("a b", "URL-friendly"),
    ("a+b", "URL-friendly"),
    ("a@b", "URL-friendly"),
    ("a%20b", "URL-friendly"),
    ("a:b", "URL-friendly"),
    ("a?b", "URL-friendly"),
    ("a#b", "URL-friendly"),
    ("a\\b", "URL-friendly"),
    ("a\x00b", "URL-friendly"),
    ("café", "URL-friendly"),
    ("\u0440\u0435\u0430\u0441t", "URL-friendly"),  # Cyrillic homoglyphs of "react"
    ("\uff52\uff45\uff41\uff43\uff54", "URL-friendly"),  # full-width "react"
    ("evil\u202egnp.js", "URL-friendly"),  # right-to-left override
    ("a\u200bb", "URL-friendly"),  # zero-width space
    ("\ud800", "URL-friendly"),  # lone surrogate
    ("@scope/pkg@1.0.0", "URL-friendly"),
    ("@scope", '"@scope/name"'),
    ("@scope/", '"@scope/name"'),
    ("@/pkg", '"@scope/name"'),
    ("@", '"@scope/name"'),
    ("a/b", '"@scope/name"'),
    ("@a/b/c", '"@scope/name"'),
    ("@a//b", '"@scope/name"'),
    ("/pkg", '"@scope/name"'),
    ("@scope/.pkg", "start with a period"),
    ("@scope/..", "start with a period"),
    ("@../x", "start with a period"),
    ("@./x", "start with a period"),
]


@pytest.mark.parametrize(("name", "fragment"), INVALID)
def test_invalid(name: str, fragment: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_name(name)
    assert fragment in str(info.value)
    assert fragment in "; ".join(info.value.problems)
    assert isinstance(info.value, ValueError)


def test_message_format() -> None:
    with pytest.raises(InvalidName) as info:
        validate_name("React")
    assert str(info.value) == 'Invalid package name "React": name can no longer contain capital letters'
    assert info.value.name == "React"


def test_message_lists_every_problem_once() -> None:
    with pytest.raises(InvalidName) as info:
        validate_name(" HTTP")
    problems = info.value.problems
    assert "name cannot contain leading or trailing spaces" in problems
    assert "name can no longer contain capital letters" in problems
    assert "name can only contain URL-friendly characters" in problems
    assert len(problems) == len(set(problems))


def test_huge_name_message_is_bounded() -> None:
    with pytest.raises(InvalidName) as info:
        validate_name("a" * 1_000_000)
    assert len(str(info.value)) < 400


def test_non_string() -> None:
    with pytest.raises(InvalidName):
        validate_name(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("react", (None, "react")),
        ("-", (None, "-")),
        ("@scope/pkg", ("scope", "pkg")),
        ("@babel/core", ("babel", "core")),
    ],
)
def test_split_name(name: str, expected: tuple[str | None, str]) -> None:
    assert split_name(name) == expected
    assert unscoped(name) == expected[1]


@pytest.mark.parametrize("name", ["@scope", "@scope/", "@/pkg", "a/b", "@a/b/c", "@"])
def test_split_name_rejects_bad_shapes(name: str) -> None:
    with pytest.raises(InvalidName):
        split_name(name)
    with pytest.raises(InvalidName):
        unscoped(name)


@pytest.mark.parametrize("name,ok", [
    ("JSONStream", True), ("@Types/node", True), ("fs", True), ("x~y", True), ("a" * 215, True),
    ("_x", False), (".x", False), ("node_modules", False), ("a b", False), ("../etc", False), ("a/b/c", False),
    ("", False), ("@s/.x", False),
])
def test_existing_name_ok_allows_what_old_packages_may_be_called(name, ok):
    assert existing_name_ok(name) is ok
