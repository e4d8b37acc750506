"""Browser sessions and the account pages over the in-process app (adversarial.md W05, W07, W08):
CSRF on every form, session cookie flags, a session is no npm credential, logout and password
changes end sessions, two-factor login, open redirects, throttling shared with the npm API."""

from __future__ import annotations

import pyotp
import pytest
from web_browser import Browser, csrf_of, hidden

from ketch.config import Settings

PASSWORD = "web-password-1"


def _signup(reg, browser: Browser, prefix: str = "web") -> str:
    name = reg.unique(prefix)
    resp = browser.submit("/-/web/signup", {"username": name, "email": f"{name}@example.test",
                                            "password": PASSWORD, "confirm": PASSWORD})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/-/web/settings"), resp.text
    return name


def _login(browser: Browser, name: str, password: str = PASSWORD):
    return browser.submit("/-/web/login", {"username": name, "password": password})


@pytest.fixture
def browser(reg) -> Browser:
    return Browser(reg.client)


def test_session_cookie_flags(reg, browser):
    name = _signup(reg, browser)
    assert browser.submit("/-/web/logout", {}).status_code == 303
    resp = _login(browser, name)
    assert resp.status_code == 303
    cookie = browser.set_cookie_header("ketch_session")
    assert cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here; see the https test
    assert browser.jar["ketch_session"].startswith("kws_")
    assert browser.get("/-/web/settings").status_code == 200


def test_cookies_are_secure_over_https(reg):
    b = Browser(reg.client, scheme="https")
    b.get("/-/web/signup")
    assert "Secure" in b.set_cookie_header("ketch_csrf")
    _signup(reg, b)
    assert "Secure" in b.set_cookie_header("ketch_session")


def test_new_session_on_every_login_no_fixation(reg, browser):
    name = _signup(reg, browser)
    first = browser.jar["ketch_session"]
    planted = "kws_" + "A" * 43
    browser.jar["ketch_session"] = planted
    assert browser.get("/-/web/settings").status_code == 303  # an unknown session is no session
    _login(browser, name)
    assert browser.jar["ketch_session"] not in (first, planted)


@pytest.mark.parametrize("path, data", [
    ("/-/web/logout", {}),
    ("/-/web/settings", {"action": "profile", "fullname": "Mallory"}),
    ("/-/web/settings/password", {"password": PASSWORD, "new_password": "x" * 12, "confirm": "x" * 12}),
    ("/-/web/settings/2fa", {"action": "start", "mode": "auth-only", "password": PASSWORD}),
    ("/-/web/settings/tokens", {"action": "create", "kind": "classic", "type": "publish", "password": PASSWORD}),
    ("/-/web/settings/security-keys", {"action": "begin", "name": "k", "password": PASSWORD}),
    ("/-/web/orgs/new", {"name": "csrf-org"}),
])
@pytest.mark.parametrize("token", [None, "wrong-token-value-1234567890"])
def test_csrf_is_required_on_every_form(reg, browser, path, data, token):
    _signup(reg, browser)
    body = dict(data)
    if token:
        body["csrf"] = token
    resp = browser.post(path, body)
    assert resp.status_code == 403, (path, resp.status_code)
    assert "session expired" in resp.text
    # ... and nothing happened: still logged in, no token, no org, profile unchanged.
    page = browser.get("/-/web/settings")
    assert page.status_code == 200 and "Mallory" not in page.text
    assert "ketch_" not in browser.get("/-/web/settings/tokens").text.split("Your tokens")[1].split("Create a token")[0]


def test_csrf_on_org_and_package_forms(reg, browser, alice):
    name = _signup(reg, browser)
    org = reg.unique("org")
    assert browser.submit("/-/web/orgs/new", {"name": org}).status_code == 303
    resp = browser.post(f"/-/web/org/{org}/settings", {"action": "create-team", "team": "qa"})
    assert resp.status_code == 403
    assert "qa" not in reg.client.get(f"/-/org/{org}/team", headers={}).text
    package = f"@{name}/pkg"
    token = browser.submit("/-/web/settings/tokens", {"action": "create", "kind": "classic", "type": "publish",
                                                      "password": PASSWORD})
    raw = token.text.split('id="new-token" class="acct-secret">')[1].split("<")[0]
    reg.put_json("/" + reg.escaped(package), reg.publish_body(package, "1.0.0"), headers={"authorization": f"Bearer {raw}"})
    resp = browser.post(f"/-/web/package/{package}/settings", {"action": "tag-add", "tag": "beta", "version": "1.0.0"})
    assert resp.status_code == 403
    assert "beta" not in reg.dist_tags(package).json()


