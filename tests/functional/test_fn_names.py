"""Names and paths (adversarial.md §4.1): bad names are refused with npm-shaped 400s, odd URL forms of
one name address one package, and no request outside the tarball store ever reads or writes a file."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time
from urllib.parse import quote

import pytest


def blob_files(reg) -> set[str]:
    root = reg.settings.data_dir / "tarballs" / "sha512"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def data_files(reg) -> set[str]:
    """Every file under the data directory except SQLite's own (which change on every write)."""
    return {str(p.relative_to(reg.settings.data_dir)) for p in reg.settings.data_dir.rglob("*")
            if p.is_file() and not p.name.startswith("ketch.sqlite3")}


def package_rows(reg, name: str) -> int:
    with sqlite3.connect(reg.settings.data_dir / "ketch.sqlite3") as db:
        return db.execute("SELECT count(*) FROM packages WHERE name = ?", (name,)).fetchone()[0]


def all_package_names(reg) -> set[str]:
    with sqlite3.connect(reg.settings.data_dir / "ketch.sqlite3") as db:
        return {n for (n,) in db.execute("SELECT name FROM packages")}


# ---- N01: path traversal in the publish URL ---------------------------------------------------

@pytest.mark.parametrize("path, body_name", [
    ("/..%2f..%2fetc%2fpasswd", "../../etc/passwd"),
    ("/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "../../etc/passwd"),
    ("/..%2F..%2F..%2Ftmp%2Fketch-pwned", "../../../tmp/ketch-pwned"),
    ("/%2e%2e", ".."),
    ("/@x%2f..%2f..%2fetc", "@x/../../etc"),
    ("/foo%2f..%2f..%2fetc", "foo/../../etc"),
])
def test_n01_traversal_publish_is_400_and_writes_nothing(reg, alice, path, body_name):
    before_files, before_names = data_files(reg), all_package_names(reg)
    resp = reg.put_json(path, reg.publish_body(body_name, "1.0.0"), alice)
    reg.assert_error(resp, 400, contains="Invalid package name")
    assert data_files(reg) == before_files, "a refused publish wrote a file"
    assert all_package_names(reg) == before_names, "a refused publish created a package row"


def test_n01_body_name_traversal_under_a_valid_url_is_refused(reg, alice):
    name = reg.unique("n01")
    before = data_files(reg)
    resp = reg.put_json("/" + name, reg.publish_body("../../etc/passwd", "1.0.0"), alice)
    reg.assert_error(resp, 400)
    assert data_files(reg) == before
    assert package_rows(reg, name) == 0 and package_rows(reg, "../../etc/passwd") == 0


# ---- N02: traversal on the read side ----------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/pkg/-/..%2f..%2f..%2fetc%2fpasswd",
    "/pkg/-/%252e%252e%252f%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "/pkg/-/..\\..\\..\\etc\\passwd",
    "/pkg/-/x%00.tgz",
    "/pkg/-/..%2fketch.sqlite3",
    "/pkg/-/..%2f..%2fketch.sqlite3",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/..%2fketch.sqlite3",
    "/%2e%2e%2fketch.sqlite3",
    "/@x/..%2f..%2fketch.sqlite3",
    "/pkg/-/%2fetc%2fpasswd",
    "/-/package/..%2f..%2fetc%2fpasswd/dist-tags",
])
def test_n02_traversal_reads_are_json_404_never_file_contents(reg, path):
    resp = reg.client.get(path)
    reg.assert_error(resp, 404, 400)
    assert b"root:" not in resp.content and b"SQLite format" not in resp.content


def test_n02_traversal_against_an_existing_package(reg, alice):
    name = reg.unique("n02")
    reg.publish_ok(alice, name)
    for path in (f"/{name}/-/..%2f..%2fketch.sqlite3", f"/{name}/-/{name}-1.0.0.tgz%00.txt",
                 f"/{name}/-/..%2f{name}-1.0.0.tgz", f"/{name}/-/{name}-..%2f1.0.0.tgz"):
        resp = reg.client.get(path)
        reg.assert_error(resp, 404, 400)
        assert b"SQLite format" not in resp.content


