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
