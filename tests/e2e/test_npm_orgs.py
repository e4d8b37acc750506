"""npm org / team / access against private packages: who sees and who may change what."""

from __future__ import annotations

import httpx
import pytest
from conftest import unique

pytestmark = pytest.mark.e2e


def create_org(registry, owner) -> str:
    org = unique("org")
    resp = httpx.put(f"{registry.url}-/org/{org}", json={}, headers={"authorization": f"Bearer {owner.token}"},
                     trust_env=False, timeout=30)
    assert resp.status_code == 201, resp.text
    return org


def test_org_members_teams_and_private_packages(registry, npm, npm_factory, make_user, make_package):
    org = create_org(registry, npm.user)
    bob, carol = make_user("bob"), make_user("carol")
    bob_npm, carol_npm = npm_factory(bob), npm_factory(carol)

    assert "Added" in npm.run("org", "set", org, bob.name, "developer").stdout
    members = npm.run("org", "ls", org).stdout
    assert f"{npm.user.name} - owner" in members and f"{bob.name} - developer" in members

    npm.run("team", "create", f"{org}:qa")
    npm.run("team", "add", f"{org}:qa", bob.name)
    assert f"@{org}:qa" in npm.run("team", "ls", org).stdout
    assert bob.name in npm.run("team", "ls", f"{org}:qa").stdout

    name = f"@{org}/{unique('secret')}"
    npm.publish(make_package(name, "1.0.0"), "--access", "restricted")
    assert f"{name}: private" in npm.run("access", "get", "status", name).stdout

    # members see it (the developers team gets read-write on new packages); outsiders get a 404
    assert bob_npm.view(name, "name") == name
    hidden = carol_npm.run("view", name, "name", ok=False)
    assert "E404" in hidden.output, hidden.output
    assert f"{name}: read-write" in bob_npm.run("access", "list", "packages", org).stdout

    # a developer may publish but not change access
    bob_npm.publish(make_package(name, "1.1.0"))
    refused = bob_npm.run("access", "set", "status=public", name, ok=False)
    assert "E403" in refused.output, refused.output
    assert f"{name}: private" in npm.run("access", "get", "status", name).stdout

    npm.run("access", "grant", "read-only", f"{org}:qa", name)
    assert f"{name}: read-only" in npm.run("access", "list", "packages", f"{org}:qa").stdout
    collaborators = npm.run("access", "list", "collaborators", name).stdout
    assert f"{bob.name}: read-write" in collaborators

    # installing a private package works with the member's token
    project = make_package(unique("app"), "1.0.0", dependencies={name: "^1.0.0"})
    bob_npm.run("install", cwd=project)

    # removed from the org: the package disappears for bob at once
    npm.run("org", "rm", org, bob.name)
    gone = bob_npm.run("view", name, "name", ok=False)
    assert "E404" in gone.output, gone.output


def test_nobody_publishes_into_someone_elses_scope(npm, npm_factory, make_user, make_package):
    other = make_user("other")
    refused = npm_factory(other).publish(make_package(f"@{npm.user.name}/{unique('mine')}", "1.0.0"), ok=False)
    assert "E403" in refused.output, refused.output


def test_making_a_package_public_again(registry, npm, npm_factory, make_user, make_package):
    org = create_org(registry, npm.user)
    name = f"@{org}/{unique('flip')}"
    npm.publish(make_package(name, "1.0.0"), "--access", "restricted")
    stranger = npm_factory(make_user("stranger"))
    assert "E404" in stranger.run("view", name, "name", ok=False).output
    npm.run("access", "set", "status=public", name)
    assert stranger.view(name, "name") == name


def test_audit_log_per_package_and_org(registry, npm, npm_factory, make_user, make_package):
    org = create_org(registry, npm.user)
    bob = make_user("auditee")
    npm.run("org", "set", org, bob.name, "developer")
    name = f"@{org}/{unique('logged')}"
    npm.publish(make_package(name, "1.0.0"), "--access", "restricted")
    npm.run("access", "set", "status=public", name)
    owner = {"authorization": f"Bearer {npm.user.token}"}
    with httpx.Client(base_url=registry.url, trust_env=False, timeout=30) as http:
        package_events = http.get(f"-/package/{name.replace('/', '%2f')}/audit", headers=owner).json()["objects"]
        assert [e["action"] for e in package_events][:2] == ["package:access", "package:publish"]
        assert package_events[1]["actor"] == npm.user.name and package_events[1]["ip"] == "127.0.0.1"
        org_events = [e["action"] for e in http.get(f"-/org/{org}/audit", headers=owner).json()["objects"]]
        assert "org:member:set" in org_events and "org:create" in org_events
        # a developer may not read the org's audit log; a stranger cannot even see the package's
        bob_auth = {"authorization": f"Bearer {bob.token}"}
        assert http.get(f"-/org/{org}/audit", headers=bob_auth).status_code == 403
        assert http.get(f"-/package/{name.replace('/', '%2f')}/audit", headers=bob_auth).status_code == 403