# ---- N04: reserved names, and names that are JavaScript object keys -----------------------------

@pytest.mark.parametrize("name", ["__proto__", "node_modules", "favicon.ico", ".bin", "_design"])
def test_n04_reserved_names_are_refused(reg, alice, name):
    before = data_files(reg)
    reg.assert_error(reg.publish(alice, name), 400, contains="Invalid package name")
    reg.assert_error(reg.packument(name), 404)
    reg.assert_error(reg.packument(name, abbreviated=True), 404)
    assert data_files(reg) == before
    assert reg.client.get("/-/ping").status_code == 200


# `hasOwnProperty` and `toString` themselves contain capitals, which npm refuses for new packages
# (N05), so their lower-case spellings stand in for them here.
@pytest.mark.parametrize("name", ["constructor", "prototype", "hasownproperty", "tostring", "valueof",
                                  "-", "-leading-hyphen"])
def test_n04_object_key_names_are_ordinary_packages(reg, alice, bob, name):
    body = reg.publish_ok(alice, name, "1.0.0")
    assert body.get("ok") is True
    reg.publish_ok(alice, name, "1.1.0")
    doc = reg.doc(name)
    assert doc["name"] == name and doc["_id"] == name
    assert set(doc["versions"]) == {"1.0.0", "1.1.0"} and doc["dist-tags"] == {"latest": "1.1.0"}
    abbreviated = reg.doc(name, abbreviated=True)
    assert set(abbreviated["versions"]) == {"1.0.0", "1.1.0"}
    # install path: the tarball named in the packument downloads and matches its integrity
    dist = doc["versions"]["1.0.0"]["dist"]
    resp = reg.client.get(dist["tarball"])
    assert resp.status_code == 200, (dist["tarball"], resp.status_code, resp.text[:200])
    assert "sha512-" + base64.b64encode(hashlib.sha512(resp.content).digest()).decode() == dist["integrity"]
    # dist-tag round trip
    resp = reg.client.put(f"/-/package/{reg.escaped(name)}/dist-tags/beta", content=b'"1.0.0"',
                          headers={"content-type": "application/json", **alice.auth})
    reg.assert_ok(resp, 200, 201)
    assert reg.dist_tags(name).json() == {"latest": "1.1.0", "beta": "1.0.0"}
    # someone else still may not publish it
    reg.assert_error(reg.publish(bob, name, "2.0.0"), 403)


# ---- N05: the name rules -----------------------------------------------------------------------

@pytest.mark.parametrize("name, rule", [
    ("React", "capital letters"),
    (" leftpad", "spaces"),
    ("leftpad ", "spaces"),
    ("a~b", "special characters"),
    ("a!b", "special characters"),
    ("a(b)", "special characters"),
    ("'x'", "special characters"),
    ("*x", "special characters"),
    (".x", "period"),
    ("_x", "underscore"),
    ("", "length"),
    ("a" * 215, "214"),
    ("http", "core module"),
    ("a%b", "URL-friendly"),
    ("a:b", "URL-friendly"),
])
def test_n05_invalid_names_quote_the_rule(reg, alice, name, rule):
    before = data_files(reg)
    resp = reg.put_json("/" + quote(name, safe="@"), reg.publish_body(name, "1.0.0"), alice)
    reg.assert_error(resp, 400, contains=rule)
    assert "Invalid package name" in resp.json()["error"]
    assert data_files(reg) == before
    assert name == "" or package_rows(reg, name) == 0


def test_n05_214_character_name_is_valid(reg, alice):
    name = reg.unique("n05")
    name = name + "x" * (214 - len(name))
    assert len(name) == 214
    reg.assert_ok(reg.publish(alice, name), 201)
    assert reg.doc(name)["name"] == name


# ---- N07: scoped-name forms ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["@scope/a/b", "@/x", "@scope/", "@Scope/x", "@sc ope/x", "@scope/.x",
                                  "@./x", "@../x", "@scope/a b"])
def test_n07_invalid_scoped_forms_are_400(reg, alice, name):
    before_files, before_names = data_files(reg), all_package_names(reg)
    path = "/" + quote(name, safe="@").replace("/", "%2f")
    reg.assert_error(reg.put_json(path, reg.publish_body(name, "1.0.0"), alice), 400, contains="Invalid package name")
    assert data_files(reg) == before_files and all_package_names(reg) == before_names


