"""npm star / unstar / stars."""

from __future__ import annotations

import pytest
from conftest import unique

pytestmark = pytest.mark.e2e


def starred(npm, *user: str) -> list[str]:
    return [line for line in npm.run("stars", *user).stdout.splitlines() if line.strip()]


def test_star_list_and_unstar(npm, npm_factory, make_package, make_user):
    unscoped = unique("shiny")
    scoped = f"@{npm.user.name}/{unique('gem')}"
    npm.publish(make_package(unscoped, "1.0.0"))
    npm.publish(make_package(scoped, "1.0.0"))

    fan = npm_factory(make_user("fan"))
    assert fan.run("star", unscoped).stdout.strip().endswith(f" {unscoped}")
    assert fan.run("star", scoped).stdout.strip().endswith(f" {scoped}")
    assert sorted(starred(fan)) == sorted([unscoped, scoped])
    # anyone can look at someone's stars
    assert sorted(starred(npm, fan.user.name)) == sorted([unscoped, scoped])
    assert npm.view(unscoped, "users") == {fan.user.name: True}

    fan.run("unstar", unscoped)
    assert starred(fan) == [scoped]
    assert not npm.view(unscoped, "users")

    # Starring is metadata only: the package itself is untouched.
    assert npm.view(scoped, "versions") == ["1.0.0"]
    assert npm.view(scoped, "maintainers") == [f"{npm.user.name} <{npm.user.email}>"]


def test_stars_of_someone_who_starred_nothing(npm):
    result = npm.run("stars")
    assert result.stdout.strip() == ""
    assert "user has not starred any packages" in result.output


def test_star_twice_is_harmless(npm, npm_factory, make_package, make_user):
    name = unique("twice")
    npm.publish(make_package(name, "1.0.0"))
    fan = npm_factory(make_user("fan"))
    fan.run("star", name)
    fan.run("star", name)
    assert starred(fan) == [name]
