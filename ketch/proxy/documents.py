"""Turning an upstream packument into the documents Ketch stores and serves (pure, no I/O).

The full document is kept as upstream sent it except for tarball URLs, which are rewritten to the
same form local packuments use (``MARKER/name/-/file.tgz``, see ketch.registry.packument), so
clients fetch tarballs through Ketch. The upstream URL and checksums of each tarball are kept
aside: a tarball is fetched from there and verified against them before it is cached.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import orjson

from ketch.registry.packument import ABBREVIATED_FIELDS, MARKER

# A version string that can become part of a file name and URL path as it is.
_SAFE_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,255}$")


class BadUpstreamDocument(ValueError):
    """Upstream answered with something that is not a packument of the name asked for."""


@dataclass(frozen=True)
class Documents:
    full: bytes
    abbreviated: bytes
    files: dict[str, list]  # file name → [upstream URL, integrity, shasum]
    etag: str


def tarball_filename(name: str, version: str) -> str:
    return f"{name.rsplit('/', 1)[-1]}-{version}.tgz"


def rewrite(name: str, raw: bytes) -> Documents:
    """Parse ``raw`` (upstream's full packument of ``name``) into stored documents.

    Raises BadUpstreamDocument for invalid JSON, a different name (cache poisoning), or versions
    and dist-tags that are not objects. Versions whose number is unsafe in a URL, or that carry no
    tarball URL, are dropped rather than served half-working.
    """
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadUpstreamDocument(f"invalid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BadUpstreamDocument("not a JSON object")
    if doc.get("name", name) != name or doc.get("_id", name) != name:
        raise BadUpstreamDocument(f"it describes {doc.get('name') or doc.get('_id')!r}, not {name!r}")
    versions = doc.get("versions", {})
    tags = doc.get("dist-tags", {})
    if not isinstance(versions, dict) or not isinstance(tags, dict):
        raise BadUpstreamDocument('"versions" and "dist-tags" must be objects')
    files: dict[str, list] = {}
    kept: dict[str, dict] = {}
    for number, manifest in versions.items():
        if not (isinstance(manifest, dict) and _SAFE_VERSION.match(number)):
            continue
        if manifest.get("name", name) != name:
            raise BadUpstreamDocument(f"its version {number} is of {manifest.get('name')!r}, not {name!r}")
        dist = manifest.get("dist")
        if not isinstance(dist, dict) or not isinstance(dist.get("tarball"), str):
            continue
        integrity = dist.get("integrity") if isinstance(dist.get("integrity"), str) else ""
        shasum = dist.get("shasum") if isinstance(dist.get("shasum"), str) else ""
        filename = tarball_filename(name, number)
        files[filename] = [dist["tarball"], integrity, shasum]
        manifest = dict(manifest)
        manifest["dist"] = {**dist, "tarball": f"{MARKER}/{name}/-/{filename}"}
        kept[number] = manifest
    doc = dict(doc)
    doc["versions"] = kept
    doc["dist-tags"] = {t: v for t, v in tags.items() if isinstance(v, str) and v in kept}
    full = orjson.dumps(doc)
    time = doc.get("time") if isinstance(doc.get("time"), dict) else {}
    abbreviated = {"name": name, "modified": time.get("modified", ""), "dist-tags": doc["dist-tags"],
                   "versions": {v: {k: m[k] for k in ABBREVIATED_FIELDS if k in m} for v, m in kept.items()}}
    if time:
        abbreviated["time"] = time
    return Documents(full=full, abbreviated=orjson.dumps(abbreviated), files=files,
                     etag=hashlib.blake2b(full, digest_size=12).hexdigest())


class IntegrityMismatch(ValueError):
    pass


def verify(data: bytes, integrity: str, shasum: str) -> str:
    """Check ``data`` against the packument's checksums; returns the SRI string it matched.

    The strongest hash given decides (sha512 > sha256 > sha1 shasum); a tarball with no checksum
    at all is refused, since nothing would then stop a tampered one from being cached.
    """
    import base64

    best = None
    for item in (integrity or "").split():
        algo, _, value = item.partition("-")
        if algo in ("sha512", "sha384", "sha256") and value:
            rank = ("sha256", "sha384", "sha512").index(algo)
            if best is None or rank > best[0]:
                best = (rank, algo, value.split("?")[0])
    if best is not None:
        _, algo, value = best
        actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
        if actual != value:
            raise IntegrityMismatch(f"{algo} is {algo}-{actual}, the packument says {algo}-{value}")
        return f"{algo}-{value}"
    if shasum:
        actual = hashlib.sha1(data).hexdigest()
        if actual != shasum.lower():
            raise IntegrityMismatch(f"sha1 is {actual}, the packument says {shasum}")
        return f"sha1-{base64.b64encode(bytes.fromhex(actual)).decode()}"
    raise IntegrityMismatch("the packument gives no checksum for it")
