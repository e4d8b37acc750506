"""Account security around the npm client: password reset by emailed link (a real SMTP server
receives it, a browser-like client fills the forms, the real npm logs in afterwards), account
deletion, and login throttling."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from accounts_support import expect_prompt, finish, link_in, submit
from accounts_support import mail_registry, mail_sink, watch_mail_registry  # noqa: F401 (fixtures)
from conftest import unique

pytestmark = pytest.mark.e2e


def couch_put(server, name: str, password: str, email: str | None = None) -> httpx.Response:
    body = {"_id": f"org.couchdb.user:{name}", "name": name, "password": password, "type": "user", "roles": [],
            "date": datetime.now(UTC).isoformat()}
    if email:
        body["email"] = email
    with server.http() as client:
        return client.put(f"-/user/org.couchdb.user:{quote(name, safe='')}", json=body)


def browser() -> httpx.Client:
    return httpx.Client(timeout=30.0, trust_env=False)


def request_reset(server, account: str, headers: dict | None = None) -> httpx.Response:
    with browser() as b:
        page = b.get(f"{server.url}-/web/forgot-password")
        assert page.status_code == 200, page.text
        return submit(b, page, {"account": account}, needs="account") if not headers else \
            b.post(f"{server.url}-/web/forgot-password", headers=headers,
                   data={"account": account, "csrf": b.cookies["ketch_csrf"]})


def test_password_reset_by_email(npm_factory, mail_registry, mail_sink):
    user = mail_registry.create_user("forgetful")
    npm = npm_factory(user, server=mail_registry)
    assert npm.run("whoami").stdout.strip() == user.name

    before = mail_sink.count()
    answer = request_reset(mail_registry, user.name)
    assert answer.status_code == 200 and "If an account matches" in answer.text
    first = link_in(mail_sink.wait_for(to=user.email, subject="Reset your Ketch password", after=before),
                    "/-/web/reset-password")
    before = mail_sink.count()
    request_reset(mail_registry, user.email)  # by address works too
    link = link_in(mail_sink.wait_for(to=user.email, subject="Reset your Ketch password", after=before),
                   "/-/web/reset-password")
    assert link.startswith(mail_registry.url + "-/web/reset-password?token=")

    new_password = "reset-" + user.password
    with browser() as b:
        form = b.get(link)
        assert form.status_code == 200 and user.name in form.text, form.text
        assert form.headers["referrer-policy"] == "no-referrer"
        assert form.headers["cache-control"] == "no-store"
        assert not re.search(r"""(src|href)=["']https?://""", form.text)
        mismatch = submit(b, form, {"password": new_password, "confirm": new_password + "x"}, needs="password")
        assert mismatch.status_code == 400 and "not the same" in mismatch.text
        same_as_name = submit(b, form, {"password": user.name, "confirm": user.name}, needs="password")
        assert same_as_name.status_code == 400
        done = submit(b, form, {"password": new_password, "confirm": new_password}, needs="password")
        assert done.status_code == 200 and "Password changed" in done.text, done.text
        assert b.get(link).status_code == 400, "reset links are single use"
        assert b.get(first).status_code == 400, "links issued before the change die with it"

    notice = mail_sink.wait_for(to=user.email, subject="password was reset")
    assert user.name in notice.get_body().get_content()
    assert couch_put(mail_registry, user.name, user.password).status_code == 401
    assert "E401" in npm.run("whoami", ok=False).output, "a reset ends every login session"

    laptop = npm_factory(server=mail_registry)
    child = laptop.spawn("login", "--auth-type=legacy")
    expect_prompt(child, "Username:", user.name)
    expect_prompt(child, "Password:", new_password)
    status, output = finish(child)
    assert status == 0, output
    assert laptop.run("whoami").stdout.strip() == user.name


def test_reset_link_ignores_a_forged_host_header(mail_registry, mail_sink):
    user = mail_registry.create_user("hosty")
    before = mail_sink.count()
    answer = request_reset(mail_registry, user.name, headers={"host": "evil.example"})
    assert answer.status_code == 200, answer.text
    link = link_in(mail_sink.wait_for(to=user.email, subject="Reset", after=before), "/-/web/reset-password")
    assert link.startswith(mail_registry.url), link
    assert "evil.example" not in link


