"""npm dist-tag ls / add / rm, publish --tag, and installs that resolve through tags."""

from __future__ import annotations

import pytest
from conftest import unique

pytestmark = pytest.mark.e2e


def tags_listing(npm, name: str) -> dict[str, str]:
    """`npm dist-tag ls` prints "tag: version" lines."""
    lines = npm.run("dist-tag", "ls", name).stdout.splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


@pytest.mark.parametrize("scoped", [False, True], ids=["unscoped", "scoped"])
def test_add_list_install_and_remove_a_tag(npm, npm_factory, make_package, scoped):
    name = f"@{npm.user.name}/{unique('tags')}" if scoped else unique("tags")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.1.0"))
    assert tags_listing(npm, name) == {"latest": "1.1.0"}

    added = npm.run("dist-tag", "add", f"{name}@1.0.0", "stable")
    assert added.stdout.strip() == f"+stable: {name}@1.0.0"
    assert tags_listing(npm, name) == {"latest": "1.1.0", "stable": "1.0.0"}
    assert npm.view(name, "dist-tags") == {"latest": "1.1.0", "stable": "1.0.0"}

    consumer = npm_factory(npm.user)
    consumer.run("install", f"{name}@stable")
    assert consumer.require(name)["version"] == "1.0.0"

    removed = npm.run("dist-tag", "rm", name, "stable")
    assert removed.stdout.strip() == f"-stable: {name}@1.0.0"
    assert tags_listing(npm, name) == {"latest": "1.1.0"}
    gone = npm_factory(npm.user).run("install", f"{name}@stable", ok=False)
    assert "ETARGET" in gone.output or "E404" in gone.output, gone.output


def test_publish_with_tag_leaves_latest_alone(npm, npm_factory, make_package):
    name = unique("beta")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "2.0.0-beta.1"), "--tag", "beta")
    assert npm.view(name, "dist-tags") == {"latest": "1.0.0", "beta": "2.0.0-beta.1"}

    consumer = npm_factory(npm.user)
    consumer.run("install", name)
    assert consumer.require(name)["version"] == "1.0.0"
    consumer.run("install", f"{name}@beta")
    assert consumer.require(name)["version"] == "2.0.0-beta.1"


def test_first_publish_with_a_tag_still_gets_latest(npm, make_package):
    name = unique("firstbeta")
    npm.publish(make_package(name, "0.1.0-rc.1"), "--tag", "next")
    tags = npm.view(name, "dist-tags")
    assert tags["next"] == "0.1.0-rc.1"
    assert tags.get("latest") == "0.1.0-rc.1", "every package has a latest tag (protocol §4.1)"


def test_moving_latest_changes_what_install_gets(npm, npm_factory, make_package):
    name = unique("rollback")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.0.1"))
    npm.run("dist-tag", "add", f"{name}@1.0.0", "latest")
    assert npm.view(name, "dist-tags") == {"latest": "1.0.0"}

    consumer = npm_factory(npm.user)
    consumer.run("install", name)
    assert consumer.require(name)["version"] == "1.0.0"


def test_tag_to_a_missing_version_is_refused(npm, make_package):
    name = unique("notag")
    npm.publish(make_package(name, "1.0.0"))
    result = npm.run("dist-tag", "add", f"{name}@9.9.9", "stable", ok=False)
    assert "E4" in result.output, result.output  # npm does not check; the server must (protocol §7)
    assert npm.view(name, "dist-tags") == {"latest": "1.0.0"}


def test_only_maintainers_may_tag(npm, npm_factory, make_package, make_user):
    name = unique("theirs")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.1.0"))
    stranger = npm_factory(make_user())
    result = stranger.run("dist-tag", "add", f"{name}@1.0.0", "stable", ok=False)
    assert "E403" in result.output, result.output
    result = stranger.run("dist-tag", "rm", name, "latest", ok=False)
    assert "E403" in result.output, result.output
    assert npm.view(name, "dist-tags") == {"latest": "1.1.0"}
