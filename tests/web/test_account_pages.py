"""The account pages in Debian's Chromium against a real ``ketch serve``: sign up, verify the email
address from a real (local) SMTP server, turn on two-factor authentication from the QR code's key,
create a token and publish with it from the real npm, log in again with the second step, approve
a real `npm login --auth-type=web` with one click, and log in with a WebAuthn security key
(Chromium's virtual authenticator)."""

from __future__ import annotations

import re

import pytest
from account_support import (Authenticator, Npm, Watch, finish, link_in, login, logout, new_package, own_registry,
                             shoot, unique)
from account_support import browser, page, sink  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(sink, tmp_path_factory):
    with own_registry(tmp_path_factory.mktemp("web-accounts"), sink) as s:
        yield s


def test_signup_verify_2fa_token_and_publish_with_npm(page, server, sink, tmp_path):
    base = server.url
    name, password = unique("web"), "web-pw-" + unique("p")
    email = f"{name}@example.test"

    page.goto(f"{base}-/web/signup")
    assert page.title() == "Sign up · Ketch"
    assert page.locator('meta[name="description"]').get_attribute("content")
    shoot(page, "signup")
    before = sink.count()
    page.fill("#username", name)
    page.fill("#email", email)
    page.fill("#password", password)
    page.fill("#confirm", password)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/-/web/settings\?notice=welcome"))
    assert "not verified" in page.inner_text("main")
    cookie = next(c for c in page.context.cookies() if c["name"] == "ketch_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    # The verification link arrives by real SMTP and works in the browser.
    link = link_in(sink.wait_for(to=email, subject="Verify your email", after=before), "/-/web/verify-email")
    page.goto(link)
    assert "Email address verified" in page.inner_text("main")
    page.goto(f"{base}-/web/settings")
    assert "verified" in page.inner_text("main") and "not verified" not in page.inner_text("main")
    shoot(page, "settings-profile")

    # Two-factor authentication: the key under the QR code goes into an authenticator app.
    page.goto(f"{base}-/web/settings/2fa")
    shoot(page, "settings-2fa-off")
    page.check('input[name=mode][value="auth-and-writes"]')
    page.fill("#start-password", password)
    page.click("main form:has(#start-password) button[type=submit]")
    assert page.locator("svg.acct-qr").is_visible()
    shoot(page, "settings-2fa-qr")
    app = Authenticator(page.inner_text("#totp-secret").strip())
    page.fill("#code", app.code())
    page.click("main form:has(#code) button[type=submit]")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[0-9a-f]{64}", c.strip()) for c in codes)
    shoot(page, "settings-2fa-codes")
    page.reload()  # shown once only
    assert page.locator("#recovery-codes").count() == 0
    assert "is on" in page.inner_text("main")

    # A wrong password or a missing code creates no token.
    page.goto(f"{base}-/web/settings/tokens")
    page.check('input[name=type][value="automation"]')
    page.fill("#c-password", password)
    page.fill("#c-otp", app.wrong_code())
    page.click("main form:has(#c-password) button[type=submit]")
    assert "not right" in page.inner_text(".acct-error")
    assert page.locator("#new-token").count() == 0

    # An automation token made here publishes from the real npm without asking for a code.
    page.check('input[name=type][value="automation"]')
    page.fill("#c-password", password)
    page.fill("#c-otp", app.code())
    page.click("main form:has(#c-password) button[type=submit]")
    token = page.inner_text("#new-token").strip()
    assert token.startswith("ketch_")
    shoot(page, "settings-tokens-created")
    npm = Npm(server, tmp_path / "npm", token=token)
    try:
        assert npm.run("whoami").stdout.strip() == name
        package = f"@{name}/from-the-browser"
        npm.publish(new_package(tmp_path, package))
        assert npm.view(package, "version") == "1.0.0"
    finally:
        npm.close()
    page.reload()
    assert token[:10] in page.inner_text("main") and token not in page.content()

    # The session cookie is not an npm credential.
    session = next(c for c in page.context.cookies() if c["name"] == "ketch_session")["value"]
    with server.http(token=session) as client:
        assert client.get("-/whoami").status_code == 401

    # Log out, then in again: password, then the code from the app.
    logout(page, base)
    assert "logged out" in page.inner_text("main")
    page.goto(f"{base}-/web/settings/tokens")
    page.wait_for_url(re.compile(r"/-/web/login\?next="))
    shoot(page, "login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("main form button[type=submit]")
    page.wait_for_selector("#otp")
    shoot(page, "login-2fa")
    page.fill("#otp", app.wrong_code())
    page.click("main form:has(#otp) button[type=submit]")
    assert "not right" in page.inner_text(".acct-error")
    page.fill("#otp", app.code())
    page.click("main form:has(#otp) button[type=submit]")
    page.wait_for_url(re.compile(r"/-/web/settings/tokens$"))  # back where the login started

    page.goto(f"{base}-/web/settings/audit")
    events = page.inner_text("main table")
    for action in ("signup", "email:verified", "2fa:enabled", "token:created", "login:failed", "logout", "login"):
        assert action in events, action
    shoot(page, "settings-audit")


def test_npm_web_login_is_one_click_for_a_logged_in_browser(page, server, tmp_path):
    user = server.create_user("weblogin")
    login(page, server.url, user.name, user.password)
    npm = Npm(server, tmp_path / "npm")
    try:
        child = npm.spawn("login", "--auth-type=web", tty=False)
        child.expect(r"Login at:\s*\r?\n(\S+)")
        url = child.match.group(1)
        page.goto(url)
        assert user.name in page.inner_text("main")
        shoot(page, "npm-web-login")
        page.click("main form button[type=submit]")
        assert "You are logged in" in page.inner_text("main")
        status, output = finish(child)
        assert status == 0, output
        assert npm.run("whoami").stdout.strip() == user.name
    finally:
        npm.close()


def test_security_key_as_second_factor(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": False, "hasUserVerification": False,
        "isUserVerified": False, "automaticPresenceSimulation": True}})
    base = f"http://localhost:{server.port}/"  # WebAuthn needs a domain: an IP address is no RP ID
    user = server.create_user("keys")
    try:
        login(page, base, user.name, user.password)
        page.goto(f"{base}-/web/settings/security-keys")
        page.fill("#new-key-name", "virtual key")
        page.fill("#add-password", user.password)
        page.click("main form:has(#add-password) button[type=submit]")
        page.click("#acct-key-register button[type=submit]")
        page.wait_for_url(re.compile(r"notice=key-added"))
        assert "virtual key" in page.inner_text("main")
        shoot(page, "settings-security-keys")

        logout(page, base)
        page.fill("#username", user.name)
        page.fill("#password", user.password)
        page.click("main form button[type=submit]")
        page.wait_for_selector("#acct-key-login")
        assert page.locator("#otp").count() == 0  # no TOTP on this account: the key is the way in
        page.click("#acct-key-login button[type=submit]")
        page.wait_for_url(re.compile(r"/-/web/settings"))
        page.goto(f"{base}-/web/settings/audit")
        assert "security-key:added" in page.inner_text("main")
        assert "website+security-key" in page.inner_text("main")
    finally:
        context.close()
    watch.assert_clean()