def test_a_session_is_not_an_npm_credential(reg, browser):
    _signup(reg, browser)
    session = browser.jar["ketch_session"]
    for header in (f"Bearer {session}", f"Basic {session}"):
        resp = reg.client.get("/-/whoami", headers={"authorization": header})
        assert resp.status_code == 401
    # and an npm token is not a session
    b2 = Browser(reg.client)
    b2.jar["ketch_session"] = reg.signup("npm").token
    assert b2.get("/-/web/settings").status_code == 303


def test_logout_ends_the_session_on_the_server(reg, browser):
    _signup(reg, browser)
    stolen = browser.jar["ketch_session"]
    page = browser.get("/-/web/logout")
    resp = browser.post("/-/web/logout", {"csrf": csrf_of(page.text)})
    assert resp.status_code == 303 and "ketch_session" not in browser.jar
    thief = Browser(reg.client)
    thief.jar["ketch_session"] = stolen
    assert thief.get("/-/web/settings").status_code == 303  # replaying the old cookie does not work


def test_password_change_ends_other_sessions(reg, browser):
    name = _signup(reg, browser)
    other = Browser(reg.client)
    _login(other, name)
    assert other.get("/-/web/settings").status_code == 200
    new = "changed-password-2"
    resp = browser.submit("/-/web/settings/password", {"password": PASSWORD, "new_password": new, "confirm": new})
    assert resp.status_code == 303, resp.text
    assert browser.get("/-/web/settings").status_code == 200  # this browser got a new session
    assert other.get("/-/web/settings").status_code == 303
    assert _login(Browser(reg.client), name, new).status_code == 303


def test_two_factor_login(reg, browser):
    name = _signup(reg, browser)
    assert browser.submit("/-/web/settings/2fa", {"action": "start", "mode": "auth-only",
                                                  "password": PASSWORD}).status_code == 303
    secret = browser.get("/-/web/settings/2fa").text.split('id="totp-secret" class="acct-secret">')[1].split("<")[0]
    totp = pyotp.TOTP(secret)
    page = browser.submit("/-/web/settings/2fa", {"action": "confirm", "code": totp.now()})
    assert page.status_code == 200 and 'id="recovery-codes"' in page.text
    recovery = page.text.split('id="recovery-codes"')[1].split("<code>")[1].split("</code>")[0]

    fresh = Browser(reg.client)
    step_page = _login(fresh, name)
    assert step_page.status_code == 200 and "ketch_session" not in fresh.jar  # not logged in yet
    step = hidden(step_page.text, "step")
    assert PASSWORD not in step_page.text
    wrong = fresh.post("/-/web/login", {"csrf": csrf_of(step_page.text), "step": step, "otp": "000000"})
    assert wrong.status_code == 401 and "ketch_session" not in fresh.jar
    ok = fresh.post("/-/web/login", {"csrf": csrf_of(wrong.text), "step": step, "otp": recovery})
    assert ok.status_code == 303 and "ketch_session" in fresh.jar
    # the step secret is spent
    again = Browser(reg.client)
    again.get("/-/web/login")
    assert again.post("/-/web/login", {"csrf": again.jar["ketch_csrf"], "step": step,
                                        "otp": totp.now()}).status_code == 400


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "https:evil",
                                    "/%2F%2Fevil", "javascript:alert(1)"])
def test_no_open_redirect_after_login(reg, browser, target):
    name = _signup(reg, browser)
    b = Browser(reg.client)
    page = b.get("/-/web/login?next=" + target)
    resp = b.post("/-/web/login", {"csrf": csrf_of(page.text), "username": name, "password": PASSWORD,
                                   "next": target})
    assert resp.status_code == 303
    location = resp.headers["location"]
    assert location.startswith("/") and not location.startswith("//") and "evil" not in location.split("?")[0][:3]
    assert "evil.example" not in location or location.startswith("/%2F%2F")


def test_login_failures_are_throttled_like_the_api(tmp_path_factory):
    from tests.functional.conftest import running_registry

    settings = Settings(data_dir=tmp_path_factory.mktemp("web-throttle"), login_rate_limit=3)
    with running_registry(settings) as small:
        b = Browser(small.client)
        name = _signup(small, b)
        b2 = Browser(small.client)
        statuses = [_login(b2, name, "wrong-password").status_code for _ in range(4)]
        assert statuses[:3] == [401, 401, 401] and statuses[3] == 429
        # the npm API shares the budget: the right password is refused while over it
        resp = small.client.put(f"/-/user/org.couchdb.user:{name}", json={"name": name, "password": PASSWORD})
        assert resp.status_code == 429


def test_pages_escape_user_content(reg, browser):
    _signup(reg, browser)
    payload = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    browser.submit("/-/web/settings", {"action": "profile", "fullname": payload})
    page = browser.get("/-/web/settings")
    assert payload not in page.text and "&lt;script&gt;" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
