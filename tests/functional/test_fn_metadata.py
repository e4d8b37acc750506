"""Metadata writes and reads: dist-tags, deprecate, unpublish, `_rev` conflicts, caching headers,
gzip, tarball URLs that follow the Host header, and the fields of the full and abbreviated documents
(npm-protocol.md §2-§8)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import datetime

import pytest


def tag_put(reg, user, name: str, tag: str, raw: bytes):
    return reg.client.put(f"/-/package/{reg.escaped(name)}/dist-tags/{tag}", content=raw,
                          headers={"content-type": "application/json", **(user.auth if user else {})})


def tag_delete(reg, user, name: str, tag: str):
    return reg.client.delete(f"/-/package/{reg.escaped(name)}/dist-tags/{tag}", headers=user.auth if user else {})


def _package(reg, alice) -> str:
    name = reg.unique("meta")
    for version in ("1.0.0", "1.1.0", "2.0.0-beta.1"):
        reg.publish_ok(alice, name, version, tag="beta" if "beta" in version else "latest")
    return name


@pytest.fixture
def pkg(reg, alice) -> str:
    """A fresh package for a test that changes it."""
    return _package(reg, alice)


@pytest.fixture(scope="module")
def stable(reg, alice) -> str:
    """A package shared by the tests whose requests must all be refused (each checks it is unchanged)."""
    return _package(reg, alice)


# ---- dist-tags ----------------------------------------------------------------------------------

def test_dist_tag_add_move_remove(reg, alice, pkg):
    assert reg.dist_tags(pkg).json() == {"latest": "1.1.0", "beta": "2.0.0-beta.1"}
    etag = reg.packument(pkg).headers["etag"]
    reg.assert_ok(tag_put(reg, alice, pkg, "stable", b'"1.0.0"'), 200, 201)
    assert reg.dist_tags(pkg).json()["stable"] == "1.0.0"
    assert reg.doc(pkg)["dist-tags"]["stable"] == "1.0.0"
    assert reg.doc(pkg, abbreviated=True)["dist-tags"]["stable"] == "1.0.0"
    assert reg.packument(pkg).headers["etag"] != etag
    reg.assert_ok(tag_put(reg, alice, pkg, "latest", b'"1.0.0"'), 200, 201)
    assert reg.doc(pkg)["dist-tags"]["latest"] == "1.0.0"
    reg.assert_ok(tag_delete(reg, alice, pkg, "stable"), 200, 201, 204)
    for doc in (reg.dist_tags(pkg).json(), reg.doc(pkg)["dist-tags"], reg.doc(pkg, abbreviated=True)["dist-tags"]):
        assert doc == {"latest": "1.0.0", "beta": "2.0.0-beta.1"}
    assert reg.dist_tags(pkg).headers.get("cache-control") == "no-cache"


@pytest.mark.parametrize("tag", ["1.x", "^2", "~1.0.0", "*", "x", "X", "1", "1.0.0", "v1", ">=1.0.0", "<2", "=1.0.0",
                                 "1.0.0 - 2.0.0", "1 || 2"])
def test_dist_tag_that_is_a_semver_range_is_400(reg, alice, stable, tag):
    before = reg.packument(stable).content
    path = f"/-/package/{stable}/dist-tags/" + tag.replace("%", "%25").replace(" ", "%20").replace("|", "%7C")
    resp = reg.client.put(path, content=b'"1.0.0"', headers={"content-type": "application/json", **alice.auth})
    reg.assert_error(resp, 400)
    assert reg.packument(stable).content == before


@pytest.mark.parametrize("tag", ["a%2Fb", "..", ".hidden", "a%20b", "x" * 129, "t%00", "%E2%80%AE"])
def test_dist_tag_with_a_bad_name_is_4xx(reg, alice, stable, tag):
    before = reg.packument(stable).content
    resp = reg.client.put(f"/-/package/{stable}/dist-tags/{tag}", content=b'"1.0.0"',
                          headers={"content-type": "application/json", **alice.auth})
    reg.assert_error(resp, 400, 404)
    assert reg.packument(stable).content == before


def test_dist_tag_pointing_at_a_missing_version_is_404(reg, alice, stable):
    before = reg.packument(stable).content
    reg.assert_error(tag_put(reg, alice, stable, "next", b'"9.9.9"'), 404)
    reg.assert_error(tag_put(reg, alice, stable, "next", b'"1.0.0+build"'), 404)
    assert reg.packument(stable).content == before


@pytest.mark.parametrize("raw", [b'{"version":"1.0.0"}', b'["1.0.0"]', b"1.0", b"null", b"", b'"not a version"',
                                 b"1.0.0", b'"' + b"1" * 300 + b'"'])
def test_dist_tag_body_must_be_a_json_version_string(reg, alice, stable, raw):
    before = reg.packument(stable).content
    reg.assert_error(tag_put(reg, alice, stable, "next", raw), 400)
    assert reg.packument(stable).content == before


def test_dist_tag_latest_cannot_be_deleted(reg, alice, stable):
    before = reg.packument(stable).content
    reg.assert_error(tag_delete(reg, alice, stable, "latest"), 400, contains="latest")
    reg.assert_error(tag_delete(reg, alice, stable, "no-such-tag"), 404)
    assert reg.packument(stable).content == before


def test_dist_tag_on_a_missing_package_is_404(reg, alice):
    name = reg.unique("nopkg")
    reg.assert_error(tag_put(reg, alice, name, "beta", b'"1.0.0"'), 404)
    reg.assert_error(tag_delete(reg, alice, name, "beta"), 404)
    reg.assert_error(reg.dist_tags(name), 404)
    reg.assert_error(reg.packument(name), 404)


def test_dist_tag_route_methods(reg, alice, stable):
    reg.assert_error(reg.client.put(f"/-/package/{stable}/dist-tags", content=b"{}",
                                    headers={"content-type": "application/json", **alice.auth}), 404, 405)
    reg.assert_error(reg.client.post(f"/-/package/{stable}/dist-tags/x", content=b'"1.0.0"',
                                     headers={"content-type": "application/json", **alice.auth}), 404, 405)


# ---- deprecate (PUT /name with the edited document) --------------------------------------------

def _deprecate(reg, user, name: str, messages: dict[str, str], rev: str | None = None):
    doc = reg.doc(name, write=True)
    for version, message in messages.items():
        doc["versions"][version]["deprecated"] = message
    if rev is not None:
        doc["_rev"] = rev
    return reg.put_json("/" + reg.escaped(name), doc, user)


def test_deprecate_and_undeprecate(reg, alice, pkg):
    etag = reg.packument(pkg).headers["etag"]
    reg.assert_ok(_deprecate(reg, alice, pkg, {"1.0.0": "use 1.1.0", "2.0.0-beta.1": "beta is over"}), 200, 201)
    full, abbreviated = reg.doc(pkg), reg.doc(pkg, abbreviated=True)
    assert full["versions"]["1.0.0"]["deprecated"] == "use 1.1.0"
    assert abbreviated["versions"]["1.0.0"]["deprecated"] == "use 1.1.0"
    assert abbreviated["versions"]["2.0.0-beta.1"]["deprecated"] == "beta is over"
    assert "deprecated" not in full["versions"]["1.1.0"] and "deprecated" not in abbreviated["versions"]["1.1.0"]
    assert reg.packument(pkg).headers["etag"] != etag
    # npm undeprecate writes "" — that removes the deprecation
    reg.assert_ok(_deprecate(reg, alice, pkg, {"1.0.0": ""}), 200, 201)
    assert "deprecated" not in reg.doc(pkg)["versions"]["1.0.0"]
    assert "deprecated" not in reg.doc(pkg, abbreviated=True)["versions"]["1.0.0"]
    assert reg.doc(pkg)["versions"]["2.0.0-beta.1"]["deprecated"] == "beta is over"


def test_deprecate_put_of_unchanged_document_is_a_no_op(reg, alice, pkg):
    before = reg.packument(pkg)
    reg.assert_ok(reg.put_json("/" + pkg, reg.doc(pkg, write=True), alice), 200, 201)
    after = reg.packument(pkg)
    assert after.content == before.content and after.headers["etag"] == before.headers["etag"]


@pytest.mark.parametrize("message", [123, ["x"], {"a": 1}, "x" * 5000, True])
def test_deprecate_message_must_be_a_short_string(reg, alice, stable, message):
    before = reg.packument(stable).content
    reg.assert_error(_deprecate(reg, alice, stable, {"1.0.0": message}), 400)
    assert reg.packument(stable).content == before


def test_deprecate_with_stale_rev_is_409(reg, alice, pkg):
    stale = reg.doc(pkg)["_rev"]
    reg.assert_ok(tag_put(reg, alice, pkg, "other", b'"1.0.0"'), 200, 201)
    before = reg.packument(pkg).content
    reg.assert_error(_deprecate(reg, alice, pkg, {"1.0.0": "x"}, rev=stale), 409)
    assert reg.packument(pkg).content == before


def test_deprecate_by_non_owner_is_403(reg, bob, stable):
    before = reg.packument(stable).content
    reg.assert_error(_deprecate(reg, bob, stable, {"1.0.0": "pwned"}), 403)
    assert reg.packument(stable).content == before


# ---- unpublish ---------------------------------------------------------------------------------

def _unpublish_version(reg, user, name: str, version: str, rev: str | None = None):
    """libnpmpublish's single-version unpublish: PUT the edited document to /name/-rev/rev."""
    doc = reg.doc(name, write=True)
    del doc["versions"][version]
    for tag, target in list(doc["dist-tags"].items()):
        if target == version:
            del doc["dist-tags"][tag]
    doc["time"].pop(version, None)
    return reg.put_json(f"/{reg.escaped(name)}/-rev/{rev or doc['_rev']}", doc, user)


