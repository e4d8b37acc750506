"""Access control (adversarial.md §4.4: C01, C04, C08) and owner changes (protocol §8)."""

from __future__ import annotations

import json

import pytest


def _headers_without_date(resp) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in resp.headers.multi_items() if k.lower() != "date")


def assert_identical(hidden, missing, what: str) -> None:
    assert hidden.status_code == missing.status_code == 404, (what, hidden.status_code, missing.status_code)
    assert hidden.content == missing.content, f"{what}: 404 bodies differ: {hidden.content!r} vs {missing.content!r}"
    assert _headers_without_date(hidden) == _headers_without_date(missing), (
        f"{what}: 404 headers differ: {_headers_without_date(hidden)} vs {_headers_without_date(missing)}")


@pytest.fixture(scope="module")
def private(reg, alice):
    """A restricted scoped package of alice's, and a name in the same scope that never existed."""
    scope = alice.name  # a user's own scope is theirs to publish into
    tag = reg.unique("secret")
    name, missing = f"@{scope}/{tag}", f"@{scope}/{tag}-never-existed"
    reg.publish_ok(alice, name, "1.0.0", access="restricted")
    reg.publish_ok(alice, name, "1.1.0")  # access null keeps it restricted
    reg.client.put(f"/-/package/{reg.escaped(name)}/dist-tags/beta", content=b'"1.0.0"',
                   headers={"content-type": "application/json", **alice.auth})
    return name, missing


def _callers(bob) -> dict[str, dict]:
    return {"anonymous": {}, "other-user": bob.auth,
            "bad-token": {"authorization": "Bearer ketch_" + "A" * 46},
            "basic-wrong": {"authorization": "Basic Ym9iOndyb25n"}}


# ---- C01: a private package is indistinguishable from a missing one -----------------------------

def test_c01_owner_can_read_the_private_package(reg, alice, private):
    name, _ = private
    doc = reg.doc(name, alice)
    assert set(doc["versions"]) == {"1.0.0", "1.1.0"}
    assert reg.doc(name, alice, abbreviated=True)["dist-tags"] == {"latest": "1.1.0", "beta": "1.0.0"}
    assert reg.tarball(name, "1.0.0", alice).status_code == 200
    assert reg.dist_tags(name, alice).json() == {"latest": "1.1.0", "beta": "1.0.0"}
    assert "private" in reg.packument(name, alice).headers["cache-control"]


@pytest.mark.parametrize("caller", ["anonymous", "other-user", "bad-token", "basic-wrong"])
def test_c01_reads_of_a_private_package_are_byte_identical_404s(reg, bob, private, caller):
    name, missing = private
    headers = _callers(bob)[caller]
    pairs = {
        "full": lambda n: reg.client.get("/" + reg.escaped(n), headers={"accept": "application/json", **headers}),
        "full-no-accept": lambda n: reg.client.get("/" + reg.escaped(n), headers=headers),
        "abbreviated": lambda n: reg.client.get("/" + reg.escaped(n),
                                                headers={"accept": "application/vnd.npm.install-v1+json", **headers}),
        "write-true": lambda n: reg.client.get("/" + reg.escaped(n) + "?write=true", headers=headers),
        "upper-%2F": lambda n: reg.client.get("/" + n.replace("/", "%2F"), headers=headers),
        "literal-slash": lambda n: reg.client.get("/" + n, headers=headers),
        "head": lambda n: reg.client.head("/" + reg.escaped(n), headers=headers),
        "gzip": lambda n: reg.client.get("/" + reg.escaped(n), headers={"accept-encoding": "gzip", **headers}),
        "if-none-match": lambda n: reg.client.get("/" + reg.escaped(n), headers={"if-none-match": "*", **headers}),
        "dist-tags": lambda n: reg.client.get(f"/-/package/{reg.escaped(n)}/dist-tags", headers=headers),
        "tarball-existing-version": lambda n: reg.client.get(f"/{n}/-/{n.split('/')[1]}-1.0.0.tgz", headers=headers),
        "tarball-escaped": lambda n: reg.client.get(f"/{reg.escaped(n)}/-/{n.split('/')[1]}-1.1.0.tgz", headers=headers),
        "tarball-missing-version": lambda n: reg.client.get(f"/{n}/-/{n.split('/')[1]}-7.7.7.tgz", headers=headers),
    }
    for what, fetch in pairs.items():
        assert_identical(fetch(name), fetch(missing), what)


def test_c01_private_tarball_by_exact_url_from_the_owners_packument(reg, alice, bob, private):
    name, missing = private
    url = reg.doc(name, alice)["versions"]["1.0.0"]["dist"]["tarball"]
    assert reg.client.get(url, headers=alice.auth).status_code == 200
    murl = url.replace(name, missing)
    assert_identical(reg.client.get(url), reg.client.get(murl), "anonymous tarball by exact URL")
    assert_identical(reg.client.get(url, headers=bob.auth), reg.client.get(murl, headers=bob.auth),
                     "other user's tarball by exact URL")


