"""npm 11's publish request body, built in memory (npm-protocol.md §4.1), for tests that publish
over plain HTTP instead of running npm."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

# What npm 11 on node 20 adds to each version document.
NPM_VERSIONS = {"_nodeVersion": "20.20.2", "_npmVersion": "11.19.1"}


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def shasum_of(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def make_tarball(manifest: dict | bytes | None, files: dict[str, bytes | str] | None = None,
                 *, prefix: str = "package") -> bytes:
    """A .tgz as `npm pack` makes it: one top-level ``package/`` directory, ``package.json`` first
    (``manifest`` as indented JSON, or the given bytes; none when None), then ``files``."""
    entries: dict[str, bytes | str] = {}
    if manifest is not None:
        entries["package.json"] = manifest if isinstance(manifest, bytes) else json.dumps(manifest, indent=2)
    entries.update(files or {})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in entries.items():
            raw = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{prefix}/{path}")
            info.size = len(raw)
            info.mode = 0o644
            info.mtime = 499162500  # npm pack's fixed 1985-10-26 date
            tar.addfile(info, io.BytesIO(raw))
    return gzip.compress(buf.getvalue(), mtime=0)


def publish_body(name: str, version: str, *, manifest: dict | None = None, tag: str = "latest",
                 files: dict[str, bytes | str] | None = None, tarball: bytes | None = None,
                 access: str | None = None, readme: str | None = None,
                 index_js: bytes | str | None = b"module.exports = 1;\n", extra: dict[str, Any] | None = None,
                 tarball_url: str | None = None) -> dict:
    """The body `npm publish` sends for ``name@version``.

    ``manifest`` is the package.json (default: a minimal one); the tarball is built from it, an
    ``index.js`` (``index_js``; None for none) and ``files``, unless ``tarball`` is given. ``extra``
    goes into the version document (e.g. :data:`NPM_VERSIONS`); ``tarball_url`` replaces the
    ``dist.tarball`` npm computes for a registry on 127.0.0.1.
    """
    if manifest is None:
        manifest = {"name": name, "version": version, "description": f"test package {name}", "license": "MIT"}
    manifest = copy.deepcopy(manifest)
    if tarball is None:
        tarball = make_tarball(manifest, {**({"index.js": index_js} if index_js is not None else {}), **(files or {})})
    short = name.rsplit("/", 1)[-1]
    version_doc = dict(manifest, readme=readme if readme is not None else f"# {name}\n", readmeFilename="README.md",
                       _id=f"{name}@{version}", **(extra or {}))
    version_doc["dist"] = {"integrity": integrity_of(tarball), "shasum": shasum_of(tarball),
                           "tarball": tarball_url or f"http://127.0.0.1/{name}/-/{short}-{version}.tgz"}
    body: dict[str, Any] = {"_id": name, "name": name}
    if manifest.get("description"):
        body["description"] = manifest["description"]
    body.update({"dist-tags": {tag: version}, "versions": {version: version_doc}, "access": access,
                 "_attachments": {f"{name}-{version}.tgz": {"content_type": "application/octet-stream",
                                                            "data": base64.b64encode(tarball).decode(),
                                                            "length": len(tarball)}}})
    return body
