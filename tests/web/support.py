"""Helpers shared by the website tests: tarballs and publish bodies as npm 11 sends them."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import uuid
from typing import Any

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def unique(prefix: str = "w") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_tarball(files: dict[str, bytes | str], prefix: str = "package") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            raw = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{prefix}/{path}")
            info.size = len(raw)
            info.mode = 0o644
            info.mtime = 499162500
            tar.addfile(info, io.BytesIO(raw))
    return gzip.compress(buf.getvalue(), mtime=0)


def publish_body(name: str, version: str, manifest: dict | None = None, *, readme: str | None = None,
                 files: dict[str, bytes | str] | None = None, access: str | None = None, tag: str = "latest") -> dict:
    manifest = dict(manifest or {})
    manifest.setdefault("name", name)
    manifest.setdefault("version", version)
    manifest.setdefault("description", f"test package {name}")
    manifest.setdefault("license", "MIT")
    readme_text = readme if readme is not None else f"# {name}\n"
    content: dict[str, bytes | str] = {"package.json": json.dumps(manifest, indent=2), "README.md": readme_text,
                                       "index.js": "module.exports = 42;\n"}
    content.update(files or {})
    tarball = make_tarball(content)
    doc = dict(manifest)
    doc.update({
        "readme": readme_text, "readmeFilename": "README.md", "_id": f"{name}@{version}",
        "_nodeVersion": "20.20.2", "_npmVersion": "11.19.1",
        "dist": {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode(),
                 "shasum": hashlib.sha1(tarball).hexdigest(),
                 "tarball": f"http://localhost/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"},
    })
    body: dict[str, Any] = {"_id": name, "name": name, "dist-tags": {tag: version}, "versions": {version: doc},
                            "access": access, "_attachments": {
                                f"{name}-{version}.tgz": {
                                    "content_type": "application/octet-stream",
                                    "data": base64.b64encode(tarball).decode(), "length": len(tarball)}}}
    if manifest.get("description"):
        body["description"] = manifest["description"]
    return body


def signup_body(name: str, password: str) -> dict:
    return {"_id": f"org.couchdb.user:{name}", "name": name, "password": password, "email": f"{name}@example.test",
            "type": "user", "roles": [], "date": "2026-01-01T00:00:00.000Z"}