def test_unpublish_one_version(reg, alice, pkg):
    reg.assert_ok(_unpublish_version(reg, alice, pkg, "1.1.0"), 200, 201)
    full, abbreviated = reg.doc(pkg), reg.doc(pkg, abbreviated=True)
    assert set(full["versions"]) == {"1.0.0", "2.0.0-beta.1"} == set(abbreviated["versions"])
    assert "1.1.0" not in full["time"]
    # latest moved to the highest remaining release
    assert full["dist-tags"] == {"latest": "1.0.0", "beta": "2.0.0-beta.1"} == reg.dist_tags(pkg).json()
    reg.assert_error(reg.tarball(pkg, "1.1.0"), 404)
    assert reg.tarball(pkg, "1.0.0").status_code == 200
    # npm then DELETEs the tarball path; a no-op
    rev = reg.doc(pkg)["_rev"]
    reg.assert_ok(reg.client.delete(f"/{pkg}/-/{pkg}-1.1.0.tgz/-rev/{rev}", headers=alice.auth), 200, 201, 204)
    # the number is never reusable
    err = reg.assert_error(reg.publish(alice, pkg, "1.1.0"), 403)
    assert err["error"] == "You cannot publish over the previously published versions: 1.1.0."
    reg.assert_error(reg.publish(alice, pkg, "1.1.0+rebuild"), 403)
    assert set(reg.doc(pkg)["versions"]) == {"1.0.0", "2.0.0-beta.1"}
    # a dist-tag cannot point at it either
    reg.assert_error(tag_put(reg, alice, pkg, "old", b'"1.1.0"'), 404)


