import hmac

from ketch.accounts import tokens
from ketch.accounts.services import ip_allowed


class TestTokenFormat:
    def test_new_tokens_are_well_formed_and_unique(self):
        made = {tokens.new_token() for _ in range(200)}
        assert len(made) == 200
        assert all(t.startswith("ketch_") and tokens.well_formed(t) for t in made)

    def test_checksum_catches_typos(self):
        t = tokens.new_token()
        typo = t[:10] + ("A" if t[10] != "A" else "B") + t[11:]
        assert not tokens.well_formed(typo)
        assert not tokens.well_formed(t + "x")
        assert not tokens.well_formed("npm_" + t[6:])
        assert not tokens.well_formed("")

    def test_digest_is_sha512_hex(self):
        d = tokens.digest("ketch_x")
        assert len(d) == 128 and int(d, 16) >= 0

    def test_checksum_compare_is_constant_time(self):
        # well_formed must use a constant-time compare (A19); this guards against a refactor to ==.
        import inspect

        assert "compare_digest" in inspect.getsource(tokens.well_formed)
        assert hmac.compare_digest is not None


class TestCidr:
    def test_no_list_allows_everything(self):
        assert ip_allowed(None, "10.1.2.3")

    def test_ipv4_ranges(self):
        cidrs = '["192.168.0.0/16", "127.0.0.1/32"]'
        assert ip_allowed(cidrs, "127.0.0.1")
        assert ip_allowed(cidrs, "192.168.4.4")
        assert not ip_allowed(cidrs, "10.0.0.1")
        assert not ip_allowed(cidrs, None)
        assert not ip_allowed(cidrs, "garbage")

    def test_ipv4_mapped_ipv6(self):
        assert ip_allowed('["127.0.0.0/8"]', "::ffff:127.0.0.1")
