"""Two-factor authentication through the real npm: `npm profile enable-2fa` / `disable-2fa` on a
terminal, OTP prompts and `--otp` on writes and logins, recovery codes, automation tokens, and the
web login's second step (protocol §1.6, §11, §13)."""

from __future__ import annotations

import re

import httpx
import pytest
from accounts_support import enable_2fa, expect_prompt, finish, submit
from conftest import unique

pytestmark = pytest.mark.e2e


def profile(npm) -> dict:
    return npm.run("profile", "get", "--json").json()


def publish_two_versions(npm, make_package) -> str:
    """A package of the user's with 1.0.0 and 1.1.0 (latest), published before 2FA is on."""
    name = unique("tfa")
    npm.publish(make_package(name, "1.0.0"))
    npm.publish(make_package(name, "1.1.0"))
    return name


def test_enable_2fa_then_writes_need_an_otp(npm, user, make_package):
    name = publish_two_versions(npm, make_package)
    assert "two-factor auth: disabled" in npm.run("profile", "get").stdout

    app, codes, transcript = enable_2fa(npm, user.password)
    assert len(codes) == 10 and len(set(codes)) == 10, transcript
    assert profile(npm)["tfa"] == {"mode": "auth-and-writes", "pending": False}
    assert "two-factor auth: auth-and-writes" in npm.run("profile", "get").stdout

    # A write without a code: npm (no terminal to ask on) fails with EOTP; with --otp it works.
    refused = npm.run("dist-tag", "add", f"{name}@1.0.0", "latest", ok=False)
    assert "EOTP" in refused.output, refused.output
    assert npm.view(name, "dist-tags.latest") == "1.1.0"
    npm.run("dist-tag", "add", f"{name}@1.0.0", "latest", f"--otp={app.code()}")
    assert npm.view(name, "dist-tags.latest") == "1.0.0"
    # A wrong code is refused the same way.
    wrong = npm.run("dist-tag", "add", f"{name}@1.1.0", "latest", f"--otp={app.wrong_code()}", ok=False)
    assert "EOTP" in wrong.output, wrong.output

    # Token creation needs one too (npm docs: both modes).
    refused = npm.run("token", "create", "--password", user.password, ok=False)
    assert "EOTP" in refused.output, refused.output
    created = npm.run("token", "create", "--password", user.password, f"--otp={app.code()}", "--json").json()
    assert created["token"].startswith("ketch_")

    # Reads need nothing.
    assert npm.run("whoami").stdout.strip() == user.name


def test_publish_needs_an_otp_with_auth_and_writes(npm, user, make_package):
    app, _, _ = enable_2fa(npm, user.password)
    name = unique("tfapub")
    refused = npm.publish(make_package(name, "1.0.0"), ok=False)
    assert "EOTP" in refused.output, refused.output
    assert npm.registry.packument(name).status_code == 404
    published = npm.publish(make_package(name, "1.0.0"), f"--otp={app.code()}")
    assert f"+ {name}@1.0.0" in published.stdout


def test_otp_prompt_on_a_terminal_retries_the_write(npm, user, make_package):
    """With a terminal, npm asks for the code when the registry challenges, and repeats the request."""
    name = publish_two_versions(npm, make_package)
    app, _, _ = enable_2fa(npm, user.password)
    child = npm.spawn("dist-tag", "add", f"{name}@1.0.0", "latest")
    expect_prompt(child, "Enter OTP:", app.code())
    status, output = finish(child)
    assert status == 0, output
    assert npm.view(name, "dist-tags.latest") == "1.0.0"


def test_legacy_login_asks_for_the_otp(npm, npm_factory, user):
    app, _, _ = enable_2fa(npm, user.password, "auth-only")
    assert profile(npm)["tfa"] == {"mode": "auth-only", "pending": False}

    laptop = npm_factory()
    child = laptop.spawn("login", "--auth-type=legacy")
    expect_prompt(child, "Username:", user.name)
    expect_prompt(child, "Password:", user.password)
    expect_prompt(child, "Enter OTP:", app.code())
    status, output = finish(child)
    assert status == 0, output
    assert laptop.run("whoami").stdout.strip() == user.name

    # A wrong code: refused, no token written.
    other = npm_factory()
    child = other.spawn("login", "--auth-type=legacy")
    expect_prompt(child, "Username:", user.name)
    expect_prompt(child, "Password:", user.password)
    expect_prompt(child, "Enter OTP:", app.wrong_code())
    status, output = finish(child)
    assert status != 0 and "EOTP" in output, output
    assert "_authToken" not in other.config_text()


def test_recovery_code_works_once(npm, npm_factory, user):
    _, codes, _ = enable_2fa(npm, user.password, "auth-only")
    code = codes[3]
    laptop = npm_factory()
    child = laptop.spawn("login", "--auth-type=legacy")
    expect_prompt(child, "Username:", user.name)
    expect_prompt(child, "Password:", user.password)
    expect_prompt(child, "Enter OTP:", code)  # npm's prompt takes a 64-hex recovery code
    status, output = finish(child)
    assert status == 0, output
    assert laptop.run("whoami").stdout.strip() == user.name

    # Spent: the same code no longer works, another one does.
    again = npm.run("token", "create", "--password", user.password, f"--otp={code}", ok=False)
    assert "EOTP" in again.output, again.output
    npm.run("token", "create", "--password", user.password, f"--otp={codes[4]}")
    events = [e["action"] for e in _audit(npm)]
    assert events.count("recovery_codes:used") == 2, events