def test_unpublish_version_with_stale_rev_is_409(reg, alice, pkg):
    stale = reg.doc(pkg)["_rev"]
    reg.publish_ok(alice, pkg, "1.2.0")
    before = reg.packument(pkg).content
    reg.assert_error(_unpublish_version(reg, alice, pkg, "1.0.0", rev=stale), 409)
    assert reg.packument(pkg).content == before
    reg.assert_error(reg.client.delete(f"/{pkg}/-rev/{stale}", headers=alice.auth), 409)
    assert reg.packument(pkg).content == before


def test_unpublish_the_last_version_this_way_is_refused(reg, alice):
    name = reg.unique("last")
    reg.publish_ok(alice, name)
    before = reg.packument(name).content
    reg.assert_error(_unpublish_version(reg, alice, name, "1.0.0"), 400)
    assert reg.packument(name).content == before


def test_unpublish_whole_package(reg, alice, pkg):
    rev = reg.doc(pkg, write=True)["_rev"]
    reg.assert_ok(reg.client.delete(f"/{pkg}/-rev/{rev}", headers=alice.auth), 200, 201, 204)
    for resp in (reg.packument(pkg), reg.packument(pkg, abbreviated=True), reg.packument(pkg, write=True),
                 reg.dist_tags(pkg), reg.tarball(pkg, "1.0.0")):
        reg.assert_error(resp, 404)
    assert reg.packument(pkg).content == reg.packument(reg.unique("never")).content
    # a second unpublish, and writes to the tombstone, are 404s
    reg.assert_error(reg.client.delete(f"/{pkg}/-rev/{rev}", headers=alice.auth), 404)
    reg.assert_error(tag_put(reg, alice, pkg, "foo", b'"1.0.0"'), 404)
    reg.assert_error(reg.publish(alice, pkg, "1.0.0"), 403)


def test_unpublish_whole_package_rev_must_match(reg, alice, stable):
    before = reg.packument(stable).content
    reg.assert_error(reg.client.delete(f"/{stable}/-rev/999-nope", headers=alice.auth), 409)
    assert reg.packument(stable).content == before


