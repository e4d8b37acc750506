"""Authentication and tokens (adversarial.md §4.3: A01, A02, A05, A16, A17, A19, A20)."""

from __future__ import annotations

import inspect
import json
import logging

import pytest

from ketch.accounts import tokens


def _json_put(reg, path: str, body, headers: dict | None = None):
    return reg.client.put(path, content=json.dumps(body).encode(),
                          headers={"content-type": "application/json", **(headers or {})})


@pytest.fixture(scope="module")
def pkg(reg, alice) -> str:
    """A package of alice's with two versions."""
    name = reg.unique("auth")
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "1.1.0")
    return name


def write_requests(reg, name: str) -> list[tuple[str, str, object]]:
    """(method, path, JSON body) for every write npm can make on a package."""
    doc = reg.doc(name, write=True)
    rev = doc["_rev"]
    deprecate = json.loads(json.dumps(doc))
    deprecate["versions"]["1.0.0"]["deprecated"] = "stop"
    unpublish_one = json.loads(json.dumps(doc))
    del unpublish_one["versions"]["1.0.0"]
    return [
        ("PUT", f"/{name}", reg.publish_body(name, "9.0.0")),                                      # publish
        ("PUT", f"/{name}", deprecate),                                                             # deprecate
        ("PUT", f"/{name}/-rev/{rev}", unpublish_one),                                              # unpublish 1.0.0
        ("PUT", f"/{name}/-rev/{rev}", {"_id": name, "_rev": rev,                                   # owner add
                                        "maintainers": doc["maintainers"] + [{"name": "x", "email": "x@x.test"}]}),
        ("DELETE", f"/{name}/-rev/{rev}", None),                                                    # unpublish all
        ("PUT", f"/-/package/{name}/dist-tags/beta", "1.0.0"),                                      # dist-tag add
        ("DELETE", f"/-/package/{name}/dist-tags/latest", None),                                    # dist-tag rm
        ("DELETE", f"/{name}/-/{name}-1.0.0.tgz/-rev/{rev}", None),                                 # tarball delete
    ]


