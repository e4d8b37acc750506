"""Decoding and checking an npm publish body (pure: bytes and dicts in, a PublishCommand or BadPublish out).

Pipeline: :func:`parse_publish` (shape, attachment, integrity) → :func:`check_contents` (tarball
safety, manifest confusion) → ``services.publish`` (one transaction).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from ketch.registry import manifest_check, names, tarball, versions
from ketch.registry.packument import MARKER, tarball_path

# Keys a client may not set on a stored version: the registry computes them or they are transport-only.
_STRIPPED = ("_attachments", "_rev", "_revisions", "_npmOperationalInternal", "readme", "readmeFilename",
             "maintainers", "_npmUser", "_hasShrinkwrap", "hasInstallScript", "deprecated", "access",
             "publishConfig_access")
_INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")
MAX_TAG_LENGTH = 128
# npm refuses tags that node-semver parses as a range ("1.x", "^2", "*", "x"); so do we.
_RANGE_LIKE = re.compile(r"^\s*(?:[<>=~^]|v?\d|[xX*](?:\.|\s|$)|$)")


class BadPublish(ValueError):
    """A publish request that must be refused with 400; the message is shown by npm."""


@dataclass
class PublishCommand:
    name: str
    version: str
    manifest: dict          # the version object as the client sent it
    tags: list[str]         # dist-tags to point at this version
    access: str | None      # None | "public" | "restricted"
    data: bytes             # the tarball
    sha512_hex: str
    integrity: str
    shasum: str
    info: tarball.TarballInfo | None = None
    blob_key: str = ""


def parse_publish(url_name: str, body: dict) -> PublishCommand:
    name = body.get("name")
    if name != url_name or body.get("_id", name) != name:
        raise BadPublish("The package name in the URL does not match the name in the body.")
    vers = body.get("versions")
    if not isinstance(vers, dict) or len(vers) != 1:
        raise BadPublish("A publish must contain exactly one version.")
    ((version, manifest),) = vers.items()
    if not isinstance(manifest, dict):
        raise BadPublish("The version manifest must be an object.")
    try:
        versions.parse_version(version)
    except versions.InvalidVersion as e:
        raise BadPublish(str(e)) from None
    if manifest.get("name") != name or manifest.get("version") != version:
        raise BadPublish("The name and version inside the manifest must match the package being published.")
    _check_sizes(manifest)

    attachments = body.get("_attachments")
    if not isinstance(attachments, dict):
        raise BadPublish("No tarball attached: the publish body has no _attachments.")
    tarballs = {k: v for k, v in attachments.items() if not str(k).endswith(".sigstore")}
    expected = f"{name}-{version}.tgz"
    if list(tarballs) != [expected]:
        raise BadPublish(f"Expected exactly one attachment named {expected!r}.")
    data = _decode_attachment(tarballs[expected])

    sha512 = hashlib.sha512(data)
    sha1 = hashlib.sha1(data).hexdigest()
    integrity = "sha512-" + base64.b64encode(sha512.digest()).decode()
    _verify_integrity(manifest.get("dist"), integrity, sha1)

    tags = body.get("dist-tags") or {"latest": version}
    if not isinstance(tags, dict):
        raise BadPublish("dist-tags must be an object.")
    for tag, target in tags.items():
        if target != version:
            raise BadPublish(f'dist-tag "{tag}" must point at the version being published ({version}).')
        check_tag(tag)
    access = body.get("access")
    if access not in (None, "public", "restricted"):
        raise BadPublish('access must be "public" or "restricted".')
    return PublishCommand(name=name, version=version, manifest=manifest, tags=list(tags), access=access, data=data,
                          sha512_hex=sha512.hexdigest(), integrity=integrity, shasum=sha1)


MAX_DEPENDENCIES = 10_000
_DEPENDENCY_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies",
                      "peerDependenciesMeta", "bundleDependencies", "bundledDependencies", "scripts", "bin")


def _check_sizes(manifest: dict) -> None:
    """Refuse absurd dependency maps up front (cheap len() checks), before any deeper inspection."""
    total = 0
    for key in _DEPENDENCY_FIELDS:
        value = manifest.get(key)
        if isinstance(value, (dict, list)):
            total += len(value)
    if total > MAX_DEPENDENCIES:
        raise BadPublish(f"Too many dependencies, scripts or bins ({total}); the limit is {MAX_DEPENDENCIES}.")


def _decode_attachment(att: object) -> bytes:
    if not isinstance(att, dict) or not isinstance(att.get("data"), str) or not att["data"]:
        raise BadPublish("The tarball attachment has no data.")
    try:
        data = base64.b64decode(att["data"], validate=True)
    except (binascii.Error, ValueError):
        raise BadPublish("The tarball attachment is not valid base64.") from None
    if not data:
        raise BadPublish("The tarball attachment is empty.")
    length = att.get("length")
    if length is not None and length != len(data):
        raise BadPublish("The tarball attachment's length does not match its data.")
    return data


def _verify_integrity(dist: object, integrity: str, sha1: str) -> None:
    if not isinstance(dist, dict):
        raise BadPublish("The version manifest has no dist information.")
    claimed = dist.get("integrity")
    shasum = dist.get("shasum")
    if claimed is None and shasum is None:
        raise BadPublish("dist.integrity or dist.shasum is required.")
    if claimed is not None:
        if not isinstance(claimed, str):
            raise BadPublish("dist.integrity does not match the tarball.")
        digests = {part.split("-", 1)[0]: part.split("-", 1)[1].split("?")[0]
                   for part in claimed.split() if "-" in part}
        if "sha512" in digests:
            if digests["sha512"] != integrity.split("-", 1)[1]:
                raise BadPublish("dist.integrity does not match the tarball.")
        elif "sha1" in digests:
            if digests["sha1"] != base64.b64encode(bytes.fromhex(sha1)).decode():
                raise BadPublish("dist.integrity does not match the tarball.")
        else:
            raise BadPublish("dist.integrity must contain a sha512 digest.")
    if shasum is not None and (not isinstance(shasum, str) or shasum.lower() != sha1):
        raise BadPublish("dist.shasum does not match the tarball.")


def check_tag(tag: object) -> None:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH or not tag.isascii():
        raise BadPublish("Invalid dist-tag name.")
    if any(c in tag for c in "/%?#\\ \"'<>") or tag.startswith(".") or not tag.isprintable():
        raise BadPublish(f"Invalid dist-tag name: {tag!r}.")
    if _RANGE_LIKE.match(tag):
        raise BadPublish(f'Tag name "{tag}" must not be a valid SemVer range.')


def check_contents(cmd: PublishCommand) -> None:
    """Open the tarball and refuse it when unsafe or when its package.json disagrees with the manifest."""
    try:
        names.validate_name(cmd.name)
    except names.InvalidName as e:
        raise BadPublish(str(e)) from None
    try:
        info = tarball.inspect_tarball(cmd.data)
    except tarball.BadTarball as e:
        raise BadPublish(f"Invalid tarball: {e}") from None
    mismatched = manifest_check.manifest_mismatches(cmd.manifest, info.package_json, info.files)
    if mismatched:
        raise BadPublish("The manifest does not match the package.json inside the tarball; "
                         f"mismatched fields: {', '.join(mismatched)}.")
    cmd.info = info


def stored_manifest(cmd: PublishCommand, publisher: dict, maintainers: list[dict]) -> dict:
    """The version object as the registry serves it."""
    info = cmd.info
    manifest = {k: v for k, v in cmd.manifest.items() if k not in _STRIPPED}
    manifest["_id"] = f"{cmd.name}@{cmd.version}"
    scripts = manifest.get("scripts")
    if isinstance(scripts, dict) and any(s in scripts for s in _INSTALL_SCRIPTS):
        manifest["hasInstallScript"] = True
    elif info and any("/" not in f and f.endswith(".gyp") for f in info.files):
        manifest["hasInstallScript"] = True  # npm runs node-gyp for a root .gyp file even without a script
    manifest["_hasShrinkwrap"] = bool(info and info.has_shrinkwrap)
    manifest["_npmUser"] = publisher
    manifest["maintainers"] = maintainers
    dist = {"integrity": cmd.integrity, "shasum": cmd.shasum, "tarball": MARKER + tarball_path(cmd.name, cmd.version)}
    if info:
        dist["fileCount"] = info.file_count
        dist["unpackedSize"] = info.unpacked_size
    manifest["dist"] = dist
    return manifest


def readme_of(cmd: PublishCommand) -> tuple[str | None, str | None]:
    """The README text: from the manifest when the client sent one, else from the tarball."""
    text = cmd.manifest.get("readme")
    if isinstance(text, str) and text and text != "ERROR: No README data found!":
        filename = cmd.manifest.get("readmeFilename")
        return text, filename if isinstance(filename, str) else None
    if cmd.info and cmd.info.readme:
        return cmd.info.readme, cmd.info.readme_filename
    return None, None
