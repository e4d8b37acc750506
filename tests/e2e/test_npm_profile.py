"""`npm profile get` / `npm profile set` through the real npm (protocol §13): the profile document,
the writable fields, an email change with its verification mail (a real SMTP server receives it and
the link is followed), and `npm profile set password` answered on a terminal."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from accounts_support import body_of, enable_2fa, expect_prompt, finish, link_in
from accounts_support import mail_registry, mail_sink, watch_mail_registry  # noqa: F401 (fixtures)
from conftest import parse_iso

pytestmark = pytest.mark.e2e


def couch_login(server, name: str, password: str) -> httpx.Response:
    body = {"_id": f"org.couchdb.user:{name}", "name": name, "password": password, "type": "user", "roles": [],
            "date": datetime.now(UTC).isoformat()}
    with server.http() as client:
        return client.put(f"-/user/org.couchdb.user:{quote(name, safe='')}", json=body)


def test_profile_get(npm, user):
    info = npm.run("profile", "get", "--json").json()
    assert info["name"] == user.name
    assert info["email"] == user.email
    assert info["email_verified"] is False
    assert info["tfa"] is False
    assert parse_iso(info["created"]) <= parse_iso(info["updated"])
    text = npm.run("profile", "get").stdout
    assert f"name: {user.name}" in text
    assert f"email: {user.email}(unverified)" in text
    assert "two-factor auth: disabled" in text
    assert npm.run("profile", "get", "name").stdout.strip() == user.name


def test_profile_set_fields(npm, user):
    assert npm.run("profile", "set", "fullname", "Ada Lovelace").stdout.strip() == "Set fullname to Ada Lovelace"
    npm.run("profile", "set", "homepage", "https://ada.example.test/")
    npm.run("profile", "set", "github", "ada-l")
    npm.run("profile", "set", "twitter", "@ada")
    npm.run("profile", "set", "freenode", "ada_")
    info = npm.run("profile", "get", "--json").json()
    assert {k: info[k] for k in ("fullname", "homepage", "github", "twitter", "freenode")} == {
        "fullname": "Ada Lovelace", "homepage": "https://ada.example.test/", "github": "ada-l", "twitter": "@ada",
        "freenode": "ada_"}
    assert info["email"] == user.email  # npm sends every field back; the others are unchanged

    refused = npm.run("profile", "set", "homepage", "javascript:alert(1)", ok=False)
    assert "E400" in refused.output and "homepage" in refused.output, refused.output
    assert npm.run("profile", "get", "homepage").stdout.strip() == "https://ada.example.test/"

    npm.run("profile", "set", "fullname", "")  # npm sends null: the field is cleared
    assert npm.run("profile", "get", "--json").json()["fullname"] == ""
    assert "is not a property we can set" in npm.run("profile", "set", "name", "x", ok=False).output


def test_profile_changes_need_an_otp_with_2fa(npm, user):
    app, _, _ = enable_2fa(npm, user.password, "auth-only")
    refused = npm.run("profile", "set", "fullname", "Grace Hopper", ok=False)
    assert "EOTP" in refused.output, refused.output
    npm.run("profile", "set", "fullname", "Grace Hopper", f"--otp={app.code()}")
    assert npm.run("profile", "get", "fullname").stdout.strip() == "Grace Hopper"


def test_signup_and_email_change_send_verification_mails(npm_factory, mail_registry, mail_sink):
    user = mail_registry.create_user("mailer")
    welcome = mail_sink.wait_for(to=user.email, subject="Verify your email")
    assert link_in(welcome, "/-/web/verify-email").startswith(mail_registry.url.rstrip("/"))

    npm = npm_factory(user, server=mail_registry)
    new_address = f"{user.name}.new@example.test"
    before = mail_sink.count()
    assert npm.run("profile", "set", "email", new_address).stdout.strip() == f"Set email to {new_address}"
    info = npm.run("profile", "get", "--json").json()
    assert (info["email"], info["email_verified"]) == (new_address, False)

    message = mail_sink.wait_for(to=new_address, subject="Verify your email", after=before)
    notice = mail_sink.wait_for(to=user.email, subject="email address was changed", after=before)
    assert new_address in body_of(notice)
    link = link_in(message, "/-/web/verify-email")
    assert link.startswith(mail_registry.url + "-/web/verify-email?token="), link

    # The link sent to the old address no longer verifies anything (it was for another address).
    old_link = link_in(welcome, "/-/web/verify-email")
    with httpx.Client(timeout=30.0, trust_env=False) as browser:
        assert browser.get(old_link).status_code == 400
        page = browser.get(link)
        assert page.status_code == 200, page.text
        assert "verified" in page.text and new_address in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert not re.search(r"""(src|href)=["']https?://""", page.text), "the landing page loads nothing from elsewhere"
        again = browser.get(link)
        assert again.status_code == 400, "verification links are single use"

    info = npm.run("profile", "get", "--json").json()
    assert (info["email"], info["email_verified"]) == (new_address, True)
    assert f"email: {new_address} (verified)" in npm.run("profile", "get").stdout


# The password tests run on the module's own server: their deliberate login failures must not
# spend the shared server's per-IP login budget.
def test_profile_set_password_on_a_terminal(npm_factory, mail_registry):
    registry = mail_registry
    user = registry.create_user("pwchange")
    npm = npm_factory(user, server=registry)
    elsewhere = couch_login(registry, user.name, user.password)  # another machine's login session
    assert elsewhere.status_code == 201
    other_machine = npm_factory(token=elsewhere.json()["token"], server=registry)
    assert other_machine.run("whoami").stdout.strip() == user.name

    new_password = "new-" + user.password
    child = npm.spawn("profile", "set", "password")
    expect_prompt(child, "Current password:", user.password)
    expect_prompt(child, "New password:", new_password)
    expect_prompt(child, "Again:", new_password)
    status, output = finish(child)
    assert status == 0, output
    assert "Set password" in output

    assert couch_login(registry, user.name, user.password).status_code == 401
    assert couch_login(registry, user.name, new_password).status_code == 201
    assert npm.run("whoami").stdout.strip() == user.name  # the session that changed it goes on
    assert "E401" in other_machine.run("whoami", ok=False).output  # other login sessions end


def test_profile_set_password_refuses_a_wrong_current_password(npm_factory, mail_registry):
    registry = mail_registry
    user = registry.create_user("pwwrong")
    npm = npm_factory(user, server=registry)
    child = npm.spawn("profile", "set", "password")
    expect_prompt(child, "Current password:", "wrong-" + user.password)
    expect_prompt(child, "New password:", "another-password-1")
    expect_prompt(child, "Again:", "another-password-1")
    status, output = finish(child)
    assert status != 0 and "E401" in output, output
    assert couch_login(registry, user.name, user.password).status_code == 201
