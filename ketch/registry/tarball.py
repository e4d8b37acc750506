"""Safe, in-memory inspection of an uploaded npm package tarball (``.tgz``).

Nothing is extracted or written anywhere. The gzip stream is inflated incrementally
with a running cap, so a gzip bomb costs at most ``max_unpacked`` bytes of CPU and a
few hundred KiB of memory. The tar stream is walked block by block: each 512-byte
header is decoded by the standard library (``tarfile.TarInfo.frombuf``, which checks
the header checksum, octal/base-256 numbers, ustar prefixes), while PAX and GNU
long-name records are parsed here with a strict linear parser. ``tarfile``'s own
archive reader is not used because its PAX parsing is quadratic on CPython before
3.11.10/3.12.6 (CVE-2024-6232) and it buffers extension headers of any size.

The archive must look like what ``npm pack`` makes: one top-level directory
(usually ``package/``; clients strip the first path component, whatever its name),
regular files and directories only, with ``package.json`` at its root.
"""

from __future__ import annotations

import codecs
import itertools
import re
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["BadTarball", "TarballInfo", "inspect_tarball"]

KiB = 1024
MiB = 1024 * KiB

MAX_PACKAGE_JSON = 1 * MiB
MAX_README = 1 * MiB
MAX_PATH = 4096  # characters, after PAX/GNU long names are applied
MAX_EXTENSION_HEADER = 64 * KiB  # one PAX or GNU long-name record set
MAX_GZIP_MEMBERS = 64  # npm writes one; each extra member costs a fresh inflater

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_GZIP_MAGIC = b"\x1f\x8b"
_IN_CHUNK = 64 * KiB
_OUT_CHUNK = 256 * KiB

_REGULAR = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE}
_LINKS = {tarfile.SYMTYPE, tarfile.LNKTYPE}
_SPECIAL = {tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE}
_PAX_LOCAL = {tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE}
# NUL, other C0 controls, DEL, lone surrogates (undecodable bytes), backslash.
_ODD_CHARS = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\\]")
_MARKDOWN_EXTS = {".md", ".markdown", ".mdown", ".mkdn", ".mkd", ".mdwn"}


class BadTarball(ValueError):
    """The upload is not an acceptable npm package tarball; ``str(e)`` is for the client."""


@dataclass(frozen=True)
class TarballInfo:
    package_json: dict[str, Any]
    readme: str | None
    readme_filename: str | None
    file_count: int
    unpacked_size: int
    files: frozenset[str]
    has_shrinkwrap: bool


class _Gunzip:
    """Incremental gunzip of in-memory bytes, with a cap on the total output."""

    def __init__(self, data: bytes, cap: int) -> None:
        if data[:2] != _GZIP_MAGIC:
            raise BadTarball("tarball is not gzip-compressed (expected a .tgz made by npm pack)")
        self._data = memoryview(data)
        self._pos = 0  # input bytes handed to the current decompressor
        self._cap = cap
        self._dec = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._buf = bytearray()
        self._eof = False
        self._members = 1
        self.total = 0  # decompressed bytes produced so far

    def _step(self) -> None:
        dec = self._dec
        if dec.eof:
            # Member finished: anything after it must be another gzip member.
            self._pos -= len(dec.unused_data)
            if self._pos >= len(self._data):
                self._eof = True
                return
            if self._data[self._pos : self._pos + 2] != _GZIP_MAGIC:
                raise BadTarball("tarball has trailing data after the gzip stream")
            self._members += 1
            if self._members > MAX_GZIP_MEMBERS:
                raise BadTarball(f"tarball has more than {MAX_GZIP_MEMBERS} gzip members")
            self._dec = dec = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        src: bytes | memoryview = dec.unconsumed_tail
        if not src:
            src = self._data[self._pos : self._pos + _IN_CHUNK]
            self._pos += len(src)
        try:
            out = dec.decompress(src, _OUT_CHUNK)
        except zlib.error as e:
            raise BadTarball(f"tarball gzip data is corrupt ({e})") from None
        if not out and not src and not dec.eof:
            raise BadTarball("tarball gzip data is truncated")
        self.total += len(out)
        if self.total > self._cap:
            raise BadTarball(f"tarball unpacks to more than {self._cap} bytes")
        self._buf += out

    def read(self, n: int) -> bytes:
        """Up to *n* bytes; fewer only at the end of the stream."""
        while len(self._buf) < n and not self._eof:
            self._step()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_exact(self, n: int, what: str) -> bytes:
        out = self.read(n)
        if len(out) != n:
            raise BadTarball(f"tarball is truncated (in {what})")
        return out

    def skip(self, n: int, what: str) -> None:
        while n > 0:
            if not self._buf:
                if self._eof:
                    raise BadTarball(f"tarball is truncated (in {what})")
                self._step()
                continue
            k = min(n, len(self._buf))
            del self._buf[:k]
            n -= k

    def drain_zeros(self) -> None:
        """Consume the rest of the stream; it must be tar zero padding only."""
        while True:
            if self._buf.count(0) != len(self._buf):
                raise BadTarball("tarball has data after the end of the tar archive")
            self._buf.clear()
            if self._eof:
                return
            self._step()


