"""npm publish → npm install → node require(): the core round trip, and what `npm view` shows."""

from __future__ import annotations

import pytest
from conftest import parse_iso, unique

pytestmark = pytest.mark.e2e


def maintainer_names(entries) -> set[str]:
    """`npm view --json` prints maintainers as "name <email>" strings (objects from older npm)."""
    names = set()
    for entry in entries:
        names.add(entry["name"] if isinstance(entry, dict) else entry.split(" <", 1)[0])
    return names


def test_publish_unscoped_then_install_anonymously(npm, npm_factory, make_package):
    name = unique("pkg")
    result = npm.publish(make_package(name, "1.0.0"))
    assert f"+ {name}@1.0.0" in result.stdout

    consumer = npm_factory()  # not logged in: reading a public package needs no account
    consumer.run("install", name)
    assert consumer.require(name)["marker"] == f"{name}@1.0.0"


def test_publish_scoped_then_install(npm, npm_factory, make_package):
    name = f"@{npm.user.name}/{unique('lib')}"
    result = npm.publish(make_package(name, "1.0.0"))
    assert f"+ {name}@1.0.0" in result.stdout

    # The same account on another machine (fresh cache and project).
    consumer = npm_factory(npm.user)
    consumer.run("install", name)
    assert consumer.require(name)["marker"] == f"{name}@1.0.0"


def test_publish_scoped_public_then_install_anonymously(npm, npm_factory, make_package):
    name = f"@{npm.user.name}/{unique('pub')}"
    npm.publish(make_package(name, "2.3.4"), "--access", "public")

    consumer = npm_factory()
    consumer.run("install", f"{name}@2.3.4")
    assert consumer.require(name)["marker"] == f"{name}@2.3.4"


def test_dependencies_between_published_packages_resolve(npm, npm_factory, make_package):
    dep = unique("dep")
    scoped_dep = f"@{npm.user.name}/{unique('util')}"
    app = unique("app")
    npm.publish(make_package(dep, "1.0.0"))
    npm.publish(make_package(dep, "1.1.0"))
    npm.publish(make_package(dep, "2.0.0"))
    npm.publish(make_package(scoped_dep, "0.3.0"))
    npm.publish(make_package(app, "1.0.0", dependencies={dep: "^1.0.0", scoped_dep: "~0.3.0"}))

    consumer = npm_factory(npm.user)
    consumer.run("install", app)
    exported = consumer.require(app)
    assert exported["marker"] == f"{app}@1.0.0"
    # ^1.0.0 picks the highest 1.x, not latest (2.0.0)
    assert exported["deps"][dep]["marker"] == f"{dep}@1.1.0"
    assert exported["deps"][scoped_dep]["marker"] == f"{scoped_dep}@0.3.0"

    lock = consumer.project / "package-lock.json"
    assert lock.exists()
    # A second project installs from the lockfile alone (npm ci: tarballs only, protocol §3).
    ci_project = consumer.new_project()
    (ci_project / "package.json").write_text((consumer.project / "package.json").read_text())
    (ci_project / "package-lock.json").write_text(lock.read_text())
    fresh = npm_factory(npm.user)
    fresh.run("ci", cwd=ci_project)
    assert fresh.require(app, cwd=ci_project)["deps"][dep]["marker"] == f"{dep}@1.1.0"


def test_install_specific_version_and_range(npm, npm_factory, make_package):
    name = unique("multi")
    for version in ("1.0.0", "1.2.0", "2.0.0"):
        npm.publish(make_package(name, version))

    consumer = npm_factory(npm.user)
    consumer.run("install", f"{name}@1.0.0")
    assert consumer.require(name)["version"] == "1.0.0"
    consumer.run("install", f"{name}@^1.1.0")
    assert consumer.require(name)["version"] == "1.2.0"
    consumer.run("install", f"{name}@latest")
    assert consumer.require(name)["version"] == "2.0.0"


def test_view_json_fields(npm, registry, make_package):
    name = unique("view")
    # npm 11 keys `publish --json` output by package name
    first = npm.publish(make_package(name, "1.0.0"), "--json").json()[name]
    second = npm.publish(make_package(name, "1.1.0", description="second release"), "--json").json()[name]

    data = npm.view(name)
    assert data["name"] == name
    assert data["version"] == "1.1.0"
    assert data["description"] == "second release"
    assert data["dist-tags"] == {"latest": "1.1.0"}
    assert data["versions"] == ["1.0.0", "1.1.0"]

    times = data["time"]
    for key in ("created", "modified", "1.0.0", "1.1.0"):
        assert key in times, f"time.{key} missing: {times}"
        parse_iso(times[key])
    assert parse_iso(times["created"]) <= parse_iso(times["1.0.0"]) <= parse_iso(times["1.1.0"])
    assert parse_iso(times["modified"]) >= parse_iso(times["1.1.0"])

    assert maintainer_names(data["maintainers"]) == {npm.user.name}
    npm_user = data["_npmUser"]
    assert (npm_user["name"] if isinstance(npm_user, dict) else npm_user.split(" <")[0]) == npm.user.name

    dist = data["dist"]
    assert dist["tarball"] == registry.tarball_url(name, "1.1.0")
    assert dist["integrity"] == second["integrity"]
    assert dist["shasum"] == second["shasum"]

    old = npm.view(f"{name}@1.0.0", "dist")
    assert old["tarball"] == registry.tarball_url(name, "1.0.0")
    assert old["integrity"] == first["integrity"]


def test_view_scoped_tarball_url_is_canonical(npm, registry, make_package):
    name = f"@{npm.user.name}/{unique('tgz')}"
    npm.publish(make_package(name, "0.1.0"))
    dist = npm.view(name, "dist")
    # npm itself sent the odd /@s/n/-/@s/n-0.1.0.tgz; the registry must serve its own URL (§4.1).
    assert dist["tarball"] == registry.tarball_url(name, "0.1.0")
    assert dist["tarball"].startswith(registry.url)


def test_tarball_urls_follow_the_servers_current_address(registry_factory, npm_factory, make_package):
    server = registry_factory.new()
    owner = server.create_user()
    name = unique("moved")
    publisher = npm_factory(owner, server=server)
    publisher.publish(make_package(name, "1.0.0"))
    old_url = server.url

    server.stop()
    server.start()  # same data directory and database, new port
    assert server.url != old_url

    consumer = npm_factory(owner, server=server)
    dist = consumer.view(name, "dist")
    assert dist["tarball"] == server.tarball_url(name, "1.0.0")
    consumer.run("install", name)
    assert consumer.require(name)["marker"] == f"{name}@1.0.0"


def test_readme_and_keywords_are_served(npm, make_package):
    name = unique("readme")
    npm.publish(make_package(name, "1.0.0"))
    readme = npm.view(name, "readme")
    assert readme.startswith(f"# {name}")
    assert npm.view(name, "keywords") == ["ketch-e2e"]
