"""npm unpublish of one version and of a whole package; the version number stays used up."""

from __future__ import annotations

import pytest
from conftest import unique

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("scoped", [False, True], ids=["unscoped", "scoped"])
def test_unpublish_one_version(npm, npm_factory, make_package, scoped):
    name = f"@{npm.user.name}/{unique('oops')}" if scoped else unique("oops")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.1.0"))
    npm.run("dist-tag", "add", f"{name}@1.1.0", "next")

    result = npm.run("unpublish", f"{name}@1.1.0")
    assert f"- {name}@1.1.0" in result.stdout

    assert npm.view(name, "versions") == ["1.0.0"]
    # latest falls back to the highest remaining version; tags pointing at 1.1.0 are gone
    assert npm.view(name, "dist-tags") == {"latest": "1.0.0"}

    consumer = npm_factory(npm.user)
    missing = consumer.run("install", f"{name}@1.1.0", ok=False)
    assert "ETARGET" in missing.output, missing.output
    consumer.run("install", name)
    assert consumer.require(name)["version"] == "1.0.0"

    # npm's own pre-check no longer sees 1.1.0, so the registry must refuse the reuse itself.
    again = npm.publish(make_package(name, "1.1.0"), ok=False)
    assert "E403" in again.output, again.output
    assert npm.view(name, "versions") == ["1.0.0"]


def test_unpublish_whole_package(npm, npm_factory, make_package):
    name = unique("gone")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.0.1"))

    refused = npm.run("unpublish", name, ok=False)  # npm wants --force for a whole package
    assert "--force" in refused.output

    result = npm.run("unpublish", name, "--force")
    assert f"- {name}" in result.stdout

    missing = npm.run("view", name, ok=False)
    assert "E404" in missing.output, missing.output
    assert "E404" in npm_factory(npm.user).run("install", name, ok=False).output

    again = npm.publish(make_package(name, "1.0.1"), ok=False)
    assert "E403" in again.output, again.output
    assert "E404" in npm.run("view", name, ok=False).output


def test_unpublish_the_only_version(npm, make_package):
    name = unique("single")
    npm.publish(make_package(name, "0.0.1"))
    refused = npm.run("unpublish", f"{name}@0.0.1", ok=False)  # refused client-side without --force
    assert "--force" in refused.output
    npm.run("unpublish", f"{name}@0.0.1", "--force")
    assert "E404" in npm.run("view", name, ok=False).output
    again = npm.publish(make_package(name, "0.0.1"), ok=False)
    assert "E403" in again.output, again.output


def test_only_maintainers_may_unpublish(npm, npm_factory, make_package, make_user):
    name = unique("keep")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.0.1"))
    stranger = npm_factory(make_user())
    result = stranger.run("unpublish", f"{name}@1.0.1", ok=False)
    assert "E403" in result.output, result.output
    result = stranger.run("unpublish", name, "--force", ok=False)
    assert "E403" in result.output, result.output
    assert npm.view(name, "versions") == ["1.0.0", "1.0.1"]
