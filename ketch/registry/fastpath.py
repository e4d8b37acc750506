"""The hot path: public packument and tarball GETs served from an in-process cache, as plain ASGI.

Every hit is first proven fresh (see ``ketch.db.changes``): in embedded mode by comparing the
package's shared change counter, on PostgreSQL by a batched ETag query, so a publish acknowledged
by any process or node is visible to the very next request everywhere. Anything unusual — a
private package, ``?write=true``, HEAD, writes, ``/-/`` routes — goes to the full Starlette app.
"""

from __future__ import annotations

import gzip
import math
import time
from collections import OrderedDict
from email.utils import format_datetime

import orjson
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ketch.blobs import BlobStoreUnavailable
from ketch.blobs.cache import BlobCache
from ketch.context import safe_host
from ketch.db.changes import BatchedEtags
from ketch.ops.metrics import PACKUMENT_CACHE, TALLY
from ketch.proxy.models import CachedPackument, CachedTarball
from ketch.registry.models import Package, Packument, Version
from ketch.registry.packument import splice_base
from ketch.stats.counter import count as count_download

ABBREVIATED_TYPE = b"application/vnd.npm.install-v1+json"
_GZIP_MIN = 1400
NOT_FOUND = b'{"error":"Not found","message":"Not found"}'
_JSON = b"application/json"
CACHE_HITS = PACKUMENT_CACHE.labels("hit")
CACHE_MISSES = PACKUMENT_CACHE.labels("miss")


class Entry:
    __slots__ = ("token", "etag", "modified", "access", "full", "abbreviated", "tarballs", "sizes", "rendered",
                 "size", "hidden", "absent", "origin", "expires", "files", "warning")

    def __init__(self, token, etag=None, modified=b"", access="public", full=b"", abbreviated=b"", tarballs=None,
                 sizes=None, *, absent=False, origin=None, expires=math.inf, files=None):
        self.token = token
        self.etag = etag
        self.modified = modified
        self.access = access
        self.full = full
        self.abbreviated = abbreviated
        self.tarballs = tarballs or {}  # file name -> blob key
        self.sizes = sizes or {}  # file name -> bytes
        self.rendered: dict = {}
        self.size = len(full) + len(abbreviated) + 200
        # Missing or private: what anonymous callers cannot tell apart (one flag, the same test for both).
        self.hidden = etag is None or access != "public"
        # No local package row at all (never published here): the only names an uplink may answer for.
        self.absent = absent
        # Documents cached from an uplink (its name) or copied by `ketch mirror` ("mirror:<source>"),
        # served until ``expires`` (time.time()); None for the registry's own packages.
        self.origin = origin
        self.expires = expires
        self.files = files or {}  # cached upstream documents: file name -> [upstream URL, integrity, shasum]
        self.warning: tuple[str, str] | None = None  # (Warning, X-Ketch-Upstream) while served stale


