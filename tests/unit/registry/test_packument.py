from datetime import datetime, timezone

import orjson

from ketch.registry import packument
from ketch.registry.packument import MARKER, PackageRows, VersionRow, build, splice_base

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
T1 = datetime(2026, 2, 1, tzinfo=timezone.utc)


def _manifest(version, **extra):
    return {"name": "@s/p", "version": version, "_id": f"@s/p@{version}",
            "dist": {"integrity": "sha512-x", "shasum": "ab", "tarball": MARKER + packument.tarball_path("@s/p", version)},
            "description": f"v{version}", "scripts": {"postinstall": "x"}, "hasInstallScript": True, **extra}


def _rows(**kw):
    base = dict(name="@s/p", rev=3, created=T0, modified=T1,
                versions=[VersionRow("1.10.0", _manifest("1.10.0"), T1, deprecated="old"),
                          VersionRow("1.2.0", _manifest("1.2.0"), T0)],
                dist_tags={"latest": "1.10.0", "beta": "1.2.0"},
                maintainers=[{"name": "alice", "email": "a@x"}], stars=["bob"], readme="# hi", readme_filename="README.md")
    base.update(kw)
    return PackageRows(**base)


class TestBuild:
    def test_full_document_fields(self):
        doc = orjson.loads(build(_rows()).full)
        assert doc["_id"] == doc["name"] == "@s/p"
        assert doc["_rev"].startswith("3-")
        assert list(doc["versions"]) == ["1.2.0", "1.10.0"]  # semver order, not string order
        assert doc["versions"]["1.10.0"]["deprecated"] == "old"
        assert "deprecated" not in doc["versions"]["1.2.0"]
        assert doc["time"] == {"created": "2026-01-02T03:04:05.678Z", "modified": "2026-02-01T00:00:00.000Z",
                               "1.2.0": "2026-01-02T03:04:05.678Z", "1.10.0": "2026-02-01T00:00:00.000Z"}
        assert doc["users"] == {"bob": True}
        assert doc["description"] == "v1.10.0"  # hoisted from latest
        assert doc["readme"] == "# hi"

    def test_abbreviated_document_keeps_install_fields_only(self):
        doc = orjson.loads(build(_rows()).abbreviated)
        assert set(doc) == {"name", "modified", "dist-tags", "versions", "time"}
        v = doc["versions"]["1.10.0"]
        assert v["hasInstallScript"] is True and v["deprecated"] == "old"
        assert "description" not in v and "scripts" not in v

    def test_etag_changes_with_content(self):
        assert build(_rows()).etag != build(_rows(dist_tags={"latest": "1.2.0"})).etag
        assert build(_rows()).etag == build(_rows()).etag


class TestSplice:
    def test_tarball_urls_follow_base(self):
        full = splice_base(build(_rows()).full, "http://h:1/prefix")
        doc = orjson.loads(full)
        assert doc["versions"]["1.2.0"]["dist"]["tarball"] == "http://h:1/prefix/@s/p/-/p-1.2.0.tgz"

    def test_user_strings_containing_the_marker_are_untouched(self):
        rows = _rows(versions=[VersionRow("1.0.0", _manifest("1.0.0", description=MARKER + "x"), T0)],
                     dist_tags={"latest": "1.0.0"})
        doc = orjson.loads(splice_base(build(rows).full, "http://h"))
        assert doc["description"] == MARKER + "x"