def test_disable_2fa(npm, user, make_package):
    name = publish_two_versions(npm, make_package)
    app, _, _ = enable_2fa(npm, user.password)
    child = npm.spawn("profile", "disable-2fa")
    expect_prompt(child, "npm password:", user.password)
    expect_prompt(child, "Enter OTP:", app.code())
    status, output = finish(child)
    assert status == 0, output
    assert "Two factor authentication disabled." in output
    assert profile(npm)["tfa"] is False
    npm.run("dist-tag", "add", f"{name}@1.0.0", "latest")  # no code needed any more
    assert npm.view(name, "dist-tags.latest") == "1.0.0"
    assert "Two factor authentication not enabled." in npm.run("profile", "disable-2fa").stdout


def test_switch_mode_and_restart_a_pending_setup(npm, npm_factory, user, registry):
    app, _, _ = enable_2fa(npm, user.password, "auth-only")
    # Switching mode: npm asks for the password, then (challenged) for a code.
    child = npm.spawn("profile", "enable-2fa", "auth-and-writes")
    expect_prompt(child, "npm password:", user.password)
    expect_prompt(child, "Enter OTP:", app.code())
    status, output = finish(child)
    assert status == 0, output
    assert "Two factor authentication mode changed to: auth-and-writes" in output
    assert profile(npm)["tfa"] == {"mode": "auth-and-writes", "pending": False}
    assert "already enabled" in npm.run("profile", "enable-2fa", "auth-and-writes").stdout

    # A fresh user whose setup was left pending: npm resets it and starts over.
    other = registry.create_user()
    with registry.http(other.token) as client:
        started = client.post("-/npm/v1/user", json={"tfa": {"mode": "auth-only", "password": other.password}})
        assert started.status_code == 200 and started.json()["tfa"].startswith("otpauth://"), started.text
        assert client.get("-/npm/v1/user").json()["tfa"] == {"mode": "auth-only", "pending": True}
    second = npm_factory(other)
    assert "two-factor auth: disabled" in second.run("profile", "get").stdout
    _, codes, _ = enable_2fa(second, other.password, "auth-only")
    assert len(codes) == 10


def test_automation_token_publishes_without_otp(npm, npm_factory, user, make_package):
    name = publish_two_versions(npm, make_package)
    app, _, _ = enable_2fa(npm, user.password)
    created = npm.run("token", "create", "--password", user.password, "--bypass-2fa", f"--otp={app.code()}",
                      "--json").json()
    assert created["automation"] is True, created
    ci = npm_factory(token=created["token"])
    published = ci.publish(make_package(name, "1.2.0"))
    assert f"+ {name}@1.2.0" in published.stdout
    ci.run("dist-tag", "add", f"{name}@1.0.0", "latest")
    assert ci.view(name, "dist-tags.latest") == "1.0.0"
    # The person's own session token still needs a code.
    assert "EOTP" in npm.run("dist-tag", "add", f"{name}@1.2.0", "latest", ok=False).output


def test_web_login_asks_for_the_otp_after_the_password(npm, npm_factory, user):
    app, _, _ = enable_2fa(npm, user.password, "auth-only")
    laptop = npm_factory()
    child = laptop.spawn("login", tty=False)
    child.expect(r"(http://\S+/-/web/login/\S+)", timeout=60)
    login_url = child.match.group(1).strip()
    with httpx.Client(timeout=30.0, trust_env=False) as browser:
        page = browser.get(login_url)
        step = submit(browser, page, {"username": user.name, "password": user.password}, needs="password")
        assert step.status_code == 200, step.text
        assert 'name="otp"' in step.text and user.password not in step.text
        wrong = submit(browser, step, {"otp": app.wrong_code()}, needs="otp")
        assert wrong.status_code == 401 and 'name="otp"' in wrong.text, wrong.text
        done = submit(browser, wrong, {"otp": app.code()}, needs="otp")
        assert done.status_code == 200 and "You are logged in" in done.text, done.text
    status, output = finish(child)
    assert status == 0, output
    assert laptop.run("whoami").stdout.strip() == user.name


def _audit(npm) -> list[dict]:
    token = re.search(r":_authToken=(\S+)", npm.config_text()).group(1)
    with npm.registry.http(token) as client:
        resp = client.get("-/npm/v1/user/audit")
    assert resp.status_code == 200, resp.text
    return resp.json()["objects"]


def test_audit_log_lists_the_2fa_events(npm, user):
    app, _, _ = enable_2fa(npm, user.password, "auth-only")
    npm.run("token", "create", "--password", user.password, f"--otp={app.code()}")
    events = _audit(npm)
    actions = [e["action"] for e in events]
    assert actions[0] == "token:created" and "2fa:enabled" in actions and actions[-1] == "signup", actions
    assert all(e["ip"] == "127.0.0.1" for e in events), events
