"""The Code tab: the files inside a stored tarball, listed and shown without extracting anything.

The stored ``.tgz`` is read from the blob store into memory and walked with the streaming gunzip
of :mod:`ketch.registry.tarball` (a running cap on inflated bytes; tar headers decoded by the
standard library, PAX records by that module's strict parser). Nothing touches the disk.

Caps: a listing stops after :data:`MAX_ENTRIES` files or :data:`MAX_LIST_BYTES` inflated bytes
(and says it is incomplete); a file is shown up to :data:`MAX_VIEW` bytes and highlighted up to
:data:`MAX_HIGHLIGHT`. Listings are cached per blob key (blobs are content-addressed, so a key's
bytes never change).
"""

from __future__ import annotations

import tarfile
from collections import OrderedDict
from dataclasses import dataclass, field

from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from ketch.registry.tarball import BLOCK, PAX_LOCAL, ZERO_BLOCK, BadTarball, Gunzip, padded, parse_pax

KiB = 1024
MiB = 1024 * KiB
MAX_ENTRIES = 10_000
MAX_LIST_BYTES = 64 * MiB  # inflated bytes walked to list or read a tarball
MAX_VIEW = 1 * MiB
MAX_HIGHLIGHT = 256 * KiB
LISTING_CACHE = 64
_REGULAR = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE}
_FORMATTER = HtmlFormatter(nowrap=True)


@dataclass
class Listing:
    files: dict[str, int] = field(default_factory=dict)  # path inside the package → size in bytes
    truncated: bool = False

    @property
    def total_size(self) -> int:
        return sum(self.files.values())

    def directory(self, path: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]] | None:
        """(sub-directories with file counts, files with sizes) directly inside ``path``; None if
        ``path`` is not a directory of the package."""
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        dirs: dict[str, int] = {}
        files: list[tuple[str, int]] = []
        for name, size in self.files.items():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            head, sep, _ = rest.partition("/")
            if sep:
                dirs[head] = dirs.get(head, 0) + 1
            else:
                files.append((rest, size))
        if prefix and not dirs and not files:
            return None
        return sorted(dirs.items(), key=lambda d: d[0].lower()), sorted(files, key=lambda f: f[0].lower())


@dataclass
class FileView:
    path: str
    size: int
    binary: bool = False
    too_large: bool = False
    lines: list[Markup] = field(default_factory=list)
    text: str = ""  # the decoded text (for the raw view), capped at MAX_VIEW
    highlighted: bool = False


def _walk(data: bytes, want: str | None = None, max_entries: int = MAX_ENTRIES):
    """Yield (path, size, reader) for each regular file; ``reader(n)`` reads up to n bytes of the
    file's data (only while that entry is current). Paths are relative to the package folder."""
    stream = Gunzip(data, MAX_LIST_BYTES)
    pax: dict[str, str] | None = None
    long_name: str | None = None
    entries = 0
    while True:
        header = stream.read(BLOCK)
        if len(header) < BLOCK or header == ZERO_BLOCK:
            return
        try:
            info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            return
        kind, size = info.type, info.size
        if kind in PAX_LOCAL or kind == tarfile.XGLTYPE or kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            body = stream.read_exact(size, "an extended header")
            stream.skip(padded(size), "an extended header")
            if kind in PAX_LOCAL:
                pax = parse_pax(body)
            elif kind == tarfile.GNUTYPE_LONGNAME:
                long_name = body.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")
            continue
        name = long_name or info.name
        if pax:
            name = pax.get("path", name)
            if pax.get("size", "").isdigit():
                size = int(pax["size"])
        pax = long_name = None
        consumed = [0]
        if kind in _REGULAR:
            entries += 1
            if entries > max_entries:
                raise _TooMany()
            rel = name.split("/", 1)[1] if "/" in name else ""
            if rel:
                def reader(n: int, _size=size) -> bytes:
                    take = min(n, _size - consumed[0])
                    out = stream.read_exact(take, rel) if take > 0 else b""
                    consumed[0] += len(out)
                    return out
                yield rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), size, reader
        stream.skip(size - consumed[0] + padded(size), name)


class _TooMany(Exception):
    pass


def list_files(data: bytes) -> Listing:
    listing = Listing()
    try:
        for path, size, _ in _walk(data):
            listing.files[path] = size
    except (_TooMany, BadTarball):
        listing.truncated = True
    return listing


def read_file(data: bytes, path: str, cap: int = MAX_VIEW) -> tuple[int, bytes] | None:
    """(size, first ``cap`` bytes) of the file at ``path``, or None when there is no such file."""
    try:
        for name, size, reader in _walk(data, max_entries=MAX_ENTRIES * 10):
            if name == path:
                return size, reader(cap)
    except (_TooMany, BadTarball):
        return None
    return None


def looks_binary(head: bytes) -> bool:
    sample = head[:8192]
    if b"\x00" in sample:
        return True
    text = sample.decode("utf-8", "replace")
    odd = sum(1 for c in text if c == "\ufffd" or (ord(c) < 32 and c not in "\t\n\r\f\v\x1b"))
    return odd > max(8, len(text) // 20)


def view_file(path: str, size: int, head: bytes) -> FileView:
    view = FileView(path=path, size=size)
    if looks_binary(head):
        view.binary = True
        return view
    if size > MAX_VIEW:
        view.too_large = True
        return view
    text = head.decode("utf-8", "replace").removeprefix("\ufeff")
    view.text = text
    if len(text) <= MAX_HIGHLIGHT:
        try:
            lexer = get_lexer_for_filename(path.rsplit("/", 1)[-1], stripnl=False, stripall=False)
        except ClassNotFound:
            lexer = TextLexer(stripnl=False)
        html = highlight(text, lexer, _FORMATTER)
        view.lines = [Markup(line) for line in html.split("\n")]
        view.highlighted = True
    else:
        view.lines = [escape(line) for line in text.split("\n")]
    if view.lines and not str(view.lines[-1]):
        view.lines.pop()
    return view


class ListingCache:
    def __init__(self, entries: int = LISTING_CACHE):
        self.entries = entries
        self.items: OrderedDict[str, Listing] = OrderedDict()

    def get(self, key: str) -> Listing | None:
        hit = self.items.get(key)
        if hit is not None:
            self.items.move_to_end(key)
        return hit

    def put(self, key: str, listing: Listing) -> None:
        self.items[key] = listing
        if len(self.items) > self.entries:
            self.items.popitem(last=False)
