"""What npm prints when the registry says no: the texts users actually see (protocol §1.4, §4.2)."""

from __future__ import annotations

import pytest
from conftest import escaped, unique

pytestmark = pytest.mark.e2e


def test_publish_over_an_existing_version(npm, registry, make_package):
    name = unique("dup")
    npm.publish(make_package(name, "1.0.0"))

    # npm's own pre-check (a GET before the PUT) already knows the version.
    result = npm.publish(make_package(name, "1.0.0"), ok=False)
    assert "You cannot publish over the previously published versions: 1.0.0" in result.output

    # --force skips that check, so this is the registry's answer to the PUT. Different bytes: an
    # identical re-PUT may be accepted as an idempotent retry (adversarial.md P19/P20).
    result = npm.publish(make_package(name, "1.0.0", description="changed"), "--force", ok=False)
    assert "E403" in result.output, result.output
    assert (f"403 Forbidden - PUT {registry.url}{escaped(name)} - "
            "You cannot publish over the previously published versions: 1.0.0.") in result.output


def test_publish_over_a_deprecated_version(npm, registry, make_package):
    """npm's pre-check ignores deprecated versions (protocol §4.1): only the server stops this."""
    name = unique("dupdep")
    npm.publish(make_package(name, "1.0.0"))
    npm.run("deprecate", f"{name}@1.0.0", "bad build")
    result = npm.publish(make_package(name, "1.0.0", description="rebuilt"), ok=False)
    assert "You cannot publish over the previously published versions: 1.0.0" in result.output
    assert f"PUT {registry.url}{escaped(name)}" in result.output, "expected the registry's refusal"


def test_publish_someone_elses_package(npm, npm_factory, registry, make_package, make_user):
    name = unique("taken")
    npm.publish(make_package(name, "1.0.0"))
    stranger = npm_factory(make_user("stranger"))
    result = stranger.publish(make_package(name, "1.0.1"), ok=False)
    assert "E403" in result.output, result.output
    assert f"403 Forbidden - PUT {registry.url}{escaped(name)} - " in result.output
    assert npm.view(name, "versions") == ["1.0.0"]


def test_publish_into_someone_elses_scope(npm_factory, registry, make_package, make_user):
    owner, stranger = make_user("owner"), make_user("stranger")
    name = f"@{owner.name}/{unique('private')}"
    result = npm_factory(stranger).publish(make_package(name, "1.0.0"), ok=False)
    assert "E403" in result.output or "E404" in result.output, result.output
    assert f"PUT {registry.url}{escaped(name)}" in result.output


def test_publish_without_credentials(npm_factory, make_package):
    result = npm_factory().publish(make_package(unique("anon"), "1.0.0"), ok=False)
    assert "ENEEDAUTH" in result.output
    assert "This command requires you to be logged in" in result.output


def test_publish_with_an_invalid_token(npm_factory, registry, make_package):
    name = unique("badtoken")
    result = npm_factory(token="npm_" + "0" * 36).publish(make_package(name, "1.0.0"), ok=False)
    assert "E401" in result.output, result.output
    assert "E404" not in result.output


def test_whoami_with_an_invalid_token(npm_factory):
    result = npm_factory(token="npm_not-a-real-token").run("whoami", ok=False)
    assert "E401" in result.output, result.output


def test_view_of_a_missing_package(npm, registry):
    name = unique("nothere")
    result = npm.run("view", name, ok=False)
    assert "E404" in result.output
    assert f"404 Not Found - GET {registry.url}{name}" in result.output
    assert f"The requested resource '{name}" in result.output


def test_view_of_a_missing_scoped_package(npm, registry):
    name = f"@{npm.user.name}/{unique('nothere')}"
    result = npm.run("view", name, ok=False)
    assert "E404" in result.output
    assert f"404 Not Found - GET {registry.url}{escaped(name)}" in result.output


def test_install_of_a_missing_package_or_version(npm, npm_factory, make_package):
    consumer = npm_factory(npm.user)
    assert "E404" in consumer.run("install", unique("nothere"), ok=False).output

    name = unique("exists")
    npm.publish(make_package(name, "1.0.0"))
    result = consumer.run("install", f"{name}@2.0.0", ok=False)
    assert "ETARGET" in result.output
    assert f"No matching version found for {name}@2.0.0" in result.output


def test_dist_tag_of_a_missing_package(npm):
    result = npm.run("dist-tag", "ls", unique("nothere"), ok=False)
    assert "E404" in result.output, result.output
