"""Deleting an account on its settings page, over the in-process app: password and one-time
password, the refusal while the user alone holds packages or orgs, and what goes with the account."""

from __future__ import annotations

import pyotp
import pytest
from web_browser import Browser

PATH = "/-/web/settings/delete"


@pytest.fixture
def browser(reg) -> Browser:
    return Browser(reg.client)


def _login(browser: Browser, user) -> None:
    assert browser.submit("/-/web/login", {"username": user.name, "password": user.password}).status_code == 303


def test_refused_while_sole_maintainer_or_owner(reg, browser):
    user, friend = reg.signup("del"), reg.signup("friend")
    alone, shared = reg.unique("alone"), reg.unique("shared")
    reg.publish_ok(user, alone)
    reg.publish_ok(user, shared)
    doc = reg.doc(shared, user)
    owners = {"_id": shared, "name": shared, "maintainers": [{"name": user.name}, {"name": friend.name}]}
    reg.assert_ok(reg.put_json(f"/{shared}/-rev/{doc['_rev']}", owners, user), 200, 201)
    org = reg.unique("org")
    reg.assert_ok(reg.put_json(f"/-/org/{org}", {}, user), 201)
    reg.assert_ok(reg.put_json(f"/-/org/{org}/user", {"user": friend.name, "role": "developer"}, user), 201)
    _login(browser, user)

    page = browser.get(PATH)
    assert page.status_code == 200 and alone in page.text and f"@{org}" in page.text and shared not in page.text
    refused = browser.submit(PATH, {"password": user.password}, page="/-/web/settings")
    assert refused.status_code == 409 and "Hand over your packages and organizations first" in refused.text
    assert reg.client.get("/-/whoami", headers=user.auth).status_code == 200

    # Handed over: the package to the friend, the org to a second owner.
    doc = reg.doc(alone, user)
    mine = {"_id": alone, "name": alone, "maintainers": [{"name": friend.name}]}
    reg.assert_ok(reg.put_json(f"/{alone}/-rev/{doc['_rev']}", mine, user), 200, 201)
    reg.assert_ok(reg.put_json(f"/-/org/{org}/user", {"user": friend.name, "role": "owner"}, user), 201)
    wrong = browser.submit(PATH, {"password": "not-the-password"})
    assert wrong.status_code == 401 and reg.client.get("/-/whoami", headers=user.auth).status_code == 200

    done = browser.submit(PATH, {"password": user.password})
    assert done.status_code == 200 and "is deleted and you are logged out" in done.text
    assert "ketch_session" not in browser.jar
    assert browser.get("/-/web/settings").status_code == 303  # the browser session is gone
    assert reg.client.get("/-/whoami", headers=user.auth).status_code == 401  # and every token
    assert [m["name"] for m in reg.doc(shared)["maintainers"]] == [friend.name]
    assert user.name not in reg.client.get(f"/-/org/{org}/user", headers=friend.auth).json()
    # The name stays taken.
    again = reg.client.put(f"/-/user/org.couchdb.user:{user.name}",
                           json={"name": user.name, "password": "pw-new-123456", "email": "x@example.test"})
    assert again.status_code in (401, 409)


def test_needs_the_one_time_password_with_2fa(reg, browser):
    user = reg.signup("del2fa")
    _login(browser, user)
    assert browser.submit("/-/web/settings/2fa", {"action": "start", "mode": "auth-only",
                                                  "password": user.password}).status_code == 303
    secret = browser.get("/-/web/settings/2fa").text.split('id="totp-secret" class="acct-secret">')[1].split("<")[0]
    totp = pyotp.TOTP(secret)
    confirmed = browser.submit("/-/web/settings/2fa", {"action": "confirm", "code": totp.now()})
    recovery = confirmed.text.split('id="recovery-codes"')[1].split("<code>")[1].split("</code>")[0]

    page = browser.get(PATH)
    assert 'name="otp"' in page.text
    missing = browser.submit(PATH, {"password": user.password})
    assert missing.status_code == 401 and "authenticator app" in missing.text
    wrong = browser.submit(PATH, {"password": user.password, "otp": "000000"})
    assert wrong.status_code == 401 and browser.get("/-/web/settings").status_code == 200
    done = browser.submit(PATH, {"password": user.password, "otp": recovery})  # the app's code is spent
    assert done.status_code == 200 and "is deleted" in done.text
    assert browser.get("/-/web/settings").status_code == 303


def test_api_deletion_follows_the_same_rules(reg):
    """`DELETE /-/npm/v1/user` refuses and cleans up exactly as the settings page does."""
    user, friend = reg.signup("apidel"), reg.signup("apifriend")
    alone = reg.unique("apialone")
    reg.publish_ok(user, alone)
    body = {"password": user.password}
    refused = reg.client.request("DELETE", "/-/npm/v1/user", headers=user.auth, json=body)
    assert refused.status_code == 409 and f"package {alone}" in refused.json()["error"]

    doc = reg.doc(alone, user)
    owners = {"_id": alone, "name": alone, "maintainers": [{"name": user.name}, {"name": friend.name}]}
    reg.assert_ok(reg.put_json(f"/{alone}/-rev/{doc['_rev']}", owners, user), 200, 201)
    gone = reg.client.request("DELETE", "/-/npm/v1/user", headers=user.auth, json=body)
    assert gone.status_code == 200, gone.text
    assert [m["name"] for m in reg.doc(alone)["maintainers"]] == [friend.name]