def server_log(caplog) -> str:
    """What the server logged (the in-process HTTP client's own request log is not the server's)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))


def _send(reg, method: str, path: str, body, headers: dict):
    if body is None:
        return reg.client.request(method, path, headers=headers)
    return reg.client.request(method, path, content=json.dumps(body).encode(),
                              headers={"content-type": "application/json", **headers})


# ---- A01: no credentials ------------------------------------------------------------------------

def test_a01_writes_without_authorization_are_401(reg, pkg):
    before = reg.packument(pkg).content
    for method, path, body in write_requests(reg, pkg):
        resp = _send(reg, method, path, body, {})
        err = reg.assert_error(resp, 401)
        assert "logged in" in err["error"], (method, path, err)
    assert reg.packument(pkg).content == before


def test_a01_publish_text_is_npms(reg):
    name = reg.unique("a01")
    err = reg.assert_error(reg.publish(None, name), 401)
    assert err["error"] == "You must be logged in to publish packages."
    reg.assert_error(reg.packument(name), 404)


@pytest.mark.parametrize("path, method", [("/-/whoami", "GET"), ("/-/npm/v1/tokens", "GET"),
                                          ("/-/npm/v1/tokens", "POST"), ("/-/npm/v1/user", "GET")])
def test_a01_account_endpoints_without_authorization_are_401(reg, path, method):
    resp = reg.client.request(method, path, json={} if method == "POST" else None)
    reg.assert_error(resp, 401)


# ---- A02: malformed credentials ---------------------------------------------------------------

def _bad_headers(token: str) -> list[tuple[str, bytes]]:
    return [
        ("non-ascii", "Bearer tökén-ünïcode".encode()),
        ("latin1", b"Bearer \xe9\xe8\xff"),
        ("10KB", b"Bearer " + b"A" * 10240),
        ("10KB-valid-prefix", b"Bearer " + token.encode() + b"A" * 10240),
        ("basic-garbage", b"Basic !!!garbage!!!"),
        ("basic-no-colon", b"Basic bm9jb2xvbg=="),
        ("basic-not-utf8", b"Basic //79"),
        ("basic-10KB", b"Basic " + b"QUFB" * 2600),
        ("bearer-empty", b"Bearer"),
        ("bearer-space", b"Bearer  "),
        ("unknown-scheme", b"Token " + token.encode()),
        ("token-only", token.encode()),
        ("flipped-checksum", b"Bearer " + token[:-1].encode() + (b"A" if token[-1] != "A" else b"B")),
        ("truncated", b"Bearer " + token[:-3].encode()),
        ("nul", b"Bearer " + token.encode() + b"\x00"),
        ("ketch-prefix-only", b"Bearer ketch_"),
        ("sql", b"Bearer ' OR '1'='1"),
    ]


def test_a02_malformed_authorization_is_401_and_never_echoed(reg, alice, pkg, caplog):
    caplog.set_level(logging.DEBUG)
    before = reg.packument(pkg).content
    for label, value in _bad_headers(alice.token):
        # raw header bytes: the in-process client does not re-encode them
        resp = reg.client.put(f"/{pkg}", content=json.dumps(reg.publish_body(pkg, "9.9.9")).encode(),
                              headers=[(b"content-type", b"application/json"), (b"authorization", value)])
        reg.assert_error(resp, 401)
        credential = value.split(b" ", 1)[-1]
        if len(credential) >= 8:
            assert credential[:64] not in resp.content, f"{label}: the credential is echoed in the body"
            assert all(credential[:64] not in v.encode("latin-1", "replace") for v in resp.headers.values()), label
        # reads with bad credentials are not a way around anything either
        resp = reg.client.get("/-/whoami", headers=[(b"authorization", value)])
        reg.assert_error(resp, 401)
    assert reg.packument(pkg).content == before
    logged = server_log(caplog)
    assert alice.token not in logged
    assert "garbage" not in logged and "tökén" not in logged


def test_a02_whitespace_around_a_valid_token_is_the_token(reg, alice):
    """HTTP strips optional whitespace around header values, so a trailing newline (npm/cli#7819)
    cannot reach a server over the wire; in-process, Ketch treats it the same way."""
    for value in (f"Bearer {alice.token}\n", f"Bearer  {alice.token} ", f"bearer {alice.token}"):
        resp = reg.client.get("/-/whoami", headers=[(b"authorization", value.encode())])
        assert resp.status_code == 200 and resp.json() == {"username": alice.name}, (value, resp.text)


# ---- A05: read-only tokens -----------------------------------------------------------------------

def test_a05_read_only_token_cannot_write(reg, alice, pkg):
    ro = reg.readonly_token(alice)
    headers = {"authorization": f"Bearer {ro}"}
    before = reg.packument(pkg).content
    for method, path, body in write_requests(reg, pkg):
        resp = _send(reg, method, path, body, headers)
        err = reg.assert_error(resp, 403)
        assert "read-only" in err["error"], (method, path, err)
    assert reg.packument(pkg).content == before
    # a read-only token cannot mint a token either
    resp = reg.client.post("/-/npm/v1/tokens", json={"password": alice.password}, headers=headers)
    reg.assert_error(resp, 403, contains="read-only")
    # a new package cannot be created with it
    name = reg.unique("a05")
    reg.assert_error(reg.put_json("/" + name, reg.publish_body(name, "1.0.0"), headers=headers), 403)
    reg.assert_error(reg.packument(name), 404)
    # reads still work
    assert reg.client.get("/-/whoami", headers=headers).json() == {"username": alice.name}
    assert reg.client.get(f"/{pkg}", headers=headers).status_code == 200
    assert reg.client.get(f"/{pkg}/-/{pkg}-1.0.0.tgz", headers=headers).status_code == 200
    assert reg.client.get(f"/-/package/{pkg}/dist-tags", headers=headers).status_code == 200
    assert reg.client.get("/-/npm/v1/tokens", headers=headers).status_code == 200


def test_a05_read_only_token_reads_private_packages(reg, alice):
    name = f"@{alice.name}/{reg.unique('ro')}"
    reg.publish_ok(alice, name, access="restricted")
    ro = reg.readonly_token(alice)
    resp = reg.client.get("/" + reg.escaped(name), headers={"authorization": f"Bearer {ro}"})
    assert resp.status_code == 200
    assert reg.client.get(f"/{name}/-/{name.split('/')[1]}-1.0.0.tgz", headers={"authorization": f"Bearer {ro}"}).status_code == 200


def test_a05_token_creation_needs_the_password(reg, alice):
    for password in ("wrong-password", "", None, 12):
        resp = reg.client.post("/-/npm/v1/tokens", headers=alice.auth,
                               json={"password": password, "packages_and_scopes_permission": "read-write"})
        reg.assert_error(resp, 401)


# ---- A16: privilege fields in the legacy adduser body ------------------------------------------

def test_a16_admin_fields_in_adduser_are_ignored(reg, alice, pkg):
    name = reg.unique("a16")
    raw = json.dumps({"_id": f"org.couchdb.user:{name}", "name": name, "password": "a-long-password-16",
                      "email": f"{name}@example.test", "type": "admin", "roles": ["_admin"], "admin": True,
                      "tokens": ["ketch_" + "A" * 46], "maintainer_of": [pkg]})
    raw = raw.replace('"roles": ["_admin"]', '"roles": ["_admin"], "roles": ["_admin", "admin"]')
    resp = reg.client.put(f"/-/user/org.couchdb.user:{name}", content=raw.encode(),
                          headers={"content-type": "application/json"})
    if resp.status_code >= 400:
        reg.assert_error(resp, 400)
        return
    assert resp.status_code == 201
    token = resp.json()["token"]
    headers = {"authorization": f"Bearer {token}"}
    profile = reg.client.get(f"/-/user/org.couchdb.user:{name}").json()
    assert profile.get("roles") in ([], None) and profile.get("type") in ("user", None), profile
    assert not profile.get("admin")
    # no power over anyone else's package
    before = reg.packument(pkg).content
    for method, path, body in write_requests(reg, pkg):
        resp = _send(reg, method, path, body, headers)
        if "/-/" in path and path.endswith(tuple("0123456789abcdef")) and method == "DELETE" and ".tgz" in path:
            # the tarball DELETE of npm's unpublish flow is a no-op for everyone (protocol §5)
            assert resp.status_code in (200, 403, 404), resp.text
            continue
        reg.assert_error(resp, 403, 404)
    assert reg.packument(pkg).content == before
    assert reg.tarball(pkg, "1.0.0").status_code == 200
    # the injected token is not a credential
    reg.assert_error(reg.client.get("/-/whoami", headers={"authorization": "Bearer ketch_" + "A" * 46}), 401)


# ---- A17: legacy login for an existing user ---------------------------------------------------

def test_a17_existing_user_wrong_password_is_401_and_changes_nothing(reg):
    user = reg.signup("a17")
    resp = reg.client.put(f"/-/user/org.couchdb.user:{user.name}",
                          json={"name": user.name, "password": "not-the-password", "email": "evil@evil.example"})
    reg.assert_error(resp, 401)
    assert "token" not in resp.json()
    profile = reg.client.get(f"/-/user/org.couchdb.user:{user.name}").json()
    assert profile["email"] == user.email
    # the old password still works, the attempted one does not
    resp = reg.client.put(f"/-/user/org.couchdb.user:{user.name}",
                          json={"name": user.name, "password": "not-the-password"})
    reg.assert_error(resp, 401)
    resp = reg.client.put(f"/-/user/org.couchdb.user:{user.name}",
                          json={"name": user.name, "password": user.password, "email": "evil@evil.example"})
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert token.startswith("ketch_")
    assert reg.client.get("/-/whoami", headers={"authorization": f"Bearer {token}"}).json() == {"username": user.name}
    assert reg.client.get(f"/-/user/org.couchdb.user:{user.name}").json()["email"] == user.email


def test_a17_login_without_email_for_unknown_user_creates_nothing(reg):
    name = reg.unique("a17b")
    resp = reg.client.put(f"/-/user/org.couchdb.user:{name}", json={"name": name, "password": "whatever-pass-1"})
    reg.assert_error(resp, 401, 400)
    reg.assert_error(reg.client.get(f"/-/user/org.couchdb.user:{name}"), 404)


def test_a17_signup_twice_does_not_overwrite(reg):
    user = reg.signup("a17c")
    resp = reg.client.put(f"/-/user/org.couchdb.user:{user.name}",
                          json={"name": user.name, "password": "another-password-1", "email": "new@example.test"})
    reg.assert_error(resp, 401, 409)
    resp = reg.client.put(f"/-/user/org.couchdb.user:{user.name}", json={"name": user.name, "password": user.password})
    assert resp.status_code == 201


@pytest.mark.parametrize("body", [{"name": "bob-other", "password": "x-password-1"}, {"password": ""},
                                  {"name": None}, [], "x", {"password": ["a"]}, {"password": {"$ne": 1}}])
def test_a17_adduser_body_problems_are_4xx(reg, body):
    name = reg.unique("a17d")
    resp = _json_put(reg, f"/-/user/org.couchdb.user:{name}", body)
    reg.assert_error(resp, 400, 401)
    reg.assert_error(reg.client.get(f"/-/user/org.couchdb.user:{name}"), 404)


# ---- A19: only digests are stored ---------------------------------------------------------------

def test_a19_database_holds_no_raw_token_or_password(reg, alice):
    user = reg.signup("a19")
    session_token = user.token
    created = reg.client.post("/-/npm/v1/tokens", headers=user.auth,
                              json={"password": user.password, "packages_and_scopes_permission": "read-write"})
    api_token = reg.assert_ok(created, 201)["token"]
    ro_token = reg.readonly_token(user)
    raw_tokens = [session_token, api_token, ro_token]
    for token in raw_tokens:
        assert token.startswith(tokens.PREFIX) and tokens.well_formed(token), token
    # every file of the data directory, including SQLite's WAL, as bytes
    blobs = b"".join(p.read_bytes() for p in reg.settings.data_dir.rglob("*") if p.is_file())
    for token in raw_tokens:
        assert token.encode() not in blobs, "a raw token is stored"
        assert token[len(tokens.PREFIX):].encode() not in blobs
        assert tokens.digest(token).encode() in blobs, "the token's digest is not what is stored"
    assert user.password.encode() not in blobs, "a raw password is stored"
    # the token list shows no raw token either
    listed = reg.client.get("/-/npm/v1/tokens", headers=user.auth).text
    for token in raw_tokens:
        assert token not in listed


def test_a19_token_checks_are_constant_time_in_code():
    source = inspect.getsource(tokens)
    assert "compare_digest" in source
    from ketch.accounts import passwords
    assert "argon2" in inspect.getsource(passwords).lower()


def test_a19_token_with_a_bad_checksum_is_rejected(reg, alice):
    body = alice.token[len(tokens.PREFIX):-6]
    forged = tokens.PREFIX + body + "AAAAAA"
    assert not tokens.well_formed(forged) or forged == alice.token
    reg.assert_error(reg.client.get("/-/whoami", headers={"authorization": f"Bearer {forged}"}), 401)


# ---- A20: tokens in the query string are ignored ------------------------------------------------

@pytest.mark.parametrize("param", ["token", "_authToken", "access_token", "authorization", "npm_token"])
def test_a20_token_in_query_is_ignored(reg, alice, pkg, param, caplog):
    caplog.set_level(logging.DEBUG)
    reg.assert_error(reg.client.get(f"/-/whoami?{param}={alice.token}"), 401)
    name = reg.unique("a20")
    resp = reg.client.put(f"/{name}?{param}={alice.token}", content=json.dumps(reg.publish_body(name, "1.0.0")).encode(),
                          headers={"content-type": "application/json"})
    reg.assert_error(resp, 401)
    reg.assert_error(reg.packument(name), 404)
    resp = reg.client.put(f"/-/package/{pkg}/dist-tags/x1?{param}={alice.token}", content=b'"1.0.0"',
                          headers={"content-type": "application/json"})
    reg.assert_error(resp, 401)
    assert alice.token not in server_log(caplog)
