"""npm deprecate / undeprecate, and the warning npm prints when installing a deprecated version."""

from __future__ import annotations

import pytest
from conftest import unique

pytestmark = pytest.mark.e2e

MESSAGE = "use 1.1.0 or later: 1.0.0 leaks memory"


def test_deprecate_one_version_warns_on_install_then_undeprecate(npm, npm_factory, make_package):
    name = unique("old")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.1.0"))

    npm.run("deprecate", f"{name}@1.0.0", MESSAGE)
    assert npm.view(f"{name}@1.0.0", "deprecated") == MESSAGE
    assert not npm.view(f"{name}@1.1.0", "deprecated")

    consumer = npm_factory(npm.user)
    installed = consumer.run("install", f"{name}@1.0.0")
    assert f"npm warn deprecated {name}@1.0.0: {MESSAGE}" in installed.output
    assert consumer.require(name)["version"] == "1.0.0"  # deprecated versions still install

    clean = npm_factory(npm.user).run("install", f"{name}@1.1.0")
    assert "deprecated" not in clean.output

    npm.run("undeprecate", f"{name}@1.0.0")
    assert not npm.view(f"{name}@1.0.0", "deprecated")
    again = npm_factory(npm.user).run("install", f"{name}@1.0.0")
    assert "deprecated" not in again.output


def test_deprecate_whole_scoped_package(npm, npm_factory, make_package):
    name = f"@{npm.user.name}/{unique('sunset')}"
    for version in ("0.1.0", "0.2.0"):
        npm.publish(make_package(name, version))

    npm.run("deprecate", name, "this package is no longer maintained")
    for version in ("0.1.0", "0.2.0"):
        assert npm.view(f"{name}@{version}", "deprecated") == "this package is no longer maintained"

    result = npm_factory(npm.user).run("install", name)
    assert f"npm warn deprecated {name}@0.2.0: this package is no longer maintained" in result.output

    # Nothing else about the package changed with the metadata-only PUT.
    assert npm.view(name, "versions") == ["0.1.0", "0.2.0"]
    assert npm.view(name, "dist-tags") == {"latest": "0.2.0"}


def test_deprecate_a_range(npm, make_package):
    name = unique("range")
    for version in ("1.0.0", "1.5.0", "2.0.0"):
        npm.publish(make_package(name, version))
    npm.run("deprecate", f"{name}@<2", "upgrade to 2")
    assert npm.view(f"{name}@1.0.0", "deprecated") == "upgrade to 2"
    assert npm.view(f"{name}@1.5.0", "deprecated") == "upgrade to 2"
    assert not npm.view(f"{name}@2.0.0", "deprecated")


def test_only_maintainers_may_deprecate(npm, npm_factory, make_package, make_user):
    name = unique("notyours")
    npm.publish(make_package(name, "1.0.0"))
    result = npm_factory(make_user()).run("deprecate", name, "mine now", ok=False)
    assert "E403" in result.output, result.output
    assert not npm.view(name, "deprecated")
