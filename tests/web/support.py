"""Helpers shared by the website tests: tarballs and publish bodies as npm 11 sends them."""

from __future__ import annotations

import uuid

from tests.support.publish import NPM_VERSIONS
from tests.support.publish import make_tarball as shared_make_tarball
from tests.support.publish import publish_body as shared_publish_body

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def unique(prefix: str = "w") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_tarball(files: dict[str, bytes | str], prefix: str = "package") -> bytes:
    """A .tgz of exactly ``files`` (package.json included, if wanted) under ``prefix/``."""
    return shared_make_tarball(None, files, prefix=prefix)


def publish_body(name: str, version: str, manifest: dict | None = None, *, readme: str | None = None,
                 files: dict[str, bytes | str] | None = None, access: str | None = None, tag: str = "latest") -> dict:
    """npm 11's body; the tarball holds package.json, README.md (``readme``), index.js and ``files``."""
    manifest = dict(manifest or {})
    manifest.setdefault("name", name)
    manifest.setdefault("version", version)
    manifest.setdefault("description", f"test package {name}")
    manifest.setdefault("license", "MIT")
    readme_text = readme if readme is not None else f"# {name}\n"
    content = {"README.md": readme_text, "index.js": "module.exports = 42;\n", **(files or {})}
    return shared_publish_body(
        name, version, manifest=manifest, readme=readme_text, files=content, index_js=None, access=access, tag=tag,
        extra=NPM_VERSIONS, tarball_url=f"http://localhost/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz")


def signup_body(name: str, password: str) -> dict:
    return {"_id": f"org.couchdb.user:{name}", "name": name, "password": password, "email": f"{name}@example.test",
            "type": "user", "roles": [], "date": "2026-01-01T00:00:00.000Z"}
