"""npm token list / create / revoke, and what restricted tokens (read-only, CIDR) may do."""

from __future__ import annotations

import pytest
from conftest import unique

pytestmark = pytest.mark.e2e


def token_list(npm) -> list[dict]:
    return npm.run("token", "list", "--json").json()


def find_token(tokens: list[dict], secret: str) -> dict:
    """The listing shows a prefix of each secret (protocol §12)."""
    matches = [t for t in tokens if t.get("token") and secret.startswith(t["token"].rstrip("…."))]
    assert len(matches) == 1, f"expected one listed token matching {secret[:8]}…: {tokens}"
    return matches[0]


def test_token_list_shows_the_session_token(npm, user):
    tokens = token_list(npm)
    assert tokens, "the login token itself is missing from the list"
    for entry in tokens:
        for key in ("token", "key", "created", "readonly", "cidr_whitelist"):
            assert key in entry, f"{key} missing from {entry}"
    mine = find_token(tokens, user.token)
    assert mine["readonly"] is False
    assert mine["token"] != user.token, "the list must not reveal whole secrets"
    # npm appends the "…" itself, and `npm token revoke <secret>` matches secret.startswith(token)
    assert user.token.startswith(mine["token"]), f"listed token {mine['token']!r} is not a prefix of the secret"

    text = npm.run("token", "list").stdout
    assert f"with id {mine['id']}" in text


def test_token_create_then_use_it(npm, npm_factory, make_package, user):
    label = unique("ci")
    created = npm.run("token", "create", "--password", user.password, "--name", label, "--json").json()
    secret = created["token"]
    assert secret and secret != user.token

    listed = find_token(token_list(npm), secret)
    assert listed["name"] == label
    assert listed["readonly"] is False

    ci = npm_factory(token=secret)
    assert ci.run("whoami").stdout.strip() == user.name
    name = unique("bytoken")
    assert f"+ {name}@1.0.0" in ci.publish(make_package(name, "1.0.0")).stdout


def test_token_create_plain_output(npm, user):
    result = npm.run("token", "create", "--password", user.password)
    assert result.stdout.startswith("Created token "), result.stdout


def test_token_create_needs_the_right_password(npm, user):
    before = len(token_list(npm))
    result = npm.run("token", "create", "--password", "wrong-" + user.password, ok=False)
    assert "E401" in result.output or "E403" in result.output, result.output
    assert len(token_list(npm)) == before


def test_token_revoke_by_id(npm, npm_factory, user):
    secret = npm.run("token", "create", "--password", user.password, "--json").json()["token"]
    token_id = find_token(token_list(npm), secret)["id"]

    assert npm.run("token", "revoke", token_id).stdout.strip() == "Removed 1 token"
    assert all(not secret.startswith(t["token"].rstrip("….")) for t in token_list(npm))
    assert "E401" in npm_factory(token=secret).run("whoami", ok=False).output
    assert npm.run("whoami").stdout.strip() == user.name  # the other tokens still work


def test_token_revoke_by_full_token_value(npm, npm_factory, user):
    secret = npm.run("token", "create", "--password", user.password, "--json").json()["token"]
    assert npm.run("token", "revoke", secret).stdout.strip() == "Removed 1 token"
    assert "E401" in npm_factory(token=secret).run("whoami", ok=False).output


def test_read_only_token_can_read_but_not_write(npm, npm_factory, registry, make_package, user):
    name = unique("ro")
    npm.publish(make_package(name, "1.0.0"))

    # npm 11 accepts --read-only but does not send it (protocol §12); the older npm-profile body does.
    with registry.http(user.token) as client:
        resp = client.post("-/npm/v1/tokens",
                           json={"password": user.password, "readonly": True, "cidr_whitelist": []})
    assert resp.status_code in (200, 201), resp.text
    secret = resp.json()["token"]
    assert find_token(token_list(npm), secret)["readonly"] is True

    reader = npm_factory(token=secret)
    assert reader.run("whoami").stdout.strip() == user.name
    reader.run("install", name)
    assert reader.require(name)["version"] == "1.0.0"

    refused = reader.publish(make_package(name, "1.1.0"), ok=False)
    assert "E403" in refused.output, refused.output
    assert npm.view(name, "versions") == ["1.0.0"]  # nothing was published
    refused = reader.run("dist-tag", "add", f"{name}@1.0.0", "stable", ok=False)
    assert "E403" in refused.output, refused.output


def test_cidr_restricted_token(npm, npm_factory, user):
    outside = npm.run("token", "create", "--password", user.password, "--cidr=10.0.0.0/8", "--json").json()
    assert outside["cidr_whitelist"] == ["10.0.0.0/8"]
    assert find_token(token_list(npm), outside["token"])["cidr_whitelist"] == ["10.0.0.0/8"]

    result = npm_factory(token=outside["token"]).run("whoami", ok=False)
    assert "EAUTHIP" in result.output, result.output
    assert "Login is not allowed from your IP address" in result.output

    inside = npm.run("token", "create", "--password", user.password, "--cidr=127.0.0.0/8", "--json").json()
    assert npm_factory(token=inside["token"]).run("whoami").stdout.strip() == user.name


# -- granular tokens (npm 11: --packages, --scopes, --orgs, --packages-and-scopes-permission, …) -----


def create_granular(npm, user, *args: str) -> dict:
    return npm.run("token", "create", "--password", user.password, *args, "--json").json()


