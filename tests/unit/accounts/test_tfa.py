"""TOTP and recovery codes (ketch.accounts.tfa): the time window, replays, single-use codes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pyotp
import pytest
from app_support import App, module_app
from sqlalchemy import select

from ketch.accounts import tfa
from ketch.accounts.models import RecoveryCode, User


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[App]:
    with module_app(tmp_path_factory) as registry:
        yield registry


class TestTotpWindow:
    def test_accepts_one_step_either_side_and_no_further(self):
        secret = tfa.new_secret()
        totp = pyotp.TOTP(secret)
        now = 1_800_000_015.0
        step = int(now // 30)
        for delta in (-1, 0, 1):
            assert tfa.totp_step(secret, totp.at((step + delta) * 30), now) == step + delta
        for delta in (-2, 2, 10):
            assert tfa.totp_step(secret, totp.at((step + delta) * 30), now) is None

    @pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", " 123456x", None, 123456])
    def test_malformed_codes_never_match(self, code):
        assert tfa.totp_step(tfa.new_secret(), tfa.normalise(code)) is None

    def test_spaces_are_ignored(self):
        secret = tfa.new_secret()
        code = pyotp.TOTP(secret).now()
        assert tfa.totp_step(secret, tfa.normalise(f" {code[:3]} {code[3:]} ")) is not None

    def test_otpauth_url_carries_the_secret_and_issuer(self):
        secret = tfa.new_secret()
        url = tfa.otpauth_url(secret, "alice")
        parsed = pyotp.parse_uri(url)
        assert url.startswith("otpauth://totp/") and parsed.secret == secret and parsed.issuer == "Ketch"
        assert len(secret) >= 32  # 160 bits

    def test_compare_is_constant_time(self):
        import inspect

        assert "compare_digest" in inspect.getsource(tfa.totp_step)


class TestRecoveryCodes:
    def test_ten_distinct_codes_npm_can_prompt_for(self):
        codes = tfa.new_recovery_codes()
        assert len(codes) == 10 and len(set(codes)) == 10
        # npm's OTP prompt accepts digits or exactly 64 hex characters (lib/utils/read-user-info.js).
        assert all(re.fullmatch(r"[A-Fa-f0-9]{64}", c) for c in codes)


def _user(app, name):
    async def load(c):
        async with c.db.read() as session:
            return (await session.execute(select(User).where(User.name == name))).scalar_one()
    return app.run(load)


def _accept(app, name, code, credential):
    async def go(c):
        async with c.db.write() as session:
            user = (await session.execute(select(User).where(User.name == name))).scalar_one()
            return await tfa.accept_code(session, c.db.is_sqlite, user, code, credential)
    return app.run(go)


class TestAcceptCode:
    def test_a_code_is_spent_for_everyone_but_the_credential_that_used_it(self, app):
        account = app.signup("replay")
        totp, _ = app.enable_2fa(account)
        step = int(time.time() // 30) + 1  # the confirmation spent the current step
        code = totp.at(step * 30)
        assert _accept(app, account.name, code, "17").kind == "totp"
        assert _accept(app, account.name, code, "17") is not None  # same token, same npm command
        assert _accept(app, account.name, code, "18") is None  # anyone else: a replay
        assert _accept(app, account.name, code, None) is None  # a login never reuses
        assert _user(app, account.name).tfa_last_counter == step
        older = totp.at((step - 1) * 30)
        assert _accept(app, account.name, older, "17") is None  # steps only move forward

    def test_recovery_codes_are_single_use_and_stored_as_digests(self, app):
        account = app.signup("recover")
        _, codes = app.enable_2fa(account)
        assert _accept(app, account.name, codes[0].upper(), None).kind == "recovery"
        assert _accept(app, account.name, codes[0], None) is None
        assert _accept(app, account.name, codes[1], None).kind == "recovery"

        async def stored(c):
            async with c.db.read() as session:
                return list((await session.execute(select(RecoveryCode.digest))).scalars())
        digests = app.run(stored)
        assert not set(codes) & set(digests)
        assert tfa.recovery_digest(codes[2]) in digests

    def test_nothing_is_accepted_without_2fa(self, app):
        account = app.signup("plain")
        assert _accept(app, account.name, "123456", None) is None
        assert _accept(app, account.name, "0" * 64, None) is None
