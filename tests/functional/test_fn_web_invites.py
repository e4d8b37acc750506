"""Org invitations over the in-process app: who may invite whom, who may accept, and expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from web_browser import Browser

from ketch.accounts.models import User
from ketch.accounts.services import Identity
from ketch.db import Database
from ketch.db.base import utcnow
from ketch.orgs import invitations
from ketch.orgs.models import OrgInvitation


def _login(reg, user) -> Browser:
    browser = Browser(reg.client)
    assert browser.submit("/-/web/login", {"username": user.name, "password": user.password}).status_code == 303
    return browser


def _db(reg, work):
    async def run():
        db = Database(reg.settings.resolved_database_url)
        try:
            async with db.write() as session:
                return await work(session)
        finally:
            await db.dispose()
    return asyncio.run(run())


def _invite(reg, inviter, org: str, who: str, role: str = "developer") -> str:
    async def work(session):
        user = (await session.execute(select(User).where(User.name == inviter.name))).scalar_one()
        return (await invitations.invite(session, org, Identity(user.id, user.name, user.email), who, role)).secret
    return _db(reg, work)


@pytest.fixture
def org(reg, alice, bob):
    name = reg.unique("org")
    reg.assert_ok(reg.put_json(f"/-/org/{name}", {}, alice), 201)
    reg.assert_ok(reg.put_json(f"/-/org/{name}/user", {"user": bob.name, "role": "admin"}, alice), 201)
    return name


def test_only_owners_and_admins_invite_and_only_owners_invite_owners(reg, org, bob):
    dev, newcomer = reg.signup("dev"), reg.signup("new")
    reg.assert_ok(reg.put_json(f"/-/org/{org}/user", {"user": dev.name, "role": "developer"}, bob), 201)
    path = f"/-/web/org/{org}/settings"
    refused = _login(reg, dev).submit(path, {"action": "invite", "invitee": newcomer.name, "role": "developer"},
                                      page="/-/web/settings")
    assert refused.status_code == 403 and f"Only owners and admins of @{org}" in refused.text
    admin = _login(reg, bob)
    owner = admin.submit(path, {"action": "invite", "invitee": newcomer.name, "role": "owner"})
    assert owner.status_code == 403 and "Only owners can invite owners." in owner.text
    member = admin.submit(path, {"action": "invite", "invitee": dev.name, "role": "developer"})
    assert member.status_code == 409 and "already a member" in member.text
    unknown = admin.submit(path, {"action": "invite", "invitee": reg.unique("ghost"), "role": "developer"})
    assert unknown.status_code == 404 and "enter their email address" in unknown.text
    sent = admin.submit(path, {"action": "invite", "invitee": newcomer.email, "role": "developer"})
    assert sent.status_code == 303 and "notice=invited" in sent.headers["location"]
    assert newcomer.email in admin.get(path).text


def test_only_the_invitee_accepts(reg, org, alice):
    invitee, other = reg.signup("inv"), reg.signup("other")
    secret = _invite(reg, alice, org, invitee.name, "admin")
    path = f"/-/web/org-invitation?token={secret}"
    anonymous = Browser(reg.client).get(path)
    assert anonymous.status_code == 200 and "Log in" in anonymous.text and org in anonymous.text

    wrong = _login(reg, other).submit("/-/web/org-invitation", {"token": secret}, page=path)
    assert wrong.status_code == 403 and "This invitation is for someone else" in wrong.text
    right = _login(reg, invitee)
    done = right.submit("/-/web/org-invitation", {"token": secret}, page=path)
    assert done.status_code == 303 and f"/-/web/org/{org}/settings" in done.headers["location"]
    assert reg.client.get(f"/-/org/{org}/user", headers=alice.auth).json()[invitee.name] == "admin"
    assert right.get(path).status_code == 400  # spent


def test_invitations_expire_after_7_days(reg, org, alice):
    invitee = reg.signup("late")
    secret = _invite(reg, alice, org, invitee.email)

    async def age(session):
        await session.execute(update(OrgInvitation).where(OrgInvitation.email == invitee.email)
                              .values(expires=utcnow() - timedelta(seconds=1)))
    _db(reg, age)
    browser = _login(reg, invitee)
    page = browser.get(f"/-/web/org-invitation?token={secret}")
    assert page.status_code == 400 and "expired (invitations last 7 days)" in page.text
    assert invitee.name not in reg.client.get(f"/-/org/{org}/user", headers=alice.auth).json()