def test_granular_token_limited_to_one_package(npm, npm_factory, make_package, user):
    mine, other = unique("gran"), unique("gran-other")
    hidden = f"@{user.name}/{unique('hidden')}"
    npm.publish(make_package(mine, "1.0.0"))
    npm.publish(make_package(other, "1.0.0"))
    npm.publish(make_package(hidden, "1.0.0"), "--access", "restricted")

    label = unique("ci-one")
    created = create_granular(npm, user, "--packages", mine, "--packages-and-scopes-permission", "read-write",
                              "--name", label, "--token-description", "publishes one package")
    secret = created["token"]
    assert created["packages"] == [mine] and created["packages_and_scopes_permission"] == "read-write", created
    listed = find_token(token_list(npm), secret)
    assert listed["name"] == label and listed["description"] == "publishes one package"
    assert listed["granular"] is True and listed["readonly"] is False
    assert listed["packages"] == [mine] and listed["scopes"] is None
    assert listed["orgs"] is None and listed["orgs_permission"] == "no-access"
    assert f"name {label}" in npm.run("token", "list").stdout

    ci = npm_factory(token=secret)
    assert ci.run("whoami").stdout.strip() == user.name
    assert f"+ {mine}@1.1.0" in ci.publish(make_package(mine, "1.1.0")).stdout

    refused = ci.publish(make_package(other, "1.1.0"), ok=False)
    assert "E403" in refused.output and f'You do not have permission to publish "{other}"' in refused.output, \
        refused.output
    assert npm.view(other, "versions") == ["1.0.0"]
    brand_new = unique("gran-new")
    refused = ci.publish(make_package(brand_new, "1.0.0"), ok=False)
    assert "E403" in refused.output, refused.output
    assert "E404" in npm.run("view", brand_new, "name", ok=False).output

    # the user's own private package is not in the list: as invisible as a name that never existed
    missing = ci.run("install", hidden, ok=False)
    assert "E404" in missing.output, missing.output
    assert npm.view(hidden, "name") == hidden  # while its owner's own login still sees it
    # public packages stay installable
    ci.run("install", other)
    assert ci.require(other)["version"] == "1.0.0"

    # revoked with `npm token revoke <id>`: it stops working at once
    token_id = find_token(token_list(npm), secret)["id"]
    assert npm.run("token", "revoke", token_id).stdout.strip() == "Removed 1 token"
    assert "E401" in ci.run("whoami", ok=False).output
    assert all(not secret.startswith(t["token"].rstrip("….")) for t in token_list(npm))


def test_read_only_granular_token_reads_but_cannot_publish(npm, npm_factory, make_package, user):
    hidden = f"@{user.name}/{unique('ro-gran')}"
    npm.publish(make_package(hidden, "1.0.0"), "--access", "restricted")
    created = create_granular(npm, user, "--packages", hidden, "--packages-and-scopes-permission", "read-only")
    assert created["readonly"] is True, created

    reader = npm_factory(token=created["token"])
    reader.run("install", hidden)
    assert reader.require(hidden)["version"] == "1.0.0"
    refused = reader.publish(make_package(hidden, "1.1.0"), ok=False)
    assert "E403" in refused.output and "read-only" in refused.output, refused.output
    refused = reader.run("dist-tag", "add", f"{hidden}@1.0.0", "beta", ok=False)
    assert "E403" in refused.output, refused.output
    assert npm.view(hidden, "versions") == ["1.0.0"]
    assert npm.view(hidden, "dist-tags") == {"latest": "1.0.0"}


def test_granular_token_for_a_scope(npm, npm_factory, make_package, user):
    created = create_granular(npm, user, f"--scopes=@{user.name}", "--packages-and-scopes-permission", "read-write",
                              "--expires", "30")
    assert created["scopes"] == [user.name], created
    assert "expires" in created and created["expires"], created
    ci = npm_factory(token=created["token"])
    fresh = f"@{user.name}/{unique('scoped')}"
    assert f"+ {fresh}@1.0.0" in ci.publish(make_package(fresh, "1.0.0")).stdout
    outside = unique("unscoped")
    assert "E403" in ci.publish(make_package(outside, "1.0.0"), ok=False).output


def test_granular_token_input_is_checked(npm, registry, user):
    before = len(token_list(npm))
    unknown = npm.run("token", "create", "--password", user.password, "--packages", unique("never-published"),
                      "--packages-and-scopes-permission", "read-write", ok=False)
    assert "E400" in unknown.output and "Unknown package" in unknown.output, unknown.output
    past = npm.run("token", "create", "--password", user.password, "--expires", "-1", ok=False)
    assert "E400" in past.output and "cannot expire in the past" in past.output, past.output
    other_scope = npm.run("token", "create", "--password", user.password, "--scopes", unique("nobody"),
                          "--packages-and-scopes-permission", "read-only", ok=False)
    assert "E400" in other_scope.output and "Unknown scope" in other_scope.output, other_scope.output

    # what the npm CLI would refuse before sending, straight over HTTP: npm-shaped JSON errors
    with registry.http(user.token) as client:
        for body, text in [
            ({"packages_and_scopes_permission": "admin"}, "packages_and_scopes_permission must be"),
            ({"orgs": [unique("org")]}, "orgs_permission"),
            ({"packages": [f"@{user.name}/x"], "packages_and_scopes_permission": "no-access"}, "no-access"),
            ({"cidr_whitelist": ["10.0.0.0/33"]}, "Invalid CIDR"),
            ({"packages": "x" * 300, "packages_and_scopes_permission": "read-only"}, "packages must be"),
            ({"expires": 0}, "in the past"),
        ]:
            resp = client.post("-/npm/v1/tokens", json={"password": user.password, "name": None, **body})
            assert resp.status_code == 400, (body, resp.status_code, resp.text)
            assert text in resp.json()["error"], (body, resp.json())
    assert len(token_list(npm)) == before
