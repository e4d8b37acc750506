"""Organization and package settings in Debian's Chromium against a real ``ketch serve`` and the
real npm: create an org, add a member, make a team, publish a private package into the org with
npm, grant the team read-only, and see the package only as a logged-in member."""

from __future__ import annotations

import re

import pytest
from account_support import Npm, Watch, login, logout, new_package, own_registry, shoot, unique
from account_support import browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with own_registry(tmp_path_factory.mktemp("web-orgs")) as s:
        yield s


def test_org_team_private_package_and_package_settings(browser, server, tmp_path):
    owner, member, outsider = (server.create_user(p) for p in ("owner", "member", "outsider"))
    org = unique("org")
    base = server.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    try:
        login(page, base, owner.name, owner.password)
        page.goto(f"{base}-/web/orgs/new")
        shoot(page, "org-new")
        page.fill("#org-name", org)
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(rf"/-/web/org/{org}/settings"))
        assert "owner" in page.inner_text("#members")

        page.fill("#add-user", member.name)
        page.select_option("#add-role", "developer")
        page.click("#members form.acct-row-form button[type=submit]")
        page.wait_for_url(re.compile(r"notice=saved"))
        assert member.name in page.inner_text("#members")

        page.fill("#team-name", "qa")
        page.fill("#team-description", "Quality <b>assurance</b>")
        page.click("#teams form.acct-row-form button[type=submit]")
        page.wait_for_selector("#team-qa")
        assert "Quality <b>assurance</b>" in page.inner_text("#team-qa")  # shown as text, not markup
        page.select_option("#team-qa select[name=user]", member.name)
        page.click("#team-qa form:has(select[name=user]) button[type=submit]")
        page.wait_for_selector(f"#team-qa .acct-chips li:has-text('{member.name}')")

        # A private package published into the org's scope with the real npm.
        package = f"@{org}/secret"
        npm = Npm(server, tmp_path / "npm", user=owner)
        try:
            npm.publish(new_package(tmp_path, package), "--access", "restricted")
        finally:
            npm.close()
        page.reload()
        page.select_option("#team-qa select[name=package]", package)
        page.select_option("#team-qa select[name=permission]", "read-only")
        page.click("#team-qa form:has(select[name=package]) button[type=submit]")
        page.wait_for_selector(f"#team-qa .acct-chips li:has-text('{package}')")
        assert "read-only" in page.inner_text("#team-qa")
        shoot(page, "org-settings")

        # Package settings: a dist-tag, a deprecation, the visibility stays private.
        page.goto(f"{base}-/web/package/{package}/settings")
        assert page.locator('input[name=access][value="restricted"]').is_checked()
        page.fill("#tag-name", "beta")
        page.click("#tags form.acct-row-form button[type=submit]")
        page.wait_for_url(re.compile(r"notice=saved"))
        assert "beta" in page.inner_text("#tags")
        page.select_option("#dep-version", "1.0.0")
        page.fill("#dep-message", "use 2.x")
        page.click("#deprecate form button[type=submit]")
        page.wait_for_url(re.compile(r"notice=saved"))
        shoot(page, "package-settings")
        with server.http(token=owner.token) as client:
            doc = client.get(package.replace("/", "%2f")).json()
        assert doc["dist-tags"]["beta"] == "1.0.0" and doc["versions"]["1.0.0"]["deprecated"] == "use 2.x"
        logout(page, base)

        # Anonymous: the org's settings page wants a login; the package is private.
        page.goto(f"{base}-/web/org/{org}/settings")
        page.wait_for_url(re.compile(r"/-/web/login\?next="))
        with server.http() as client:
            assert client.get(package.replace("/", "%2f")).status_code == 404

        # An outsider sees the same "not found" as for an org that does not exist.
        login(page, base, outsider.name, outsider.password)
        assert page.goto(f"{base}-/web/org/{org}/settings").status == 404
        missing = page.inner_text("main")
        assert page.goto(f"{base}-/web/org/{unique('nope')}/settings").status == 404
        assert page.inner_text("main") == missing
        assert page.goto(f"{base}-/web/package/{package}/settings").status == 404
        logout(page, base)

        # The member sees the package, read-only, and cannot change the org.
        login(page, base, member.name, member.password)
        page.goto(f"{base}-/web/org/{org}/settings")
        assert package in page.inner_text("#team-qa")
        assert page.locator("#add-user").count() == 0
        resp = page.goto(f"{base}-/web/package/{package}/settings")
        assert resp.status == 403  # a writer through the developers team, not an owner
    finally:
        context.close()
    watch.assert_clean()


def test_transfer_package_to_org_then_npm_access(browser, server, tmp_path):
    """A user's unscoped package, transferred to an org on its settings page, is the org's: the real
    npm grants it to a team and lists it among the org's packages; outsiders still cannot manage it."""
    owner, outsider = server.create_user("owner"), server.create_user("outsider")
    org, package = unique("org"), unique("lib")
    base = server.url
    with server.http(token=owner.token) as client:
        assert client.put(f"-/org/{org}", json={}).status_code == 201
        assert client.put(f"-/org/{org}/team", json={"name": "devs"}).status_code == 201
    npm = Npm(server, tmp_path / "npm", user=owner)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    try:
        npm.publish(new_package(tmp_path, package))
        # Before the transfer, the org's teams cannot be granted the package.
        assert npm.run("access", "grant", "read-write", f"{org}:devs", package, ok=False).returncode != 0

        login(page, base, owner.name, owner.password)
        page.goto(f"{base}-/web/package/{package}/settings")
        page.fill("#transfer-to", org)
        page.fill("#transfer-confirm", package)
        page.click("#transfer button[type=submit]")
        page.wait_for_url(re.compile(rf"/-/web/org/{org}/settings\?notice=transferred-to-org"))
        assert "belongs to this organization now" in page.inner_text("main")
        assert package in page.inner_text("#packages")
        shoot(page, "org-transferred")

        npm.run("access", "grant", "read-write", f"{org}:devs", package)
        assert f"{package}: read-write" in npm.run("access", "list", "packages", f"{org}:devs").stdout
        assert f"{package}: read-write" in npm.run("access", "list", "packages", org).stdout
        logout(page, base)

        login(page, base, outsider.name, outsider.password)
        assert page.goto(f"{base}-/web/package/{package}/settings").status == 403
    finally:
        context.close()
        npm.close()
    outsider_npm = Npm(server, tmp_path / "npm-outsider", user=outsider)
    try:
        assert outsider_npm.run("access", "set", "mfa=publish", package, ok=False).returncode != 0
    finally:
        outsider_npm.close()
    watch.assert_clean()
