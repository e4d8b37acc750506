"""Granular tokens beyond packages: their org limits, what they may not do to the account, two-factor
authentication at creation, and the team-grant lookup that must not reveal other scopes' names."""

from __future__ import annotations

import time

import pyotp


def create_token(reg, user, **body):
    return reg.client.post("/-/npm/v1/tokens", headers=user.auth, json={"password": user.password, **body})


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def make_org(reg, owner, member) -> str:
    org = reg.unique("fo")
    reg.assert_ok(reg.client.put(f"/-/org/{org}", headers=owner.auth, json={}), 201)
    reg.assert_ok(reg.client.put(f"/-/org/{org}/user", headers=owner.auth,
                                 json={"user": member.name, "role": "developer"}), 201)
    return org


def test_granular_token_creation_needs_an_otp_with_2fa(reg):
    user = reg.signup("tfa")
    started = reg.client.post("/-/npm/v1/user", headers=user.auth,
                              json={"tfa": {"mode": "auth-only", "password": user.password}})
    totp = pyotp.TOTP(pyotp.parse_uri(reg.assert_ok(started)["tfa"]).secret)
    reg.assert_ok(reg.client.post("/-/npm/v1/user", headers=user.auth, json={"tfa": [totp.now()]}))
    body = {"scopes": [user.name], "packages_and_scopes_permission": "read-write"}
    refused = create_token(reg, user, **body)
    reg.assert_error(refused, 401)
    assert "otp" in refused.headers.get("www-authenticate", "").lower()
    next_code = totp.at(time.time() + 30)  # the current one was spent confirming 2FA (no replay)
    created = reg.client.post("/-/npm/v1/tokens", headers={**user.auth, "npm-otp": next_code},
                              json={"password": user.password, **body})
    data = reg.assert_ok(created, 201)
    assert data["granular"] is True and data["scopes"] == [user.name]


def test_org_limits_of_granular_tokens(reg, alice, bob):
    org = make_org(reg, alice, bob)
    other_org = make_org(reg, alice, bob)
    package_only = reg.assert_ok(create_token(reg, alice, scopes=[org],
                                              packages_and_scopes_permission="read-write"), 201)["token"]
    org_reader = reg.assert_ok(create_token(reg, alice, orgs=[org], orgs_permission="read-only"), 201)["token"]
    org_admin = reg.assert_ok(create_token(reg, alice, orgs=[org], orgs_permission="read-write"), 201)["token"]

    for token in (package_only, org_reader):
        reg.assert_error(reg.client.put(f"/-/org/{org}/team", headers=bearer(token), json={"name": "qa"}), 403)
        reg.assert_error(reg.client.request("DELETE", f"/-/org/{org}/user", headers=bearer(token),
                                            json={"user": bob.name}), 403)
    reg.assert_error(reg.client.get(f"/-/org/{org}/user", headers=bearer(package_only)), 403,
                     contains="may not read")
    assert bob.name in reg.assert_ok(reg.client.get(f"/-/org/{org}/user", headers=bearer(org_reader)))
    # the org it names, and no other
    reg.assert_ok(reg.client.put(f"/-/org/{org}/team", headers=bearer(org_admin), json={"name": "qa"}), 201)
    reg.assert_error(reg.client.put(f"/-/org/{other_org}/team", headers=bearer(org_admin), json={"name": "qa"}), 403)
    reg.assert_error(reg.client.get(f"/-/org/{other_org}/team", headers=bearer(org_admin)), 403)

    # granting a team a package is a change to the package too: the token must cover it
    name = f"@{org}/{reg.unique('g')}"
    reg.publish_ok(alice, name)
    reg.assert_error(reg.client.put(f"/-/team/{org}/qa/package", headers=bearer(org_admin),
                                    json={"package": name, "permissions": "read-only"}), 403)
    reg.assert_ok(reg.client.put(f"/-/team/{org}/qa/package", headers=alice.auth,
                                 json={"package": name, "permissions": "read-only"}), 201)


def test_granular_tokens_cannot_take_over_the_account(reg, alice):
    token = reg.assert_ok(create_token(reg, alice, scopes=[alice.name],
                                       packages_and_scopes_permission="read-write"), 201)["token"]
    reg.assert_error(reg.client.post("/-/npm/v1/user", headers=bearer(token), json={"email": "thief@example.test"}),
                     403, contains="limited")
    key = reg.assert_ok(create_token(reg, alice), 201)["key"]
    reg.assert_error(reg.client.delete(f"/-/npm/v1/tokens/token/{key}", headers=bearer(token)), 403)
    profile = reg.assert_ok(reg.client.get("/-/npm/v1/user", headers=alice.auth))
    assert profile["email"] == alice.email


def test_team_grants_do_not_reveal_other_scopes(reg, alice, bob):
    org = make_org(reg, bob, alice)  # bob owns this org; alice is only a member
    hidden = f"@{alice.name}/{reg.unique('priv')}"
    reg.publish_ok(alice, hidden, access="restricted")
    never = f"@{alice.name}/{reg.unique('priv')}"
    answers = []
    for name in (hidden, never):
        resp = reg.client.put(f"/-/team/{org}/developers/package", headers=bob.auth,
                              json={"package": name, "permissions": "read-only"})
        reg.assert_error(resp, 404)
        answers.append(resp.json()["error"].replace(name, "<name>"))
    assert answers[0] == answers[1], answers
    # a stranger to the org learns nothing either, about the org or the package
    stranger = reg.signup("stranger")
    for name in (hidden, never):
        resp = reg.client.put(f"/-/team/{org}/developers/package", headers=stranger.auth,
                              json={"package": name, "permissions": "read-only"})
        reg.assert_error(resp, 404)
        assert resp.json()["error"] == "Not found"