# ---- caching: ETag, 304, Last-Modified ----------------------------------------------------------

def test_etag_and_304(reg, alice, pkg):
    full = reg.packument(pkg)
    etag, last_modified = full.headers["etag"], full.headers["last-modified"]
    assert "no-cache" in full.headers["cache-control"]
    datetime.strptime(last_modified, "%a, %d %b %Y %H:%M:%S GMT")
    not_modified = reg.packument(pkg, headers={"if-none-match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    # the abbreviated document has its own validator
    abbreviated = reg.packument(pkg, abbreviated=True)
    assert abbreviated.headers["etag"] != etag
    assert reg.packument(pkg, abbreviated=True, headers={"if-none-match": abbreviated.headers["etag"]}).status_code == 304
    assert reg.packument(pkg, abbreviated=True, headers={"if-none-match": etag}).status_code == 200
    # ?write=true always answers with the document
    assert reg.packument(pkg, write=True, headers={"if-none-match": etag}).status_code == 200
    # every write changes the validator
    seen = {etag}
    for write in (lambda: reg.publish_ok(alice, pkg, "3.0.0"),
                  lambda: tag_put(reg, alice, pkg, "t1", b'"1.0.0"'),
                  lambda: tag_delete(reg, alice, pkg, "t1"),
                  lambda: _deprecate(reg, alice, pkg, {"1.0.0": "old"})):
        write()
        new = reg.packument(pkg).headers["etag"]
        assert new not in seen
        seen.add(new)
        assert reg.packument(pkg, headers={"if-none-match": etag}).status_code == 200


def test_gzip_when_asked(reg, alice, pkg):
    reg.publish_ok(alice, pkg, "1.2.0", readme="# big readme\n" + "lorem ipsum " * 500)
    plain = reg.client.get("/" + pkg, headers={"accept": "application/json", "accept-encoding": "identity"})
    assert plain.headers.get("content-encoding") in (None, "identity")
    zipped = reg.client.get("/" + pkg, headers={"accept": "application/json", "accept-encoding": "gzip, deflate"})
    assert zipped.headers.get("content-encoding") == "gzip"
    assert zipped.content == plain.content  # the client decodes it
    assert "accept-encoding" in zipped.headers.get("vary", "").lower()
    raw = reg.client.get("/" + pkg, headers={"accept-encoding": "gzip"}).headers
    assert int(raw["content-length"]) < len(plain.content)
    # and the etag of the gzipped answer revalidates
    assert reg.packument(pkg, headers={"if-none-match": zipped.headers["etag"], "accept-encoding": "gzip"}).status_code == 304


def test_gzip_body_is_valid_gzip(reg, alice, pkg):
    reg.publish_ok(alice, pkg, "1.3.0", readme="x" * 4000)
    with reg.client.stream("GET", "/" + pkg, headers={"accept-encoding": "gzip"}) as resp:
        raw = b"".join(resp.iter_raw())
    assert resp.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["name"] == pkg


# ---- tarball URLs follow the Host header --------------------------------------------------------

def test_tarball_urls_follow_the_host_header(reg, alice):
    name = f"@{alice.name}/{reg.unique('host')}"
    reg.publish_ok(alice, name)
    for host in ("registry.example:8443", "127.0.0.1:4873", "[::1]:4873", "npm.internal"):
        for abbreviated in (False, True):
            doc = reg.doc(name, headers={"host": host}, abbreviated=abbreviated)
            assert doc["versions"]["1.0.0"]["dist"]["tarball"] == f"http://{host}/{name}/-/{name.split('/')[1]}-1.0.0.tgz"


@pytest.mark.parametrize("host", ['evil.example/"><script>', "a b", "evil.example\\@x", "x" * 300,
                                  'evil.example","tarball":"http://pwn'])
def test_hostile_host_header_cannot_inject_into_the_document(reg, alice, host):
    name = reg.unique("hostile")
    reg.publish_ok(alice, name)
    resp = reg.client.get("/" + name, headers={"host": host})
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 200:
        doc = resp.json()
        url = doc["versions"]["1.0.0"]["dist"]["tarball"]
        assert url.endswith(f"/{name}/-/{name}-1.0.0.tgz")
        assert host not in url and "<" not in url and '"' not in url and " " not in url


# ---- the documents' fields (protocol §2.3 / §2.4) ---------------------------------------------

def test_full_and_abbreviated_fields(reg, alice):
    name = reg.unique("fields")
    manifest = reg.default_manifest(
        name, "1.0.0", dependencies={"a": "^1.0.0"}, devDependencies={"b": "^2"}, peerDependencies={"c": "*"},
        bin={"fields": "cli.js"}, engines={"node": ">=18"}, os=["linux"], cpu=["x64"],
        scripts={"postinstall": "node cli.js", "test": "true"}, keywords=["k1"], homepage="https://example.test",
        repository={"type": "git", "url": "git+https://example.test/r.git"}, author="A <a@example.test>")
    tarball = reg.make_tarball(manifest, {"cli.js": "#!/usr/bin/env node\n", "README.md": "# Fields\n",
                                          "npm-shrinkwrap.json": "{}"})
    body = reg.publish_body(name, "1.0.0", manifest=manifest, tarball=tarball, readme="# Fields\n")
    reg.assert_ok(reg.put_json("/" + name, body, alice), 201)

    full = reg.doc(name)
    for key in ("_id", "_rev", "name", "dist-tags", "versions", "time", "maintainers", "users", "readme"):
        assert key in full, key
    assert full["_id"] == name and full["dist-tags"] == {"latest": "1.0.0"}
    assert full["description"] == manifest["description"] and full["license"] == "MIT"
    assert full["keywords"] == ["k1"] and full["homepage"] == "https://example.test"
    assert full["readme"] == "# Fields\n"
    assert full["maintainers"] == [{"name": alice.name, "email": alice.email}]
    assert {"created", "modified", "1.0.0"} <= set(full["time"])
    assert "_attachments" not in full and "access" not in full
    v = full["versions"]["1.0.0"]
    assert v["_id"] == f"{name}@1.0.0" and v["name"] == name and v["version"] == "1.0.0"
    assert v["_npmUser"] == {"name": alice.name, "email": alice.email}
    assert v["hasInstallScript"] is True and v["_hasShrinkwrap"] is True
    assert v["scripts"] == manifest["scripts"] and v["devDependencies"] == {"b": "^2"}
    assert v["_nodeVersion"] == "20.20.2" and v["_npmVersion"] == "11.19.1"
    assert "readme" not in v and "_attachments" not in v
    dist = v["dist"]
    assert dist["integrity"] == reg.integrity_of(tarball) and dist["shasum"] == reg.shasum_of(tarball)
    assert dist["tarball"] == f"http://testserver/{name}/-/{name}-1.0.0.tgz"
    assert dist["fileCount"] == 4 and dist["unpackedSize"] > 0

    abbreviated = reg.packument(name, abbreviated=True)
    assert abbreviated.headers["content-type"].startswith("application/vnd.npm.install-v1+json")
    ab = abbreviated.json()
    assert set(ab) == {"name", "modified", "dist-tags", "versions", "time"}
    assert ab["modified"] == full["time"]["modified"] and ab["time"] == full["time"]
    av = ab["versions"]["1.0.0"]
    for key in ("name", "version", "dist", "dependencies", "devDependencies", "peerDependencies", "bin", "engines",
                "os", "cpu", "_hasShrinkwrap", "hasInstallScript", "license"):
        assert av[key] == v[key], key
    for key in ("scripts", "readme", "_npmUser", "maintainers", "keywords", "repository", "_id", "description",
                "homepage", "author", "_nodeVersion"):
        assert key not in av, key


def test_tarball_download_matches_integrity(reg, alice):
    name = f"@{alice.name}/{reg.unique('dl')}"
    reg.publish_ok(alice, name)
    dist = reg.doc(name)["versions"]["1.0.0"]["dist"]
    resp = reg.client.get(dist["tarball"])
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/octet-stream"
    digest = "sha512-" + base64.b64encode(hashlib.sha512(resp.content).digest()).decode()
    assert digest == dist["integrity"] and hashlib.sha1(resp.content).hexdigest() == dist["shasum"]
    assert reg.client.head(dist["tarball"]).status_code == 200
    # the odd client-built form (/@s/n/-/@s/n-1.0.0.tgz) and a wrong short name are not served
    reg.assert_error(reg.client.get(f"/{name}/-/{name}-1.0.0.tgz"), 404)
    reg.assert_error(reg.client.get(f"/{name}/-/other-1.0.0.tgz"), 404)


def test_first_publish_timestamps(reg, alice):
    name = reg.unique("time")
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "1.1.0")
    t = reg.doc(name)["time"]
    assert t["created"] <= t["1.0.0"] <= t["1.1.0"] <= t["modified"]
