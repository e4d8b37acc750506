"""Transferring a package to an organization from its settings page, over the in-process app:
afterwards the org's owners and admins administer it, its teams can be granted it through the npm
API, `npm access list packages <org>` lists it, and outsiders still cannot touch it."""

from __future__ import annotations

import pytest
from web_browser import Browser


@pytest.fixture
def browser(reg) -> Browser:
    return Browser(reg.client)


def _login(browser: Browser, user) -> None:
    assert browser.submit("/-/web/login", {"username": user.name, "password": user.password}).status_code == 303


def _org(reg, owner, *members: tuple[object, str]) -> str:
    org = reg.unique("org")
    reg.assert_ok(reg.put_json(f"/-/org/{org}", {}, owner), 201)
    for user, role in members:
        reg.assert_ok(reg.put_json(f"/-/org/{org}/user", {"user": user.name, "role": role}, owner), 201)
    return org


def _transfer(browser: Browser, name: str, target: str):
    path = f"/-/web/package/{name}/settings"
    return browser.submit(path, {"action": "transfer", "user": target, "confirm_name": name}, page="/-/web/settings")


def test_transfer_to_org_gives_it_the_package(reg, browser, alice, bob):
    carol, dave, outsider = reg.signup("carol"), reg.signup("dave"), reg.signup("out")
    org = _org(reg, bob, (alice, "admin"), (carol, "admin"), (dave, "developer"))
    name = reg.unique("lib")
    reg.publish_ok(alice, name)

    # Before: the org's teams cannot be granted a package outside its scope.
    reg.assert_ok(reg.put_json(f"/-/org/{org}/team", {"name": "devs"}, bob), 201)
    grant = {"package": name, "permissions": "read-write"}
    reg.assert_error(reg.put_json(f"/-/team/{org}/devs/package", grant, bob), 404)

    _login(browser, alice)
    resp = _transfer(browser, name, org)
    assert resp.status_code == 303 and f"/-/web/org/{org}/settings" in resp.headers["location"], resp.text
    page = browser.get(f"/-/web/org/{org}/settings?notice=transferred-to-org")
    assert "belongs to this organization now" in page.text and name in page.text

    # The org's owners are the maintainers now; another admin of the org administers it.
    assert [m["name"] for m in reg.doc(name)["maintainers"]] == [bob.name]
    carol_sets = reg.client.post(f"/-/package/{reg.escaped(name)}/access", json={"publish_requires_tfa": False},
                                 headers=carol.auth)
    reg.assert_ok(carol_sets, 200)

    # Team grants work on it, and `npm access list packages <org>` lists it.
    reg.assert_ok(reg.put_json(f"/-/team/{org}/devs/package", grant, bob), 201)
    reg.assert_ok(reg.put_json(f"/-/team/{org}/devs/user", {"user": dave.name}, bob), 201)
    listed = reg.assert_ok(reg.client.get(f"/-/org/{org}/package", headers=bob.auth), 200)
    assert listed[name] == "write"
    assert reg.assert_ok(reg.client.get(f"/-/team/{org}/devs/package", headers=bob.auth), 200) == {name: "write"}
    reg.publish_ok(dave, name, "1.1.0")  # a developer with a read-write grant publishes

    # Outsiders still cannot administer it or grant it.
    reg.assert_error(reg.client.post(f"/-/package/{reg.escaped(name)}/access", json={"publish_requires_tfa": True},
                                     headers=outsider.auth), 403)
    assert reg.publish(outsider, name, "9.9.9").status_code == 403
    reg.assert_error(reg.put_json(f"/-/team/{org}/devs/package", grant, outsider), 404)

    events = reg.assert_ok(reg.client.get(f"/-/org/{org}/audit", headers=bob.auth), 200)["objects"]
    transfer = next(e for e in events if e["action"] == "package:transfer")
    assert transfer["actor"] == alice.name and transfer["package"] == name


def test_transfer_needs_package_admin_and_org_manager(reg, browser, alice, bob):
    org = _org(reg, bob, (alice, "developer"))
    name = reg.unique("lib")
    reg.publish_ok(alice, name)
    _login(browser, alice)

    # A developer of the org may not hand it packages.
    resp = _transfer(browser, name, org)
    assert resp.status_code == 403 and f"Only owners and admins of @{org}" in resp.text
    # An org the caller is not in answers like one that does not exist.
    other = _org(reg, reg.signup("other"))
    assert _transfer(browser, name, other).status_code == 404
    assert [m["name"] for m in reg.doc(name)["maintainers"]] == [alice.name]

    # Someone who runs the org but does not administer the package cannot take it.
    bob_browser = Browser(reg.client)
    _login(bob_browser, bob)
    resp = _transfer(bob_browser, name, org)
    assert resp.status_code == 403 and "You do not have permission" in resp.text
    # Nor can a package of another org's scope move.
    scoped = f"@{org}/thing"
    reg.publish_ok(bob, scoped)
    mine = _org(reg, bob)
    resp = _transfer(bob_browser, scoped, mine)
    assert resp.status_code == 400 and "stays with it" in resp.text


def test_hidden_and_missing_names_cost_the_same_queries(reg, alice, bob):
    """C02 still holds for packages transferred to an org: the access check of a private package
    the caller cannot see runs the same queries as the stand-in for a missing name."""
    import asyncio

    from sqlalchemy import event

    from ketch.accounts.services import Identity
    from ketch.db import Database
    from ketch.registry import access

    org = _org(reg, alice)
    name = f"@{alice.name}/{reg.unique('p')}"
    reg.publish_ok(alice, name, access="restricted")
    browser = Browser(reg.client)
    _login(browser, alice)
    assert _transfer(browser, name, org).status_code == 303

    async def count(target: str) -> int:
        db = Database(reg.settings.resolved_database_url)
        seen = []
        event.listen(db.engine.sync_engine, "before_cursor_execute", lambda *a: seen.append(1))
        try:
            async with db.read() as session:
                found = await access.hidden_package(session, target)
                await access.can_read_hidden(session, found, target, Identity(0, bob.name, None))
        finally:
            await db.dispose()
        return len(seen)

    hidden = asyncio.run(count(name))
    missing = asyncio.run(count(f"@{alice.name}/{reg.unique('nope')}"))
    assert hidden == missing
