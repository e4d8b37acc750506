"""pnpm 12, yarn 1 and yarn 4 against the same server: install what npm published, publish their own."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import Npm, Pnpm, Yarn1, Yarn4, create_package, unique

pytestmark = pytest.mark.e2e

INSTALLERS = {"pnpm": Pnpm, "yarn1": Yarn1, "yarn4": Yarn4}
# The command that installs exactly what the lockfile says, failing if it would change it.
FROZEN = {
    "pnpm": ["install", "--frozen-lockfile"],
    "yarn1": ["install", "--frozen-lockfile"],
    "yarn4": ["install", "--immutable"],
}


@pytest.fixture(scope="module")
def published(registry, tmp_path_factory):
    """npm publishes: lib 1.0.0/1.1.0/2.0.0, @owner/util 0.2.0, and app → {lib ^1, @owner/util ^0.2}."""
    root = tmp_path_factory.mktemp("other-clients")
    owner = registry.create_user("owner")
    npm = Npm(registry, root / "npm", user=owner)
    lib, util, app = unique("lib"), f"@{owner.name}/{unique('util')}", unique("app")
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        npm.publish(create_package(root / "pkgs", lib, version))
    npm.publish(create_package(root / "pkgs", util, "0.2.0"))
    npm.publish(create_package(root / "pkgs", app, "1.0.0", dependencies={lib: "^1.0.0", util: "^0.2.0"}))
    return SimpleNamespace(owner=owner, npm=npm, lib=lib, util=util, app=app)


def assert_app_works(client, published, cwd: Path | None = None) -> None:
    exported = client.require(published.app, cwd=cwd)
    assert exported["marker"] == f"{published.app}@1.0.0"
    assert exported["deps"][published.lib]["marker"] == f"{published.lib}@1.1.0"
    assert exported["deps"][published.util]["marker"] == f"{published.util}@0.2.0"


@pytest.mark.parametrize("client_name", list(INSTALLERS))
def test_install_packages_published_by_npm(client_name, published, client_factory):
    client = client_factory(INSTALLERS[client_name], user=published.owner)
    # explicit ranges: pnpm resolves a bare name through another endpoint (see test_pnpm_add_bare_names)
    client.run("add", f"{published.app}@^1.0.0", f"{published.util}@^0.2.0")
    assert_app_works(client, published)
    assert client.require(published.util)["version"] == "0.2.0"


@pytest.mark.parametrize("client_name", list(INSTALLERS))
def test_reinstall_from_lockfile_with_an_empty_cache(client_name, published, client_factory):
    """A lockfile install rebuilds tarball URLs itself (pnpm: /@s/n/-/n-v.tgz; berry: /@s%2fn/-/…)."""
    kind = INSTALLERS[client_name]
    first = client_factory(kind, user=published.owner)
    first.run("add", f"{published.app}@^1.0.0", f"{published.util}@^0.2.0")

    project = first.root / "copy"
    project.mkdir()
    for item in first.project.iterdir():
        if item.name in ("node_modules", ".yarn", ".pnp.cjs", ".pnp.loader.mjs"):
            continue
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, project / item.name)

    second = client_factory(kind, user=published.owner)  # new HOME, caches and store
    if isinstance(second, Yarn4):
        second.prepare_project(project)
    second.run(*FROZEN[client_name], cwd=project)
    assert_app_works(second, published, cwd=project)


def test_yarn1_installs_unscoped_packages_without_sending_a_token(published, client_factory):
    """yarn 1 sends no authorization for unscoped packages (protocol §23): public reads must work."""
    client = client_factory(Yarn1)  # no account at all
    client.run("add", published.lib)
    assert client.require(published.lib)["version"] == "2.0.0"


def test_pnpm_add_bare_names(published, client_factory):
    """Without a version, pnpm 12 first asks GET /<name>/latest (the version-document endpoint)."""
    client = client_factory(Pnpm, user=published.owner)
    client.run("add", published.app, published.util)
    assert_app_works(client, published)


def test_yarn_add_bare_names(published, client_factory):
    for kind in (Yarn1, Yarn4):
        client = client_factory(kind, user=published.owner)
        client.run("add", published.app, published.util)
        assert_app_works(client, published)


def test_pnpm_with_its_default_release_age_gate(published, client_factory):
    """pnpm's defaults (a release-age gate) read `time` and still install just-published packages."""
    client = client_factory(Pnpm, user=published.owner, settings={})
    client.run("add", f"{published.app}@^1.0.0")
    exported = client.require(published.app)
    assert exported["marker"] == f"{published.app}@1.0.0"
    assert exported["deps"][published.lib]["version"].startswith("1.")


# --------------------------------------------------------------------------------------------------
# publishing with the other clients
# --------------------------------------------------------------------------------------------------


def publish_with(client, package_dir: Path):
    if isinstance(client, Pnpm):
        return client.run("publish", "--no-git-checks", cwd=package_dir)
    if isinstance(client, Yarn1):
        return client.run("publish", "--no-git-tag-version", cwd=package_dir)
    if isinstance(client, Yarn4):
        client.prepare_project(package_dir)
        client.run("install", cwd=package_dir)  # berry publishes only installed workspaces
        return client.run("npm", "publish", cwd=package_dir)
    raise AssertionError(client)


@pytest.mark.parametrize("scoped", [False, True], ids=["unscoped", "scoped"])
@pytest.mark.parametrize("client_name", list(INSTALLERS))
def test_publish_then_npm_installs_it(client_name, scoped, registry, client_factory, npm_factory, make_user,
                                      make_package):
    author = make_user(client_name)
    client = client_factory(INSTALLERS[client_name], user=author)
    name = f"@{author.name}/{unique('made')}" if scoped else unique(f"by-{client_name}")
    publish_with(client, make_package(name, "1.0.0"))

    npm = npm_factory(author)
    data = npm.view(name)
    assert data["version"] == "1.0.0"
    assert data["dist-tags"] == {"latest": "1.0.0"}
    assert data["dist"]["tarball"] == registry.tarball_url(name, "1.0.0")
    assert {m.split(" <")[0] for m in data["maintainers"]} == {author.name}
    assert "1.0.0" in data["time"]

    npm.run("install", name)
    assert npm.require(name)["marker"] == f"{name}@1.0.0"

    # and a second version from the same client moves latest
    publish_with(client, make_package(name, "1.0.1"))
    assert npm.view(name, "dist-tags") == {"latest": "1.0.1"}


@pytest.mark.parametrize("client_name", list(INSTALLERS))
def test_republish_is_refused(client_name, client_factory, make_user, make_package):
    author = make_user(client_name)
    client = client_factory(INSTALLERS[client_name], user=author)
    name = unique(f"twice-{client_name}")
    publish_with(client, make_package(name, "1.0.0"))
    with pytest.raises(AssertionError) as failure:
        publish_with(client, make_package(name, "1.0.0", description="different bytes"))
    assert "previously published" in str(failure.value) or "403" in str(failure.value), str(failure.value)


def test_whoami_from_every_client(published, client_factory):
    owner = published.owner
    assert client_factory(Pnpm, user=owner).run("whoami").stdout.strip() == owner.name
    yarn4 = client_factory(Yarn4, user=owner).run("npm", "whoami").stdout
    assert owner.name in yarn4