class PackumentCache:
    """Packuments and tarball keys of recently read packages, bounded by bytes."""

    def __init__(self, db, max_bytes: int, settings=None, router=None):
        self.db = db
        self.settings = settings
        self.router = router  # ketch.proxy.routing.Router when uplinks are configured
        self.max_bytes = max_bytes
        self.bytes = 0
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.validator = None if db.changes is not None else BatchedEtags(db.packument_etags)

    async def get(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if self.validator is None:
            token = self.db.changes.token(name)
            if entry is not None and entry.token == token:
                TALLY.inc(CACHE_HITS)
                return entry
        else:
            token = None
            current = await self.validator.etag(name)
            if entry is not None and entry.etag == current:
                TALLY.inc(CACHE_HITS)
                return entry
        TALLY.inc(CACHE_MISSES)
        entry = await self._load(name, token)
        self._store(name, entry)
        return entry

    async def _load(self, name: str, token) -> Entry:
        async with self.db.read() as session:
            row = (await session.execute(
                select(Packument.package_id, Packument.etag, Packument.modified, Packument.access,
                       Packument.full, Packument.abbreviated).where(Packument.name == name))).first()
            if row is None:
                if (await session.execute(select(Package.id).where(Package.name == name))).first() is not None:
                    return Entry(token)  # a local package whose versions are all unpublished
                return await self._load_cached(session, name, token)
            package_id, etag, modified, access, full, abbreviated = row
            versions = await session.execute(
                select(Version.version, Version.blob_key, Version.size)
                .where(Version.package_id == package_id, Version.unpublished.is_(None)))
            unscoped = name.rsplit("/", 1)[-1]
            tarballs, sizes = {}, {}
            for v, key, size in versions.all():
                tarballs[f"{unscoped}-{v}.tgz"] = key
                sizes[f"{unscoped}-{v}.tgz"] = size
        return Entry(token, etag, format_datetime(modified, usegmt=True).encode(), access, full, abbreviated,
                     tarballs, sizes)

    async def _load_cached(self, session, name: str, token) -> Entry:
        """Documents of ``name`` cached from an uplink or mirrored, if they may still be served."""
        row = (await session.execute(
            select(CachedPackument.etag, CachedPackument.fetched, CachedPackument.uplink, CachedPackument.pinned,
                   CachedPackument.full, CachedPackument.abbreviated, CachedPackument.files)
            .where(CachedPackument.name == name))).first()
        if row is None:
            return Entry(token, absent=True)
        etag, fetched, origin, pinned, full, abbreviated, files = row
        if pinned:
            expires = math.inf
        else:
            # Served only while the name still routes to the uplink it came from: after a route
            # becomes local-only, what was cached from upstream is never served again.
            uplink = self.router.uplink_for(name) if self.router is not None else None
            if uplink != origin:
                return Entry(token, absent=True)
            expires = fetched.timestamp() + self.settings.uplinks[origin].max_age
        tarballs, sizes = {}, {}
        for filename, key, size in (await session.execute(
                select(CachedTarball.filename, CachedTarball.blob_key, CachedTarball.size)
                .where(CachedTarball.name == name))).all():
            tarballs[filename] = key
            sizes[filename] = size
        return Entry(token, etag, format_datetime(fetched, usegmt=True).encode(), "public", full, abbreviated,
                     tarballs, sizes, absent=True, origin=origin, expires=expires, files=orjson.loads(files))

    def _store(self, name: str, entry: Entry) -> None:
        old = self.entries.pop(name, None)
        if old is not None:
            self.bytes -= old.size
        self.entries[name] = entry
        self.bytes += entry.size
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            _, evicted = self.entries.popitem(last=False)
            self.bytes -= evicted.size

    def render(self, entry: Entry, abbreviated: bool, base: bytes, gzip_ok: bool,
               private: bool = False) -> tuple[list, bytes]:
        key = (abbreviated, base, gzip_ok, private)
        hit = entry.rendered.get(key)
        if hit is not None:
            return hit
        body = splice_base(entry.abbreviated if abbreviated else entry.full, base.decode())
        headers = [
            (b"content-type", ABBREVIATED_TYPE if abbreviated else _JSON),
            (b"last-modified", entry.modified),
            *validator_headers(entry, abbreviated, private),
        ]
        if gzip_ok and len(body) >= _GZIP_MIN:
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        if len(entry.rendered) < 8:
            entry.rendered[key] = (headers, body)
            entry.size += len(body)
            self.bytes += len(body)
        return headers, body


def validator_headers(entry: Entry, abbreviated: bool, private: bool = False) -> list[tuple[bytes, bytes]]:
    """What a 200 and a 304 of a packument both carry."""
    return [(b"etag", _etag(entry, abbreviated)),
            (b"cache-control", b"private, no-cache" if private else b"public, no-cache"),
            (b"vary", b"accept, accept-encoding, authorization")]


def packument_matches(entry: Entry, abbreviated: bool, if_none_match: bytes) -> bool:
    etag = _etag(entry, abbreviated)
    return etag in if_none_match or etag[2:] in if_none_match


def _etag(entry: Entry, abbreviated: bool) -> bytes:
    return f'W/"{entry.etag}{"a" if abbreviated else "f"}"'.encode()


class FastPath:
    """ASGI wrapper: serves public package reads itself and hands everything else to ``app``."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # app.state, app.router… of the wrapped Starlette app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]:
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        if len(path) < 2 or path[1] in "-_":  # /-/… endpoints and /_changes; no package name starts with _
            return await self.app(scope, receive, send)
        parts = path[1:].split("/")
        if parts[0][:1] == "@":
            if len(parts) < 2:
                return await self.app(scope, receive, send)
            name, rest = parts[0] + "/" + parts[1], parts[2:]
        else:
            name, rest = parts[0], parts[1:]
        ctx = self.app.state.ketch
        cache: PackumentCache = ctx.caches.get("packuments")
        if cache is None:
            return await self.app(scope, receive, send)
        try:
            entry = await cache.get(name)
        except UNAVAILABLE:
            return await _unavailable(send)
        # Missing and private names take the same steps (catalogue C02: timing must not tell them
        # apart): an anonymous caller gets the same 404 at once, whatever the path; a signed-in
        # caller goes to the app, which does the same lookups for both before it answers.
        if entry.hidden:
            if _has_auth(scope) or (entry.absent and cache.router is not None
                                    and cache.router.uplink_for(name) is not None):
                return await self.app(scope, receive, send)  # signed in, or an uplink may have it
            return await _not_found(send)
        if entry.origin is not None:  # cached from an uplink, or mirrored
            tarball = rest[1] if len(rest) == 2 else None
            # Documents are revalidated after max_age; a tarball, once cached, never changes.
            if (entry.expires < time.time() and tarball is None) or (tarball is not None
                                                                     and tarball not in entry.tarballs):
                return await self.app(scope, receive, send)
            if ctx.proxy is not None:
                ctx.proxy.hit(entry.origin, name, tarball)
        if not rest:
            return await self._packument(scope, send, cache, entry, ctx)
        if len(rest) == 2 and rest[0] == "-":
            key = entry.tarballs.get(rest[1])
            if key is None:
                return await _not_found(send)
            hot: BlobCache | None = ctx.caches.get("tarballs")
            if hot is not None and hot.fits(entry.sizes.get(rest[1], hot.max_item + 1)):
                return await self._small_tarball(scope, send, ctx, hot, key, name, rest[1])
            try:
                response = await ctx.blobs.response(key, {"cache-control": "public, max-age=31536000, immutable"})
            except BlobStoreUnavailable:
                return await _unavailable(send)
            if response is None:
                return await _unavailable(send)
            count_download(ctx, scope, name, rest[1])
            return await response(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _small_tarball(self, scope, send, ctx, hot: BlobCache, key: str, name: str, filename: str):
        """A small public tarball from memory: no file open, stat or thread-pool read per request."""
        cached = hot.get(key)
        if cached is None:
            try:
                body = await ctx.blobs.get(key)
            except (KeyError, BlobStoreUnavailable):
                return await _unavailable(send)  # the database names a blob the store cannot give
            headers = [(b"content-type", b"application/octet-stream"),
                       (b"content-length", str(len(body)).encode()),
                       (b"cache-control", b"public, max-age=31536000, immutable"),
                       (b"etag", b'"' + key.rsplit("/", 1)[-1][:40].encode() + b'"')]
            hot.put(key, body, headers)
        else:
            body, headers = cached
        count_download(ctx, scope, name, filename)
        await _send(send, 200, headers, body)

    async def _packument(self, scope, send, cache: PackumentCache, entry: Entry, ctx):
        accept = encoding = inm = host = b""
        for key, value in scope["headers"]:
            if key == b"accept":
                accept = value
            elif key == b"accept-encoding":
                encoding = value
            elif key == b"if-none-match":
                inm = value
            elif key == b"host":
                host = value
        abbreviated = ABBREVIATED_TYPE in accept
        if inm and packument_matches(entry, abbreviated, inm):
            return await _send(send, 304, validator_headers(entry, abbreviated), b"")
        base = _base(scope, host, ctx.settings)
        headers, body = cache.render(entry, abbreviated, base, b"gzip" in encoding)
        if entry.warning is not None:  # a cached upstream copy served while its uplink fails
            headers = [*headers, (b"warning", entry.warning[0].encode()),
                       (b"x-ketch-upstream", entry.warning[1][:300].encode("latin-1", "replace"))]
        await _send(send, 200, headers, body)


def _base(scope, host: bytes, settings) -> bytes:
    if settings.public_url:
        return settings.public_url.rstrip("/").encode()
    if not safe_host(host.decode("latin-1")):
        host = f"{settings.host}:{settings.port}".encode()
    return scope["scheme"].encode() + b"://" + host + scope.get("root_path", "").encode()


UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout, ConnectionError, TimeoutError, BlobStoreUnavailable)
_UNAVAILABLE_BODY = b'{"error":"Service temporarily unavailable, please retry.","message":"Service temporarily unavailable, please retry."}'


async def _unavailable(send) -> None:
    await _send(send, 503, [(b"content-length", str(len(_UNAVAILABLE_BODY)).encode()), (b"content-type", _JSON),
                            (b"retry-after", b"5")], _UNAVAILABLE_BODY)


def _has_auth(scope) -> bool:
    return any(k == b"authorization" for k, _ in scope["headers"])


# Same header order as Starlette's Response, so every 404 is byte-identical whichever layer sent it.
_NOT_FOUND_HEADERS = [(b"content-length", str(len(NOT_FOUND)).encode()), (b"content-type", _JSON)]


async def _not_found(send) -> None:
    await _send(send, 404, _NOT_FOUND_HEADERS, NOT_FOUND)


async def _send(send, status: int, headers: list, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
