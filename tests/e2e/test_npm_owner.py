"""npm owner ls / add / rm, and that ownership decides who may publish."""

from __future__ import annotations

import pytest
from conftest import unique

pytestmark = pytest.mark.e2e


def owners(npm, name: str) -> set[str]:
    """`npm owner ls` prints "name <email>" lines."""
    return {line.split(" <", 1)[0] for line in npm.run("owner", "ls", name).stdout.splitlines() if line.strip()}


@pytest.mark.parametrize("scoped", [False, True], ids=["unscoped", "scoped"])
def test_add_and_remove_an_owner(npm, npm_factory, make_package, make_user, scoped):
    name = f"@{npm.user.name}/{unique('team')}" if scoped else unique("team")
    npm.publish(make_package(name, "1.0.0"))
    listing = npm.run("owner", "ls", name).stdout.strip()
    assert listing == f"{npm.user.name} <{npm.user.email}>"

    friend = make_user("friend")
    added = npm.run("owner", "add", friend.name, name)
    assert added.stdout.strip() == f"+ {friend.name} ({name})"
    assert owners(npm, name) == {npm.user.name, friend.name}

    friend_npm = npm_factory(friend)
    assert owners(friend_npm, name) == {npm.user.name, friend.name}
    friend_npm.publish(make_package(name, "1.1.0"))
    assert npm.view(name, "dist-tags") == {"latest": "1.1.0"}
    assert npm.view(f"{name}@1.1.0", "_npmUser").split(" <")[0] == friend.name

    removed = npm.run("owner", "rm", friend.name, name)
    assert removed.stdout.strip() == f"- {friend.name} ({name})"
    assert owners(npm, name) == {npm.user.name}

    refused = friend_npm.publish(make_package(name, "1.2.0"), ok=False)
    assert "E403" in refused.output, refused.output
    assert npm.view(name, "versions") == ["1.0.0", "1.1.0"]


def test_add_an_unknown_user_fails(npm, make_package):
    name = unique("lonely")
    npm.publish(make_package(name, "1.0.0"))
    result = npm.run("owner", "add", unique("ghost"), name, ok=False)
    assert "E404" in result.output, result.output
    assert owners(npm, name) == {npm.user.name}


def test_non_owner_cannot_change_owners(npm, npm_factory, make_package, make_user):
    name = unique("guarded")
    npm.publish(make_package(name, "1.0.0"))
    intruder = make_user("intruder")
    result = npm_factory(intruder).run("owner", "add", intruder.name, name, ok=False)
    assert "EOWNERMUTATE" in result.output or "E403" in result.output, result.output
    assert owners(npm, name) == {npm.user.name}


def test_owner_can_leave_when_another_remains(npm, npm_factory, make_package, make_user):
    name = unique("handover")
    npm.publish(make_package(name, "1.0.0"))
    heir = make_user("heir")
    npm.run("owner", "add", heir.name, name)
    npm.run("owner", "rm", npm.user.name, name)
    assert owners(npm, name) == {heir.name}
    assert "E403" in npm.publish(make_package(name, "1.0.1"), ok=False).output
    npm_factory(heir).publish(make_package(name, "1.0.1"))
