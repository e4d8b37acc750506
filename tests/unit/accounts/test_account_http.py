"""Account endpoints in process (adversarial.md A10, A11, A14, A23 and the profile/2FA shapes of
protocol §13): exact statuses, bodies and database effects that the npm client hides."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from app_support import App, module_app, running, unique
from sqlalchemy import select, update

from ketch.accounts.models import AuditEvent, EmailToken, Token, User
from ketch.config import Settings
from ketch.db.base import utcnow


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[App]:
    with module_app(tmp_path_factory) as registry:
        yield registry


def otp_challenge(resp) -> bool:
    return resp.status_code == 401 and "otp" in resp.headers.get("www-authenticate", "").lower()


def next_code(totp) -> str:
    """The code of the next 30 s step: accepted already, and unspent after the current one was used."""
    return totp.at(int(time.time()) + 30)


def wrong_code(totp) -> str:
    valid = {totp.at(int(time.time()) + d) for d in (-30, 0, 30, 60)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in valid)


def eventually(get, ok, timeout: float = 5.0):
    """``get()`` once ``ok`` holds for it (background bookkeeping lands a moment after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if ok(value) or time.monotonic() > deadline:
            assert ok(value), value
            return value
        time.sleep(0.05)


def actions(app, account) -> list[str]:
    resp = app.client.get("/-/npm/v1/user/audit", headers=account.auth)
    assert resp.status_code == 200, resp.text
    return [e["action"] for e in resp.json()["objects"]]


class TestProfile:
    def test_document_shape(self, app):
        account = app.signup("shape")
        doc = app.client.get("/-/npm/v1/user", headers=account.auth).json()
        assert set(doc) == {"name", "email", "email_verified", "created", "updated", "tfa", "cidr_whitelist",
                            "fullname", "homepage", "freenode", "twitter", "github"}
        assert (doc["name"], doc["email"], doc["email_verified"], doc["tfa"]) == (account.name, account.email,
                                                                                  False, False)

    @pytest.mark.parametrize("body", [{"homepage": "javascript:alert(1)"}, {"homepage": "ftp://x"},
                                      {"fullname": "a\nb"}, {"github": "a b"}, {"twitter": "<script>"},
                                      {"fullname": "x" * 201}, {"email": "not-an-address"}, {"email": 5},
                                      {"fullname": ["x"]}, {"password": "plain"}, {"password": {"old": "x"}}])
    def test_invalid_values_are_400_and_change_nothing(self, app, body):
        account = app.signup("bad")
        before = app.client.get("/-/npm/v1/user", headers=account.auth).json()
        resp = app.client.post("/-/npm/v1/user", headers=account.auth, json=body)
        assert resp.status_code == 400 and resp.json()["error"], resp.text
        assert app.client.get("/-/npm/v1/user", headers=account.auth).json() == before

    def test_readonly_tokens_cannot_change_the_profile(self, app):
        account = app.signup("ro")
        ro = app.client.post("/-/npm/v1/tokens", headers=account.auth,
                             json={"password": account.password, "readonly": True}).json()["token"]
        resp = app.client.post("/-/npm/v1/user", headers={"authorization": f"Bearer {ro}"},
                               json={"fullname": "Mallory"})
        assert resp.status_code == 403

    def test_new_password_rules(self, app):
        account = app.signup("pwrules")
        for new in ("short", account.name, account.name.upper()):
            resp = app.client.post("/-/npm/v1/user", headers=account.auth,
                                   json={"password": {"old": account.password, "new": new}})
            assert resp.status_code == 400, (new, resp.text)
        wrong = app.client.post("/-/npm/v1/user", headers=account.auth,
                                json={"password": {"old": "nope-nope-1", "new": "a-good-password"}})
        assert wrong.status_code == 401


class TestTwoFactorFlow:
    def test_setup_states_and_answers(self, app):
        account = app.signup("flow")
        start = {"tfa": {"mode": "auth-only", "password": account.password}}
        assert app.client.post("/-/npm/v1/user", headers=account.auth,
                               json={"tfa": {"mode": "auth-only", "password": "wrong-pass"}}).status_code == 401
        url = app.client.post("/-/npm/v1/user", headers=account.auth, json=start).json()["tfa"]
        assert url.startswith("otpauth://totp/Ketch:")
        assert app.client.get("/-/npm/v1/user", headers=account.auth).json()["tfa"] == {"mode": "auth-only",
                                                                                       "pending": True}
        # pending protects nothing yet: no OTP needed anywhere
        assert app.login(account.name, account.password).status_code == 201
        assert app.client.post("/-/npm/v1/user", headers=account.auth, json={"tfa": ["000000"]}).status_code == 400
        # starting again gives a new secret
        again = app.client.post("/-/npm/v1/user", headers=account.auth, json=start).json()["tfa"]
        assert again != url

        totp, codes = app.enable_2fa(account, "auth-only")
        assert len(codes) == 10
        doc = app.client.get("/-/npm/v1/user", headers=account.auth).json()
        assert doc["tfa"] == {"mode": "auth-only", "pending": False}

        switch = {"tfa": {"mode": "auth-and-writes", "password": account.password}}
        assert otp_challenge(app.client.post("/-/npm/v1/user", headers=account.auth, json=switch))
        switched = app.client.post("/-/npm/v1/user", headers={**account.auth, "npm-otp": next_code(totp)},
                                   json=switch)
        assert switched.status_code == 200 and switched.json()["tfa"] == {"mode": "auth-and-writes",
                                                                           "pending": False}

        off = {"tfa": {"mode": "disable", "password": account.password}}
        assert otp_challenge(app.client.post("/-/npm/v1/user", headers=account.auth, json=off))
        done = app.client.post("/-/npm/v1/user", headers={**account.auth, "npm-otp": codes[0]}, json=off)
        assert done.status_code == 200 and done.json()["tfa"] is False
        assert app.login(account.name, account.password).status_code == 201
        assert {"2fa:enabled", "2fa:disabled", "recovery_codes:used"} <= set(actions(app, account))

    def test_login_needs_the_otp(self, app):
        account = app.signup("otplogin")
        totp, _ = app.enable_2fa(account, "auth-only")
        assert otp_challenge(app.login(account.name, account.password))
        wrong_password = app.login(account.name, "wrong-password", otp=totp.now())
        assert wrong_password.status_code == 401 and "otp" not in wrong_password.headers.get("www-authenticate", "")
        code = next_code(totp)
        ok = app.login(account.name, account.password, otp=code)
        assert ok.status_code == 201 and ok.json()["token"]
        assert otp_challenge(app.login(account.name, account.password, otp=code)), "a login code is one-shot"

    def test_basic_credentials_need_the_otp_too(self, app):
        account = app.signup("basic")
        assert app.call("GET", "/-/whoami", headers=account.basic).status_code == 200
        _, codes = app.enable_2fa(account, "auth-only")
        assert otp_challenge(app.call("GET", "/-/whoami", headers=account.basic))
        ok = app.call("GET", "/-/whoami", headers={**account.basic, "npm-otp": codes[5]})
        assert ok.status_code == 200 and ok.json() == {"username": account.name}

    def test_token_creation_needs_the_otp_in_either_mode(self, app):
        account = app.signup("tok")
        _, codes = app.enable_2fa(account, "auth-only")
        body = {"password": account.password, "bypass_2fa": True}
        assert otp_challenge(app.client.post("/-/npm/v1/tokens", headers=account.auth, json=body))
        made = app.client.post("/-/npm/v1/tokens", headers={**account.auth, "npm-otp": codes[0]}, json=body)
        assert made.status_code == 201 and made.json()["automation"] is True
        automation = {"authorization": f"Bearer {made.json()['token']}"}
        # An automation token cannot mint tokens or change the account without a code either.
        assert otp_challenge(app.client.post("/-/npm/v1/tokens", headers=automation, json=body))
        assert otp_challenge(app.client.post("/-/npm/v1/user", headers=automation, json={"fullname": "CI"}))

    def test_auth_and_writes_covers_deletes_and_automation_tokens_skip_it(self, app):
        account = app.signup("writes")
        _, codes = app.enable_2fa(account, "auth-and-writes")
        made = app.client.post("/-/npm/v1/tokens", headers={**account.auth, "npm-otp": codes[0]},
                               json={"password": account.password, "bypass_2fa": True}).json()
        spare = app.client.post("/-/npm/v1/tokens", headers={**account.auth, "npm-otp": codes[1]},
                                json={"password": account.password}).json()
        assert otp_challenge(app.client.delete(f"/-/npm/v1/tokens/token/{spare['key']}", headers=account.auth))
        automation = {"authorization": f"Bearer {made['token']}"}
        assert app.client.delete(f"/-/npm/v1/tokens/token/{spare['key']}", headers=automation).status_code == 204
        # logout never needs a code (npm does not retry it with one)
        assert app.client.delete(f"/-/user/token/{account.token}", headers=account.auth).status_code == 200


class TestThrottling:
    def test_a10_sixth_wrong_otp_is_429_even_when_right_and_from_other_ips(self, app):
        account = app.signup("brute")
        totp, _ = app.enable_2fa(account, "auth-only")
        for i in range(5):
            resp = app.login(account.name, account.password, otp=wrong_code(totp), ip=f"198.51.100.{i + 1}")
            assert otp_challenge(resp), resp.content
        sixth = app.login(account.name, account.password, otp=next_code(totp), ip="198.51.100.99")
        assert sixth.status_code == 429 and 0 < int(sixth.headers["retry-after"]) <= 300

    def test_a14_account_budget_counts_failures_only(self, app):
        account = app.signup("budget")
        for _ in range(12):  # successes spend nothing
            assert app.client.put(f"/-/user/org.couchdb.user:{account.name}",
                                  json={"name": account.name, "password": account.password}).status_code == 201
        for i in range(10):
            assert app.client.put(f"/-/user/org.couchdb.user:{account.name}",
                                  json={"name": account.name, "password": f"wrong-{i}"}).status_code == 401
        limited = app.client.put(f"/-/user/org.couchdb.user:{account.name}",
                                 json={"name": account.name, "password": account.password})
        assert limited.status_code == 429 and limited.headers["retry-after"]
        # token creation checks the password under the same budget
        made = app.client.post("/-/npm/v1/tokens", headers=account.auth, json={"password": account.password})
        assert made.status_code == 429

    def test_a14_one_ip_across_many_accounts(self, app):
        ip = "192.0.2.55"
        for i in range(10):
            assert app.login(unique("spray"), "guess-password", ip=ip).status_code == 401
        assert app.login(unique("spray"), "guess-password", ip=ip).status_code == 429
        assert app.login(unique("spray"), "guess-password", ip="192.0.2.56").status_code == 401

    def test_signups_per_ip(self, tmp_path):
        with running(Settings(data_dir=tmp_path, signup_rate_limit=2, access_log=False)) as small:
            def signup(ip):
                name = unique("flood")
                return small.call("PUT", f"/-/user/org.couchdb.user:{name}",
                                  {"name": name, "password": "password-123", "email": f"{name}@example.test"}, ip=ip)
            assert [signup("203.0.113.9").status_code for _ in range(3)] == [201, 201, 429]
            assert signup("203.0.113.10").status_code == 201
            assert [signup("127.0.0.1").status_code for _ in range(3)] == [201, 201, 201]


class TestEmailLinks:
    def _link(self, app, account, purpose="reset"):
        from ketch.accounts import links

        async def issue(c):
            async with c.db.write() as session:
                user = (await session.execute(select(User).where(User.name == account.name))).scalar_one()
                return await links.issue(session, user, purpose)
        return app.run(issue)

    def test_a23_expired_and_pre_password_change_links_are_dead(self, app):
        account = app.signup("links")
        expired = self._link(app, account)

        async def age(c):
            async with c.db.write() as session:
                await session.execute(update(EmailToken).values(expires=utcnow() - timedelta(seconds=1))
                                      .where(EmailToken.user_id == select(User.id).where(User.name == account.name)
                                             .scalar_subquery()))
        app.run(age)
        assert app.client.get(f"/-/web/reset-password?token={expired}").status_code == 400
        before_change = self._link(app, account)
        verify = self._link(app, account, "verify")
        assert app.client.get(f"/-/web/reset-password?token={before_change}").status_code == 200
        changed = app.client.post("/-/npm/v1/user", headers=account.auth,
                                  json={"password": {"old": account.password, "new": "brand-new-password"}})
        assert changed.status_code == 200, changed.text
        assert app.client.get(f"/-/web/reset-password?token={before_change}").status_code == 400
        assert app.client.get(f"/-/web/verify-email?token={verify}").status_code == 400

    def test_digests_only(self, app):
        account = app.signup("digest")
        raw = self._link(app, account)

        async def stored(c):
            async with c.db.read() as session:
                return list((await session.execute(select(EmailToken.digest))).scalars())
        assert raw not in app.run(stored)


class TestTokenUse:
    def test_last_use_and_new_ip_event(self, app):
        account = app.signup("roam")
        assert app.call("GET", "/-/whoami", headers=account.auth, ip="198.51.100.1").status_code == 200

        async def row(c):
            async with c.db.read() as session:
                return (await session.execute(select(Token).join(User, User.id == Token.user_id)
                                              .where(User.name == account.name))).scalar_one()
        first = eventually(lambda: app.run(row), lambda t: t.last_ip == "198.51.100.1")
        assert first.last_used is not None
        time.sleep(1.1)  # past the 1 s identity cache
        assert app.call("GET", "/-/whoami", headers=account.auth, ip="198.51.100.2").status_code == 200
        eventually(lambda: app.run(row), lambda t: t.last_ip == "198.51.100.2")
        assert "token:used-from-new-ip" in actions(app, account)


class TestDeletion:
    def test_tombstone(self, app):
        account = app.signup("leaver")
        assert app.client.request("DELETE", "/-/npm/v1/user", headers=account.auth,
                                  json={"password": "wrong-password"}).status_code == 401
        gone = app.client.request("DELETE", "/-/npm/v1/user", headers=account.auth,
                                  json={"password": account.password})
        assert gone.status_code == 200, gone.text
        time.sleep(1.1)
        assert app.client.get("/-/whoami", headers=account.auth).status_code == 401
        assert app.login(account.name, account.password).status_code == 401
        again = app.client.put(f"/-/user/org.couchdb.user:{account.name}",
                               json={"name": account.name, "password": "password-999",
                                     "email": "new@example.test"})
        assert again.status_code in (401, 409)

        async def left(c):
            async with c.db.read() as session:
                user = (await session.execute(select(User).where(User.name == account.name))).scalar_one()
                events = (await session.execute(select(AuditEvent.action).where(AuditEvent.actor_id == user.id)))
                return user, list(events.scalars())
        user, events = app.run(left)
        assert user.deleted is not None and user.email is None
        assert "account:deleted" in events


class TestAuditLog:
    def test_pagination(self, app):
        account = app.signup("pages")
        for i in range(3):
            app.client.post("/-/npm/v1/user", headers=account.auth, json={"fullname": f"Name {i}"})
        page = app.client.get("/-/npm/v1/user/audit?limit=2", headers=account.auth).json()
        assert len(page["objects"]) == 2 and page["urls"]["next"]
        following = page["urls"]["next"].split("testserver", 1)[1]
        rest = app.client.get(following, headers=account.auth).json()
        ids = [e["id"] for e in page["objects"] + rest["objects"]]
        assert ids == sorted(ids, reverse=True) and len(ids) == 4
        assert rest["objects"][-1]["action"] == "signup"
        assert app.client.get("/-/npm/v1/user/audit?before=x", headers=account.auth).status_code == 400
        assert app.client.get("/-/npm/v1/user/audit").status_code == 401
