"""`npm search` (and `--json`) against the live server: what a user sees after publishing with
the real npm; private packages only for those who may read them; deprecate and unpublish reach
search results as soon as the command returns (the index commits with the change)."""

from __future__ import annotations

import time

import pytest
from conftest import unique

pytestmark = pytest.mark.e2e


def found(runner, *terms: str) -> list[dict]:
    result = runner.run("search", *terms, "--json", "--prefer-online")
    return result.json()


def names(runner, *terms: str) -> list[str]:
    return [p["name"] for p in found(runner, *terms)]


def api_names(registry, text: str, token: str | None = None) -> list[str]:
    with registry.http(token) as client:
        resp = client.get("-/v1/search", params={"text": text})
    assert resp.status_code == 200, resp.text
    return [o["package"]["name"] for o in resp.json()["objects"]]


def test_npm_search_shows_published_packages(npm, make_package):
    word = unique("srch").replace("-", "")
    main, helper = f"{word}-core", f"{word}-helper"
    npm.publish(make_package(main, "1.2.0", description=f"Core of {word}: parse and render",
                             extra={"keywords": ["parser", word]}))
    npm.publish(make_package(helper, "0.1.0", description=f"Helpers for {word}"))

    results = found(npm, word)
    assert {p["name"] for p in results} == {main, helper}
    core = next(p for p in results if p["name"] == main)
    assert core["version"] == "1.2.0"
    assert core["description"] == f"Core of {word}: parse and render"
    assert core["keywords"] == ["parser", word]
    assert [m["username"] for m in core["maintainers"]] == [npm.user.name]
    assert core["publisher"]["username"] == npm.user.name
    assert core["date"].startswith(time.strftime("%Y-", time.gmtime()))

    assert names(npm, helper)[0] == helper  # the exact name comes first
    assert names(npm, f"{word}-hlper")[0] == helper  # a typo still finds it
    assert names(npm, word, "keywords:parser") == [main]

    text = npm.run("search", word, "--prefer-online").stdout
    assert main in text and helper in text and f"Core of {word}" in text
    assert "No matches found" in npm.run("search", unique("nothing"), "--prefer-online").stdout


def test_private_package_is_invisible_to_outsiders(npm, npm_factory, make_package, make_user):
    word = unique("hush").replace("-", "")
    name = f"@{npm.user.name}/{word}-internal"
    npm.publish(make_package(name, "1.0.0", description=f"{word} internal tooling"), "--access", "restricted")

    assert names(npm, word) == [name]
    assert names(npm_factory(make_user()), word) == []
    assert names(npm_factory(), word) == []
    # Not even by its exact name (other tests' packages on the shared server may match its words).
    assert name not in names(npm_factory(make_user()), name)

    npm.run("access", "set", "status=public", name)
    assert names(npm_factory(), word) == [name]


def test_deprecate_and_unpublish_reach_search_within_a_second(npm, registry, make_package):
    word = unique("life").replace("-", "")
    name = f"{word}-pkg"
    npm.publish(make_package(name, "1.0.0", description=f"{word} lifecycle"))
    assert names(npm, name)[0] == name

    npm.run("deprecate", name, "use something else")
    start = time.monotonic()
    assert name not in api_names(registry, f"{word} not:deprecated")
    assert api_names(registry, f"{word} is:deprecated") == [name]
    assert time.monotonic() - start < 1.0
    assert name not in names(npm, word, "not:deprecated")
    deprecated = registry.http().get("-/v1/search", params={"text": name}).json()["objects"][0]
    assert deprecated["flags"]["deprecated"] == "use something else"

    npm.run("unpublish", name, "--force")
    assert api_names(registry, word) == []
    assert names(npm, word) == []
