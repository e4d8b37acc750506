"""npm login / adduser (legacy prompts on a pseudo-terminal, and the web flow), whoami, logout."""

from __future__ import annotations

import re

import pexpect
import pytest
from accounts_support import finish
from conftest import approve_web_login, unique

pytestmark = pytest.mark.e2e


def legacy_prompts(child, *answers: tuple[str, str]) -> str:
    seen = ""
    for prompt, answer in answers:
        child.expect(re.escape(prompt))
        seen += (child.before or "") + (child.after or "")
        child.sendline(answer)
    return seen


def test_legacy_login_on_a_terminal(npm_factory, make_user, registry):
    account = make_user()
    npm = npm_factory()  # no token yet
    child = npm.spawn("login", "--auth-type=legacy")
    legacy_prompts(child, ("Username:", account.name), ("Password:", account.password))
    status, output = finish(child)
    assert status == 0, output
    assert f"Logged in on {registry.url}" in output
    assert re.search(rf"^{re.escape(registry.nerf_dart)}:_authToken=\S+", npm.config_text(), re.MULTILINE)
    assert npm.run("whoami").stdout.strip() == account.name


def test_legacy_login_with_a_wrong_password_fails(npm_factory, make_user):
    account = make_user()
    npm = npm_factory()
    child = npm.spawn("login", "--auth-type=legacy")
    legacy_prompts(child, ("Username:", account.name), ("Password:", "not-" + account.password))
    status, output = finish(child)
    assert status != 0
    assert "E401" in output, output
    assert "_authToken" not in npm.config_text()


def test_legacy_adduser_creates_an_account(npm_factory, registry):
    name = unique("newbie")
    password = "pw-" + unique("secret")
    npm = npm_factory()
    child = npm.spawn("adduser", "--auth-type=legacy")
    legacy_prompts(child, ("Username:", name), ("Password:", password),
                   ("Email (this will be public):", f"{name}@example.test"))
    status, output = finish(child)
    assert status == 0, output
    assert f"Logged in on {registry.url}" in output
    assert npm.run("whoami").stdout.strip() == name

    # The account now exists: a couch login with its password works, a wrong one does not.
    body = {"_id": f"org.couchdb.user:{name}", "name": name, "type": "user", "roles": [],
            "date": "2026-01-01T00:00:00.000Z"}
    with registry.http() as client:
        good = client.put(f"-/user/org.couchdb.user:{name}", json={**body, "password": password})
        bad = client.put(f"-/user/org.couchdb.user:{name}", json={**body, "password": "wrong-" + password})
    assert good.status_code == 201 and good.json().get("token"), good.text
    assert bad.status_code == 401, bad.text


def test_legacy_adduser_of_an_existing_user_with_its_password_logs_in(npm_factory, make_user):
    account = make_user()
    npm = npm_factory()
    child = npm.spawn("adduser", "--auth-type=legacy")
    legacy_prompts(child, ("Username:", account.name), ("Password:", account.password),
                   ("Email (this will be public):", account.email))
    status, output = finish(child)
    assert status == 0, output
    assert npm.run("whoami").stdout.strip() == account.name


def read_login_url(child) -> str:
    child.expect(r"Login at:\s*\r?\n(\S+)")
    return child.match.group(1)


def test_web_login_approved_in_the_browser(npm_factory, make_user, registry):
    account = make_user()
    npm = npm_factory()
    child = npm.spawn("login", tty=False)  # default auth-type=web; no terminal, as in CI
    login_url = read_login_url(child)
    assert login_url.startswith(registry.url), login_url

    answer = approve_web_login(login_url, account.name, account.password)
    assert answer.status_code < 400, f"approval answered {answer.status_code}: {answer.text[:500]}"

    status, output = finish(child)
    assert status == 0, output
    assert f"Logged in on {registry.url}" in output
    assert npm.run("whoami").stdout.strip() == account.name


def test_web_login_wrong_password_does_not_approve(npm_factory, make_user):
    account = make_user()
    npm = npm_factory()
    child = npm.spawn("login", tty=False)
    login_url = read_login_url(child)

    refused = approve_web_login(login_url, account.name, "wrong-" + account.password)
    # a page telling the person so (the form again, or a 4xx page), never a server error
    assert refused.status_code < 500, f"wrong password answered {refused.status_code}: {refused.text[:300]}"
    assert refused.status_code >= 400 or re.search(r"type=[\"']?password", refused.text), refused.text[:500]
    # npm is still waiting (it polls every Retry-After seconds): no token for a failed sign-in.
    with pytest.raises(pexpect.TIMEOUT):
        child.expect("Logged in on", timeout=2)

    answer = approve_web_login(login_url, account.name, account.password)
    assert answer.status_code < 400, answer.text[:500]
    status, output = finish(child)
    assert status == 0, output
    assert npm.run("whoami").stdout.strip() == account.name


def test_whoami_then_logout_revokes_the_token(npm, npm_factory, user):
    assert npm.run("whoami").stdout.strip() == user.name

    npm.run("logout")
    assert "_authToken" not in npm.config_text()
    after = npm.run("whoami", ok=False)
    assert "ENEEDAUTH" in after.output

    # The token itself is dead on the server, not only forgotten by this client.
    stale = npm_factory(token=user.token)
    result = stale.run("whoami", ok=False)
    assert "E401" in result.output, result.output


def test_logout_without_credentials_fails(npm_factory):
    result = npm_factory().run("logout", ok=False)
    assert "ENEEDAUTH" in result.output


def test_signup_can_be_disabled(registry_factory, npm_factory):
    server = registry_factory.new("--no-signup")
    npm = npm_factory(server=server)
    child = npm.spawn("adduser", "--auth-type=legacy")
    name = unique("nobody")
    legacy_prompts(child, ("Username:", name), ("Password:", "pw-" + name),
                   ("Email (this will be public):", f"{name}@example.test"))
    status, output = finish(child)
    assert status != 0, output
    assert "_authToken" not in npm.config_text()