def test_forgot_password_does_not_tell_which_accounts_exist(mail_registry, mail_sink):
    before = mail_sink.count()
    unknown = request_reset(mail_registry, unique("nobody"))
    known = request_reset(mail_registry, mail_registry.create_user("known").name)
    assert unknown.status_code == known.status_code == 200
    def strip(text: str) -> str:
        return re.sub(r'value="[^"]*"', "", text)  # the csrf values differ

    assert strip(unknown.text) == strip(known.text)
    mail_sink.wait_for(to="known-", subject="Reset", after=before)
    assert not any("nobody-" in str(m["To"]) for m in mail_sink.messages[before:])


def test_account_forms_refuse_cross_site_posts(registry):
    with browser() as b:
        for path, data in (("-/web/forgot-password", {"account": "x"}),
                           ("-/web/reset-password", {"token": "x" * 43, "password": "p" * 12, "confirm": "p" * 12})):
            resp = b.post(registry.url + path, data=data)  # no csrf cookie, no field
            assert resp.status_code == 403, (path, resp.status_code, resp.text[:300])
        b.cookies.set("ketch_csrf", "other", path="/-/web/")
        for path, data in (("-/web/forgot-password", {"account": "x"}),
                           ("-/web/reset-password", {"token": "x" * 43, "password": "p" * 12, "confirm": "p" * 12})):
            resp = b.post(registry.url + path, data={**data, "csrf": "forged"})
            assert resp.status_code == 403, (path, resp.status_code)


def test_account_deletion(npm_factory, make_package, mail_registry):
    # On the module's own server: the refused logins below must not spend the shared server's
    # per-IP login budget.
    registry = mail_registry
    user, friend = registry.create_user("leaver"), registry.create_user("friend")
    npm = npm_factory(user, server=registry)
    name = unique("orphan")
    npm.publish(make_package(name, "1.0.0"))
    npm.run("owner", "add", friend.name, name)

    with registry.http(user.token) as client:
        wrong = client.request("DELETE", "-/npm/v1/user", json={"password": "wrong-" + user.password})
        assert wrong.status_code == 401, wrong.text
        gone = client.request("DELETE", "-/npm/v1/user", json={"password": user.password})
        assert gone.status_code == 200 and gone.json()["ok"] is True, gone.text

    assert "E401" in npm.run("whoami", ok=False).output  # its tokens stop working
    assert couch_put(registry, user.name, user.password).status_code == 401  # login refused
    # The name cannot be registered again, by npm adduser or otherwise.
    assert couch_put(registry, user.name, "another-password", f"{unique('x')}@example.test").status_code == 401
    child = npm_factory(server=registry).spawn("adduser", "--auth-type=legacy")
    expect_prompt(child, "Username:", user.name)
    expect_prompt(child, "Password:", "another-password-1")
    expect_prompt(child, "Email (this will be public):", "thief@example.test")
    status, output = finish(child)
    assert status != 0 and "E401" in output, output

    # Its package keeps its other maintainer, who can still publish.
    keeper = npm_factory(friend, server=registry)
    assert f"+ {name}@1.1.0" in keeper.publish(make_package(name, "1.1.0")).stdout
    assert keeper.view(name, "version") == "1.1.0"


def test_login_throttling(registry_factory):
    """Ten failed logins from one address in five minutes; the eleventh attempt is a 429."""
    server = registry_factory.new()
    victim = server.create_user("victim")
    first_wrong = couch_put(server, victim.name, "wrong-password-0")
    first_unknown = couch_put(server, unique("ghost"), "wrong-password-0")
    # Unknown user and wrong password look the same.
    assert first_wrong.status_code == first_unknown.status_code == 401
    assert first_wrong.json() == first_unknown.json()
    assert first_wrong.headers.get("www-authenticate") == first_unknown.headers.get("www-authenticate")

    for i in range(1, 9):
        assert couch_put(server, victim.name, f"wrong-password-{i}").status_code == 401
    limited = couch_put(server, victim.name, "wrong-password-10")
    assert limited.status_code == 429, limited.text
    assert 0 < int(limited.headers["retry-after"]) <= 300
    assert "error" in limited.json()
    # Over the budget even the right password waits, and so does every account from this address.
    assert couch_put(server, victim.name, victim.password).status_code == 429
    assert couch_put(server, server.create_user("bystander").name, "wrong-password").status_code == 429
    # The web login form is throttled alike.
    with server.http() as client:
        login_url = client.post("-/v1/login", json={}).json()["loginUrl"]
    with browser() as b:
        answer = submit(b, b.get(login_url), {"username": victim.name, "password": victim.password},
                        needs="password")
    assert answer.status_code == 429 and answer.headers.get("retry-after"), answer.text[:500]