def test_n07_every_url_spelling_addresses_one_package(reg, alice):
    scope, pkg = alice.name, reg.unique("pkg")
    name = f"@{scope}/{pkg}"
    spellings = [f"/@{scope}%2f{pkg}", f"/@{scope}%2F{pkg}", f"/%40{scope}%2f{pkg}", f"/%40{scope}%2F{pkg}",
                 f"/@{scope}/{pkg}"]
    for i, path in enumerate(spellings):
        resp = reg.put_json(path, reg.publish_body(name, f"1.{i}.0"), alice)
        reg.assert_ok(resp, 201)
    assert package_rows(reg, name) == 1
    documents = set()
    for path in spellings:
        resp = reg.client.get(path, headers={"accept": "application/json"})
        assert resp.status_code == 200, (path, resp.status_code)
        documents.add(resp.content)
    assert len(documents) == 1, "different URL spellings served different documents"
    doc = reg.doc(name)
    assert sorted(doc["versions"]) == [f"1.{i}.0" for i in range(len(spellings))]
    for path in (f"/@{scope}/{pkg}/-/{pkg}-1.0.0.tgz", f"/@{scope}%2f{pkg}/-/{pkg}-1.0.0.tgz",
                 f"/@{scope}%2F{pkg}/-/{pkg}-1.0.0.tgz"):
        assert reg.client.get(path).status_code == 200, path
    # the canonical tarball URL keeps the scope slash literal (protocol §3)
    assert doc["versions"]["1.0.0"]["dist"]["tarball"] == f"http://testserver/@{scope}/{pkg}/-/{pkg}-1.0.0.tgz"


# ---- N08: confusable and non-URL-safe names -------------------------------------------------

@pytest.mark.parametrize("name", ["re\u0430ct", "\uff52eact", "a\u202eb", "@s\u202e/x", "@s/x\u202e", "caf\u00e9",
                                  "@\u0455cope/x", "a\u200bb"])
def test_n08_non_ascii_names_are_400(reg, alice, name):
    before = data_files(reg)
    path = "/" + quote(name, safe="@").replace("/", "%2f")
    reg.assert_error(reg.put_json(path, reg.publish_body(name, "1.0.0"), alice), 400, contains="URL-friendly")
    assert data_files(reg) == before
    reg.assert_error(reg.client.get(path), 404)


def test_n08_lone_surrogate_in_url_and_body_is_not_a_500(reg, alice):
    resp = reg.client.put("/%ED%A0%80", content=b'{"name":"\\ud800","versions":{}}',
                          headers={"content-type": "application/json", **alice.auth})
    reg.assert_error(resp, 400)
    reg.assert_error(reg.client.get("/%ED%A0%80"), 404, 400)
    reg.assert_error(reg.client.get("/x/-/%ED%A0%80.tgz"), 404, 400)


@pytest.mark.parametrize("username", ["\u0430lice", "bob\u202e", "Alice", "a b", "..", "\uff41", "-x", "x" * 215])
def test_n08_bad_usernames_are_400(reg, username):
    body = {"name": username, "password": "a-fine-password-1", "email": "x@example.test"}
    resp = reg.client.put("/-/user/org.couchdb.user:" + quote(username, safe=""), json=body)
    reg.assert_error(resp, 400)


def test_n08_username_with_a_slash_addresses_nothing(reg):
    body = {"name": "../x", "password": "a-fine-password-1", "email": "x@example.test"}
    reg.assert_error(reg.client.put("/-/user/org.couchdb.user:..%2Fx", json=body), 400, 404)


# ---- N11: URL name vs body name --------------------------------------------------------------