def _padded(size: int) -> int:
    return -size % _BLOCK


def _parse_pax(body: bytes) -> dict[str, str]:
    """Strict linear parse of PAX records: ``"<len> <key>=<value>\\n"`` repeated."""
    records: dict[str, str] = {}
    pos, end = 0, len(body)
    while pos < end:
        space = body.find(b" ", pos, min(end, pos + 12))
        digits = body[pos:space] if space > pos else b""
        if not digits or not digits.isdigit():
            raise BadTarball("tarball has a malformed PAX header")
        stop = pos + int(digits)
        if stop > end or stop <= space + 2 or body[stop - 1] != 0x0A:
            raise BadTarball("tarball has a malformed PAX header")
        key_b, eq, value_b = body[space + 1 : stop - 1].partition(b"=")
        try:
            key, value = key_b.decode("utf-8"), value_b.decode("utf-8")
        except UnicodeDecodeError:
            raise BadTarball("tarball has a PAX header that is not valid UTF-8") from None
        if not eq or not key:
            raise BadTarball("tarball has a malformed PAX header")
        if key in records:
            raise BadTarball(f"tarball has a PAX header that repeats {key!r}")
        if key.startswith("GNU.sparse."):
            raise BadTarball("tarball contains a sparse file")
        records[key] = value
        pos = stop
    return records


def _read_extension(stream: _Gunzip, info: tarfile.TarInfo) -> bytes:
    if info.size > MAX_EXTENSION_HEADER:
        raise BadTarball(f"tarball has an extended header larger than {MAX_EXTENSION_HEADER} bytes")
    body = stream.read_exact(info.size, "an extended header")
    stream.skip(_padded(info.size), "an extended header")
    return body


def _check_path(name: str, is_dir: bool) -> list[str]:
    """Components of a member path, after refusing anything unsafe or ambiguous."""
    if len(name) > MAX_PATH:
        raise BadTarball(f"tarball entry name is longer than {MAX_PATH} characters")
    odd = _ODD_CHARS.search(name)
    if odd is not None or name.startswith("/"):
        shown = name[:200].encode("utf-8", "backslashreplace").decode("utf-8")
        c = odd.group() if odd is not None else "/"
        if c == "\x00":
            raise BadTarball(f"tarball entry name contains a NUL byte: {shown!r}")
        if "\ud800" <= c <= "\udfff":
            raise BadTarball(f"tarball entry name is not valid UTF-8: {shown!r}")
        if c == "\\":
            raise BadTarball(f"tarball entry name contains a backslash: {shown!r}")
        if c == "/":
            raise BadTarball(f"tarball entry has an absolute path: {shown!r}")
        raise BadTarball(f"tarball entry name contains a control character: {shown!r}")
    if is_dir:
        name = name.rstrip("/")
    parts = name.split("/")
    if ":" in parts[0]:
        raise BadTarball(f"tarball entry has an absolute path: {name[:200]!r}")
    for i, part in enumerate(parts):
        if part == "..":
            raise BadTarball(f"tarball entry path contains '..': {name[:200]!r}")
        if part == "" or (part == "." and i > 0):
            raise BadTarball(f"tarball entry path is not normalized: {name[:200]!r}")
    return parts


