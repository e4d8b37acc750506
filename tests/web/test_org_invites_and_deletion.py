"""Org invitations and account deletion in Debian's Chromium against a real ``ketch serve`` with a
real (local) SMTP server: invite an email address, read the mail, sign up with that address from the
link, accept and see the membership; delete an org; delete an account once nothing blocks it."""

from __future__ import annotations

import re

import pytest
from account_support import link_in, login, own_registry, shoot, unique
from account_support import browser, page, sink  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(sink, tmp_path_factory):
    with own_registry(tmp_path_factory.mktemp("web-invites"), sink) as s:
        yield s


def test_invite_by_email_sign_up_and_accept(page, server, sink):
    owner = server.create_user("owner")
    org, name = unique("org"), unique("newbie")
    address = f"{name}@example.test"
    base = server.url
    with server.http(token=owner.token) as client:
        assert client.put(f"-/org/{org}", json={}).status_code == 201

    login(page, base, owner.name, owner.password)
    page.goto(f"{base}-/web/org/{org}/settings")
    before = sink.count()
    page.fill("#invitee", address)
    page.select_option("#invite-role", "admin")
    page.click("#invitations form.acct-row-form button[type=submit]")
    page.wait_for_url(re.compile(r"notice=invited"))
    assert address in page.inner_text("#invitations") and "valid for 7 days" in page.inner_text("main")
    shoot(page, "org-invitations")
    mail = sink.wait_for(to=address, subject=f"invited you to join @{org}", after=before)
    link = link_in(mail, "/-/web/org-invitation")
    page.context.clear_cookies()

    # Signed out: the page says what the invitation is and leads to sign-up, which comes back.
    page.goto(link)
    assert f"invited you to join the @{org} organization as admin" in " ".join(page.inner_text("main").split())
    shoot(page, "org-invitation")
    page.click("main a:has-text('Sign up')")
    page.fill("#username", name)
    page.fill("#email", address)
    page.fill("#password", "pw-" + name)
    page.fill("#confirm", "pw-" + name)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/-/web/org-invitation\?token="))
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(rf"/-/web/org/{org}/settings\?notice=joined"))
    assert "admin" in page.inner_text("#members") and name in page.inner_text("#members")
    # The link is spent.
    page.goto(link)
    assert "invalid, was revoked, was already used or has expired" in page.inner_text("main")
    with server.http(token=owner.token) as client:
        assert client.get(f"-/org/{org}/user").json()[name] == "admin"


def new_org_logged_in(page, server, owner) -> str:
    """A fresh org of ``owner``'s, who is then logged in on ``page``."""
    org = unique("org")
    with server.http(token=owner.token) as client:
        assert client.put(f"-/org/{org}", json={}).status_code == 201
    login(page, server.url, owner.name, owner.password)
    return org


def test_revoke_invitation_and_delete_org(page, server, sink):
    owner, invitee = server.create_user("owner"), server.create_user("invitee")
    org = new_org_logged_in(page, server, owner)
    base = server.url
    page.goto(f"{base}-/web/org/{org}/settings")
    before = sink.count()
    page.fill("#invitee", invitee.name)
    page.click("#invitations form.acct-row-form button[type=submit]")
    page.wait_for_url(re.compile(r"notice=invited"))
    link = link_in(sink.wait_for(to=invitee.email, subject=f"join @{org}", after=before), "/-/web/org-invitation")
    page.click(f"button[aria-label='Revoke the invitation of {invitee.name}']")
    page.wait_for_url(re.compile(r"notice=saved"))
    assert invitee.name not in page.inner_text("#invitations")
    page.goto(link)
    assert "invalid, was revoked" in page.inner_text("main")

    page.goto(f"{base}-/web/org/{org}/settings")
    page.fill("#delete-confirm", "wrong")
    page.click("#delete button[type=submit]")
    assert f"Type {org} to confirm" in page.inner_text("main")
    page.fill("#delete-confirm", org)
    page.click("#delete button[type=submit]")
    page.wait_for_url(re.compile(r"/-/web/settings/orgs\?notice=org-deleted"))
    assert "The organization is deleted." in page.inner_text("main") and f"@{org}" not in page.inner_text("main")
    with server.http(token=owner.token) as client:
        assert client.get(f"-/org/{org}/user").status_code == 404


def test_delete_account(page, server, sink):
    user, friend = server.create_user("leaver"), server.create_user("friend")
    org = new_org_logged_in(page, server, user)
    base = server.url
    page.goto(f"{base}-/web/settings/delete")
    assert f"@{org}" in page.inner_text("#blockers") and page.locator("#del-password").count() == 0
    shoot(page, "settings-delete-blocked")

    with server.http(token=user.token) as client:
        assert client.put(f"-/org/{org}/user", json={"user": friend.name, "role": "owner"}).status_code == 201
    page.reload()
    page.fill("#del-password", "wrong-password")
    page.click("main form button[type=submit]")
    assert "password" in page.inner_text(".acct-error").lower()
    before = sink.count()
    page.fill("#del-password", user.password)
    page.click("main form button[type=submit]")
    page.wait_for_selector("text=is deleted and you are logged out")
    assert "ketch_session" not in {c["name"] for c in page.context.cookies()}
    sink.wait_for(to=user.email, subject="Your account was deleted", after=before)
    page.goto(f"{base}-/web/settings")
    page.wait_for_url(re.compile(r"/-/web/login"))
    with server.http(token=user.token) as client:
        assert client.get("-/whoami").status_code == 401