def test_c01_writes_by_another_user_look_like_a_missing_package(reg, bob, private):
    name, missing = private

    def attempts(n):
        doc = {"_id": n, "name": n, "_rev": "2-x", "versions": {"1.0.0": {"deprecated": "pwned"}}}
        return {
            "deprecate": lambda: reg.put_json("/" + reg.escaped(n), doc, bob),
            "dist-tag add": lambda: reg.client.put(f"/-/package/{reg.escaped(n)}/dist-tags/pwn", content=b'"1.0.0"',
                                                   headers={"content-type": "application/json", **bob.auth}),
            "dist-tag rm": lambda: reg.client.delete(f"/-/package/{reg.escaped(n)}/dist-tags/beta", headers=bob.auth),
            "owner add": lambda: reg.put_json(f"/{reg.escaped(n)}/-rev/2-x", {
                "_id": n, "_rev": "2-x", "maintainers": [{"name": bob.name, "email": bob.email}]}, bob),
            "unpublish": lambda: reg.client.delete(f"/{reg.escaped(n)}/-rev/2-x", headers=bob.auth),
        }

    hidden, absent = attempts(name), attempts(missing)
    for what in hidden:
        assert_identical(hidden[what](), absent[what](), what)


def test_c01_state_unchanged_after_the_attempts(reg, alice, private):
    name, _ = private
    doc = reg.doc(name, alice)
    assert doc["dist-tags"] == {"latest": "1.1.0", "beta": "1.0.0"}
    assert [m["name"] for m in doc["maintainers"]] == [alice.name]
    assert not any(v.get("deprecated") for v in doc["versions"].values())


def test_c01_publish_into_someone_elses_private_package_looks_like_a_new_name(reg, bob, private):
    """Publishing is a probe too: the answer for a hidden package must be the answer for a name in
    the same scope that never existed (whatever that answer is), or existence leaks."""
    name, missing = private
    hidden = reg.publish(bob, name, "2.0.0")
    absent = reg.publish(bob, missing + "-2", "2.0.0")
    reg.assert_error(hidden, 403, 404)
    reg.assert_error(absent, 403, 404)
    assert hidden.status_code == absent.status_code, (
        f"publish to a hidden package answers {hidden.status_code} {hidden.text!r}, to a new name in the same "
        f"scope {absent.status_code} {absent.text!r}")
    assert hidden.content.replace(name.encode(), b"") == absent.content.replace((missing + "-2").encode(), b"")


def test_c01_public_package_stays_public_after_republish(reg, alice, bob):
    name = f"@{alice.name}/{reg.unique('pub')}"
    reg.publish_ok(alice, name, "1.0.0", access="public")
    reg.publish_ok(alice, name, "1.1.0")
    assert reg.packument(name).status_code == 200
    assert reg.packument(name, bob).status_code == 200


def test_c01_restricted_unscoped_package_is_refused(reg, alice):
    name = reg.unique("c01u")
    reg.assert_error(reg.publish(alice, name, "1.0.0", access="restricted"), 400)
    reg.assert_error(reg.packument(name), 404)


def test_c01_private_package_can_be_made_public_and_back(reg, alice, bob):
    name = f"@{alice.name}/{reg.unique('flip')}"
    reg.publish_ok(alice, name, "1.0.0", access="restricted")
    reg.assert_error(reg.packument(name, bob), 404)
    reg.publish_ok(alice, name, "1.1.0", access="public")
    assert reg.packument(name, bob).status_code == 200
    assert reg.tarball(name, "1.0.0").status_code == 200
    reg.publish_ok(alice, name, "1.2.0", access="restricted")
    reg.assert_error(reg.packument(name, bob), 404)
    reg.assert_error(reg.tarball(name, "1.0.0"), 404)


# ---- C04: someone else's public package ---------------------------------------------------------

def test_c04_non_owner_publish_is_403_with_npms_text(reg, alice, bob):
    name = reg.unique("c04")
    reg.publish_ok(alice, name, "1.0.0")
    before = reg.packument(name).content
    err = reg.assert_error(reg.publish(bob, name, "1.0.1"), 403)
    assert err["error"] == f'You do not have permission to publish "{name}". Are you logged in as the correct user?'
    for version in ("1.0.0", "2.0.0-rc.1"):
        reg.assert_error(reg.publish(bob, name, version, tag="next"), 403)
    assert reg.packument(name).content == before