def _readme_rank(rel: str) -> int | None:
    """Lower is better; ``None`` if *rel* is not a README at the package root."""
    if "/" in rel:
        return None
    lower = rel.lower()
    if lower == "readme.md":
        return 0
    if lower == "readme":
        return 2
    if lower.startswith("readme."):
        return 1 if lower[len("readme") :] in _MARKDOWN_EXTS else 3
    return None


def _parse_package_json(raw: bytes) -> dict[str, Any]:
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadTarball("package.json is not valid UTF-8") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadTarball(f"package.json is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BadTarball("package.json must contain a JSON object")
    return doc


def _decode_readme(raw: bytes) -> str:
    # Incremental decode drops a multi-byte character cut in half by the size cap.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(raw, final=False)
    return text.removeprefix("\ufeff")


def inspect_tarball(data: bytes, *, max_unpacked: int = 256 * MiB, max_files: int = 100_000) -> TarballInfo:
    """Check an npm package tarball and pull out what the registry needs.

    *max_unpacked* caps the decompressed size of the whole stream; *max_files* caps the
    number of tar entries (files and directories). Raises :class:`BadTarball` only.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BadTarball("tarball must be bytes")
    stream = _Gunzip(bytes(data) if not isinstance(data, bytes) else data, max_unpacked)

    root: str | None = None
    files: set[str] = set()
    dirs: list[str] = []
    entries = 0
    unpacked = 0
    package_json: dict[str, Any] | None = None
    readme: tuple[int, str, bytes] | None = None  # (rank, filename, raw bytes)
    long_name: str | None = None
    pax: dict[str, str] | None = None
    first = True

    while True:
        header = stream.read(_BLOCK)
        if not header or header == _ZERO_BLOCK:
            if long_name is not None or pax is not None:
                raise BadTarball("tarball ends after an extended header")
            break
        if len(header) < _BLOCK:
            if first:
                raise BadTarball("tarball does not contain a tar archive")
            raise BadTarball("tarball is truncated (in a tar header)")
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.HeaderError as e:
            if first:
                raise BadTarball("tarball does not contain a tar archive") from None
            raise BadTarball(f"tarball has a corrupt tar header ({e})") from None
        first = False
        if info.size < 0:
            raise BadTarball("tarball has a tar header with a negative size")
        kind = info.type

        if kind in _PAX_LOCAL:
            if pax is not None:
                raise BadTarball("tarball has two PAX headers for one entry")
            pax = _parse_pax(_read_extension(stream, info))
            continue
        if kind == tarfile.XGLTYPE:
            overrides = {"path", "size", "linkpath"} & _parse_pax(_read_extension(stream, info)).keys()
            if overrides:
                raise BadTarball(f"tarball has a global PAX header setting {sorted(overrides)}")
            continue
        if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            body = _read_extension(stream, info)
            if kind == tarfile.GNUTYPE_LONGNAME:
                if long_name is not None:
                    raise BadTarball("tarball has two long-name headers for one entry")
                long_name = body.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
            continue

        # An actual entry; apply pending extended headers.
        name = info.name
        size = info.size
        if long_name is not None:
            name = long_name
        if pax is not None:
            if "path" in pax:
                if long_name is not None and pax["path"] != long_name:
                    raise BadTarball("tarball entry has conflicting PAX and GNU long names")
                name = pax["path"]
            if "size" in pax:
                raw_size = pax["size"]
                if not raw_size.isdigit() or not raw_size.isascii() or len(raw_size) > 20:
                    raise BadTarball("tarball has a PAX header with an invalid size")
                size = int(raw_size)
        long_name = pax = None

        entries += 1
        if entries > max_files:
            raise BadTarball(f"tarball has more than {max_files} entries")
        if size > max_unpacked:
            raise BadTarball(f"tarball entry is larger than {max_unpacked} bytes")

        if kind in _LINKS:
            raise BadTarball(f"tarball contains a link, which is not allowed: {name[:200]!r}")
        if kind in _SPECIAL:
            raise BadTarball(f"tarball contains a device or FIFO entry: {name[:200]!r}")
        if kind == tarfile.GNUTYPE_SPARSE:
            raise BadTarball("tarball contains a sparse file")
        is_dir = kind == tarfile.DIRTYPE
        if not is_dir and kind not in _REGULAR:
            raise BadTarball(f"tarball contains an unsupported entry type {kind!r}")

        parts = _check_path(name, is_dir)
        if root is None:
            root = parts[0]
        elif parts[0] != root:
            raise BadTarball(
                f"tarball must have a single top-level directory, found {root!r} and {parts[0]!r}"
            )
        rel = "/".join(parts[1:])

        if is_dir:
            if size:
                raise BadTarball(f"tarball directory entry has data: {name[:200]!r}")
            if rel:
                dirs.append(rel)
            continue

        if not rel:
            raise BadTarball(f"tarball entry is outside the package directory: {name[:200]!r}")
        if rel in files:
            raise BadTarball(f"tarball contains {rel!r} more than once")
        files.add(rel)
        unpacked += size

        consumed = 0
        if rel == "package.json":
            if size > MAX_PACKAGE_JSON:
                raise BadTarball(f"package.json is larger than {MAX_PACKAGE_JSON} bytes")
            package_json = _parse_package_json(stream.read_exact(size, "package.json"))
            consumed = size
        else:
            rank = _readme_rank(rel)
            if rank is not None and (readme is None or (rank, rel) < readme[:2]):
                take = min(size, MAX_README)
                readme = (rank, rel, stream.read_exact(take, rel))
                consumed = take
        stream.skip(size - consumed + _padded(size), rel)

    stream.drain_zeros()

    if root is None:
        raise BadTarball("tarball is empty")
    if package_json is None:
        raise BadTarball(f"tarball has no package.json in its top-level directory {root + '/'!r}")
    _check_no_file_used_as_dir(files, dirs)

    return TarballInfo(
        package_json=package_json,
        readme=_decode_readme(readme[2]) if readme else None,
        readme_filename=readme[1] if readme else None,
        file_count=len(files),
        unpacked_size=unpacked,
        files=frozenset(files),
        has_shrinkwrap="npm-shrinkwrap.json" in files,
    )


def _check_no_file_used_as_dir(files: set[str], dirs: list[str]) -> None:
    """Refuse ``lib`` (a file) next to ``lib/x.js`` or a ``lib/`` directory entry.

    Sorted by path components, every path is immediately followed by its own
    descendants, so checking neighbours finds every such clash in O(n log n).
    """
    paths = [(tuple(p.split("/")), True) for p in files]
    paths += [(tuple(p.split("/")), False) for p in set(dirs)]
    paths.sort()
    for (a, a_is_file), (b, _) in itertools.pairwise(paths):
        if a == b or (a_is_file and b[: len(a)] == a):
            raise BadTarball(f"tarball uses {'/'.join(a)!r} both as a file and as a directory")


# Public names of the reading helpers, for the website's code browser (ketch/web/code.py).
BLOCK = _BLOCK
ZERO_BLOCK = _ZERO_BLOCK
PAX_LOCAL = _PAX_LOCAL
Gunzip = _Gunzip
padded = _padded
parse_pax = _parse_pax