def test_n11_url_and_body_names_must_match(reg, alice):
    a, b = reg.unique("n11a"), reg.unique("n11b")
    before = data_files(reg)
    resp = reg.put_json("/" + a, reg.publish_body(b, "1.0.0"), alice)
    reg.assert_error(resp, 400, contains="does not match")
    body = reg.publish_body(a, "1.0.0")
    body["_id"] = b
    reg.assert_error(reg.put_json("/" + a, body, alice), 400)
    body = reg.publish_body(a, "1.0.0")
    body["versions"]["1.0.0"]["name"] = b
    reg.assert_error(reg.put_json("/" + a, body, alice), 400)
    assert data_files(reg) == before
    assert package_rows(reg, a) == 0 and package_rows(reg, b) == 0
    reg.assert_error(reg.packument(a), 404)
    reg.assert_error(reg.packument(b), 404)


# ---- N13: bad versions, fast --------------------------------------------------------------------

BAD_VERSIONS = [
    "1.0.0/../../x", "01.0.0", "1.0.0-", "v1.0.0", "=1.0.0", "1" * 300, "99999999999999999999.0.0",
    "1.0", "1.0.0.0", " 1.0.0", "1.0.0 ", "1.0.0-01", "1.0.0+", "1.0.0-a..b", "1.0.0\n",
    "1." + "0" * 250 + "x",
    "1.0.0-" + "a-" * 120 + "!",
    "1.0.0-" + "0" * 240 + "a!",
    "9007199254740992.0.0",
    "1.0.0-\u0430",
]


@pytest.mark.parametrize("version", BAD_VERSIONS, ids=lambda v: repr(v[:24]))
def test_n13_invalid_versions_are_400_within_50ms(reg, alice, version):
    name = reg.unique("n13")
    body = reg.publish_body(name, version)
    best = float("inf")
    for _ in range(5):  # best of five: scheduler noise aside, a ReDoS is slow every time
        start = time.perf_counter()
        resp = reg.put_json("/" + name, body, alice)
        best = min(best, time.perf_counter() - start)
        reg.assert_error(resp, 400)
    assert best < 0.05, f"refusing {version[:30]!r} took {best * 1000:.0f} ms"
    assert package_rows(reg, name) == 0


def test_n13_bad_version_in_dist_tag_and_tarball_paths(reg, alice):
    name = reg.unique("n13t")
    reg.publish_ok(alice, name)
    for version in ("1.0.0/../../x", "v1.0.0", "1" * 300):
        resp = reg.client.put(f"/-/package/{name}/dist-tags/next", content=f'"{version}"'.encode(),
                              headers={"content-type": "application/json", **alice.auth})
        reg.assert_error(resp, 400, 404)
    reg.assert_error(reg.client.get(f"/{name}/-/{name}-{'1' * 300}.tgz"), 404)
    assert reg.dist_tags(name).json() == {"latest": "1.0.0"}


# ---- N14: build metadata does not make a new version -------------------------------------------

def test_n14_build_metadata_is_the_same_version(reg, alice):
    name = reg.unique("n14")
    reg.publish_ok(alice, name, "1.0.0+build.2")
    for other in ("1.0.0+build.1", "1.0.0"):
        body = reg.assert_error(reg.publish(alice, name, other), 403)
        assert "cannot publish over" in body["error"].lower() and "1.0.0" in body["error"]
    assert list(reg.doc(name)["versions"]) == ["1.0.0+build.2"]


# ---- N16: unpublished names and used version numbers -----------------------------------------

def test_n16_unpublished_name_is_tombstoned(reg, alice, bob):
    name = reg.unique("n16")
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "1.1.0")
    rev = reg.doc(name, write=True)["_rev"]
    reg.assert_ok(reg.client.delete(f"/{name}/-rev/{rev}", headers=alice.auth), 200, 201, 204)
    reg.assert_error(reg.packument(name), 404)
    reg.assert_error(reg.tarball(name, "1.0.0"), 404)
    # someone else cannot take the name over
    body = reg.assert_error(reg.publish(bob, name, "9.0.0"), 403)
    assert name in body["error"]
    reg.assert_error(reg.packument(name), 404)
    # a used name@version is never reusable, not even by its owner
    for version in ("1.0.0", "1.1.0"):
        body = reg.assert_error(reg.publish(alice, name, version), 403)
        assert body["error"] == f"You cannot publish over the previously published versions: {version}."
    reg.assert_error(reg.packument(name), 404)