def test_c04_non_owner_cannot_change_the_package_any_other_way(reg, alice, bob):
    name = reg.unique("c04b")
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "1.1.0")
    before = reg.packument(name).content
    doc = reg.doc(name, write=True)
    dep = json.loads(json.dumps(doc))
    dep["versions"]["1.0.0"]["deprecated"] = "pwned"
    reg.assert_error(reg.put_json("/" + name, dep, bob), 403)
    unpub = json.loads(json.dumps(doc))
    del unpub["versions"]["1.0.0"]
    reg.assert_error(reg.put_json(f"/{name}/-rev/{doc['_rev']}", unpub, bob), 403)
    reg.assert_error(reg.client.delete(f"/{name}/-rev/{doc['_rev']}", headers=bob.auth), 403)
    reg.assert_error(reg.client.put(f"/-/package/{name}/dist-tags/latest", content=b'"1.0.0"',
                                    headers={"content-type": "application/json", **bob.auth}), 403)
    reg.assert_error(reg.client.delete(f"/-/package/{name}/dist-tags/latest", headers=bob.auth), 403, 400)
    owners = {"_id": name, "_rev": doc["_rev"], "maintainers": [{"name": bob.name, "email": bob.email}]}
    reg.assert_error(reg.put_json(f"/{name}/-rev/{doc['_rev']}", owners, bob), 403)
    assert reg.packument(name).content == before


# ---- C08 and owner add / rm (PUT /pkg/-rev/rev with maintainers) -----------------------------

def _owners(reg, name: str, user, names: list[str], rev: str | None = None):
    doc = reg.doc(name)
    rev = rev or doc["_rev"]
    maintainers = [{"name": n, "email": f"{n}@example.test"} for n in names]
    return reg.put_json(f"/{reg.escaped(name)}/-rev/{rev}", {"_id": name, "_rev": rev, "maintainers": maintainers}, user)


def test_c08_removing_the_last_owner_is_400(reg, alice):
    name = reg.unique("c08")
    reg.publish_ok(alice, name)
    before = reg.packument(name).content
    reg.assert_error(_owners(reg, name, alice, []), 400)
    assert reg.packument(name).content == before
    assert [m["name"] for m in reg.doc(name)["maintainers"]] == [alice.name]


def test_c08_adding_a_nonexistent_user_is_404(reg, alice):
    name = reg.unique("c08b")
    reg.publish_ok(alice, name)
    before = reg.packument(name).content
    reg.assert_error(_owners(reg, name, alice, [alice.name, "no-such-user-c08"]), 404)
    assert reg.packument(name).content == before


@pytest.mark.parametrize("maintainers", ["bob", [{"email": "x@x"}], [None], {"name": "x"}, [{"name": 5}]])
def test_c08_malformed_maintainers_are_400(reg, alice, maintainers):
    name = reg.unique("c08c")
    reg.publish_ok(alice, name)
    rev = reg.doc(name)["_rev"]
    before = reg.packument(name).content
    resp = reg.put_json(f"/{name}/-rev/{rev}", {"_id": name, "_rev": rev, "maintainers": maintainers}, alice)
    reg.assert_error(resp, 400)
    assert reg.packument(name).content == before


def test_owner_add_then_rm_round_trip(reg, alice, bob):
    name = reg.unique("own")
    reg.publish_ok(alice, name)
    # npm owner add: GET the user, GET the packument, PUT the new list; the answer is JSON
    assert reg.client.get(f"/-/user/org.couchdb.user:{bob.name}").json()["name"] == bob.name
    resp = _owners(reg, name, alice, [alice.name, bob.name])
    body = reg.assert_ok(resp, 200, 201)
    assert body.get("ok") is True and body.get("success") is True
    doc = reg.doc(name)
    assert sorted(m["name"] for m in doc["maintainers"]) == sorted([alice.name, bob.name])
    assert {m["name"]: m["email"] for m in doc["maintainers"]}[bob.name] == bob.email
    reg.publish_ok(bob, name, "1.1.0")
    assert reg.doc(name)["versions"]["1.1.0"]["_npmUser"]["name"] == bob.name
    # the new owner removes the old one; the old one is then locked out
    reg.assert_ok(_owners(reg, name, bob, [bob.name]), 200, 201)
    assert [m["name"] for m in reg.doc(name)["maintainers"]] == [bob.name]
    reg.assert_error(reg.publish(alice, name, "1.2.0"), 403)
    reg.assert_error(_owners(reg, name, alice, [alice.name, bob.name]), 403)
    # unchanged list: a no-op, still a JSON answer
    reg.assert_ok(_owners(reg, name, bob, [bob.name]), 200, 201)


def test_owner_change_with_a_stale_rev_is_409(reg, alice, bob):
    name = reg.unique("own409")
    reg.publish_ok(alice, name)
    stale = reg.doc(name)["_rev"]
    reg.publish_ok(alice, name, "1.1.0")
    before = reg.packument(name).content
    reg.assert_error(_owners(reg, name, alice, [alice.name, bob.name], rev=stale), 409)
    assert reg.packument(name).content == before
