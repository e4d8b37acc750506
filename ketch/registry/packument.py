"""Building packuments: a pure function of a package's rows (no I/O).

The documents are serialized once per write and stored; the read path only splices the request's
base URL into the tarball URLs (:func:`splice_base`), so a read never parses JSON.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from ketch.registry.versions import sort_versions

# Stored documents carry tarball URLs as MARKER + "/name/-/file.tgz". The match includes the key, so a
# user's own strings can never be mistaken for it (a quote inside a JSON string is always escaped).
MARKER = "@@KETCH_BASE@@"
_SPLICE_FROM = b'"tarball":"' + MARKER.encode()
_SPLICE_TO = b'"tarball":"'

# Hoisted onto the top level of the full document from the `latest` version, as the npm registry does.
HOISTED = ("description", "keywords", "license", "homepage", "repository", "bugs", "author", "contributors")

# Version fields kept in the abbreviated ("corgi") document.
ABBREVIATED_FIELDS = (
    "name", "version", "deprecated", "dependencies", "optionalDependencies", "devDependencies",
    "bundleDependencies", "bundledDependencies", "peerDependencies", "peerDependenciesMeta", "acceptDependencies",
    "bin", "directories", "engines", "os", "cpu", "libc", "_hasShrinkwrap", "hasInstallScript", "funding",
    "license", "dist",
)


@dataclass
class VersionRow:
    version: str
    manifest: dict
    created: datetime
    deprecated: str | None = None


@dataclass
class PackageRows:
    name: str
    rev: int
    created: datetime
    modified: datetime
    versions: list[VersionRow]
    dist_tags: dict[str, str]
    maintainers: list[dict]
    stars: list[str] = field(default_factory=list)
    readme: str | None = None
    readme_filename: str | None = None


@dataclass(frozen=True)
class Built:
    full: bytes
    abbreviated: bytes
    etag: str
    rev: str


def iso(dt: datetime) -> str:
    return (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}."
            f"{dt.microsecond // 1000:03d}Z")


def tarball_path(name: str, version: str) -> str:
    """The canonical tarball path, scope slash literal: /@s/n/-/n-1.0.0.tgz."""
    return f"/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def build(rows: PackageRows) -> Built:
    ordered = sort_versions(v.version for v in rows.versions)
    by_version = {v.version: v for v in rows.versions}
    versions: dict[str, dict] = {}
    abbreviated_versions: dict[str, dict] = {}
    time: dict[str, str] = {"created": iso(rows.created), "modified": iso(rows.modified)}
    for number in ordered:
        row = by_version[number]
        manifest = dict(row.manifest)
        if row.deprecated:
            manifest["deprecated"] = row.deprecated
        versions[number] = manifest
        abbreviated_versions[number] = {k: manifest[k] for k in ABBREVIATED_FIELDS if k in manifest}
        time[number] = iso(row.created)

    latest = versions.get(rows.dist_tags.get("latest", ""), {})
    rev = f"{rows.rev}-{_digest(rows)}"
    full: dict = {"_id": rows.name, "_rev": rev, "name": rows.name, "dist-tags": rows.dist_tags}
    for key in HOISTED:
        if key in latest:
            full[key] = latest[key]
    full.update({
        "versions": versions,
        "time": time,
        "maintainers": rows.maintainers,
        "users": {name: True for name in sorted(rows.stars)},
        "readme": rows.readme or "",
        "readmeFilename": rows.readme_filename or "",
    })
    abbreviated = {"name": rows.name, "modified": time["modified"], "dist-tags": rows.dist_tags,
                   "versions": abbreviated_versions, "time": time}
    full_bytes = orjson.dumps(full)
    return Built(full=full_bytes, abbreviated=orjson.dumps(abbreviated),
                 etag=hashlib.blake2b(full_bytes, digest_size=12).hexdigest(), rev=rev)


def _digest(rows: PackageRows) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(rows.name.encode())
    h.update(str(rows.rev).encode())
    h.update(iso(rows.modified).encode())
    return h.hexdigest()


def splice_base(document: bytes, base: str) -> bytes:
    """Point the stored document's tarball URLs at ``base`` (scheme://host[:port][/prefix])."""
    return document.replace(_SPLICE_FROM, _SPLICE_TO + base.encode())
