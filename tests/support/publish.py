"""npm 11's publish request body, built in memory (npm-protocol.md §4.1), for tests that publish
over plain HTTP instead of running npm."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile


def make_tarball(manifest: dict, files: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in {"package.json": json.dumps(manifest, indent=2).encode(), **(files or {})}.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 499162500
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(buf.getvalue(), mtime=0)


def publish_body(name: str, version: str, *, manifest: dict | None = None, tag: str = "latest",
                 files: dict[str, bytes] | None = None) -> dict:
    manifest = manifest or {"name": name, "version": version, "description": f"test package {name}",
                            "license": "MIT"}
    tarball = make_tarball(manifest, {"index.js": b"module.exports = 1;\n", **(files or {})})
    short = name.rsplit("/", 1)[-1]
    version_doc = dict(manifest, _id=f"{name}@{version}", readme=f"# {name}\n", readmeFilename="README.md",
                       dist={"integrity": "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode(),
                             "shasum": hashlib.sha1(tarball).hexdigest(),
                             "tarball": f"http://127.0.0.1/{name}/-/{short}-{version}.tgz"})
    return {"_id": name, "name": name, "description": manifest.get("description"), "dist-tags": {tag: version},
            "versions": {version: version_doc}, "access": None,
            "_attachments": {f"{short}-{version}.tgz": {"content_type": "application/octet-stream",
                                                        "data": base64.b64encode(tarball).decode(),
                                                        "length": len(tarball)}}}
