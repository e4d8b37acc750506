"""The proxy: answering for names routed to an uplink from the cache, fetching what is missing.

* Packuments are fetched whole from the uplink, rewritten (ketch.proxy.documents) and stored; they
  are served from every process's packument cache until ``max_age`` passes, then revalidated with
  ``If-None-Match``. When the uplink fails or is too slow, the cached copy is served with a
  ``Warning`` header; with nothing cached the client gets 502 (504 on timeout) in npm's error shape.
* Tarballs are fetched on first request, checked against the checksums of the cached packument,
  stored (content-addressed, like published ones), then served. Bytes that fail the check are
  never stored or sent.
* Concurrent misses for the same packument or tarball share one upstream request (per process; a
  process re-reads the database first, so it never refetches what another one just stored).
* Only names with no local package row at all get here (ketch.registry.fastpath marks them
  ``absent``): a local package always wins, private or unpublished included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from ketch.blobs import BlobStore
from ketch.config import Settings
from ketch.db import Database
from ketch.http.errors import ApiError
from ketch.ops.metrics import PROXY, TALLY
from ketch.proxy import store
from ketch.proxy.locks import PostgresLocks, open_locks
from ketch.proxy.documents import BadUpstreamDocument, IntegrityMismatch, rewrite, verify
from ketch.proxy.routing import Router
from ketch.proxy.upstream import UpstreamClient, UpstreamError, UpstreamMissing
from ketch.registry import names
from ketch.registry.fastpath import Entry, PackumentCache

log = logging.getLogger("ketch.proxy")
STALE_WARNING = '110 ketch "Response is Stale"'
USED_FLUSH_SECONDS = 60
WARN_EVERY = 10.0
STREAM_ABOVE = 4 * 1024 * 1024  # larger tarballs are sent on while they download, not after


class Proxy:
    def __init__(self, settings: Settings, db: Database, blobs: BlobStore, packuments: PackumentCache,
                 router: Router):
        self.settings = settings
        self.db = db
        self.blobs = blobs
        self.packuments = packuments
        self.router = router
        max_body = settings.proxy_max_body_mb * 1024 * 1024
        self.clients = {name: UpstreamClient(name, cfg, max_body) for name, cfg in settings.uplinks.items()}
        self._inflight: dict[tuple, asyncio.Future] = {}
        self._used_packuments: set[str] = set()
        self._used_tarballs: set[tuple[str, str]] = set()
        self._counters: dict[tuple, object] = {}
        self._streaming: dict[tuple[str, str], Streamed] = {}
        self._missing: dict[str, float] = {}  # name → until when the uplink's 404 is believed
        self.locks = open_locks(db, settings)
        self._warned: dict[str, tuple[float, int]] = {}

    async def close(self) -> None:
        await self.flush_used()
        for client in self.clients.values():
            await client.close()
        if isinstance(self.locks, PostgresLocks):
            await self.locks.close()

    # -- packuments ----------------------------------------------------------------------------
    def routes_upstream(self, name: str) -> bool:
        return self.router.uplink_for(name) is not None

    async def entry(self, name: str, entry: Entry, scope: dict, *, revalidate: bool = True) -> Entry | None:
        """The documents to serve for ``name`` (an absent or cached name), or None for 404.
        ``revalidate=False``: a cached copy is good as it is (for its tarballs, which never change).

        Raises ApiError 502/504 when the uplink fails and nothing is cached."""
        if entry.origin is not None and (entry.expires >= time.time() or not revalidate):
            self.hit(entry.origin, name)
            if entry.warning is not None:
                scope["ketch.warning"] = entry.warning
            return entry
        uplink = self.router.uplink_for(name)
        if uplink is None:
            return entry if entry.origin is not None else None  # mirrored copies need no uplink
        if not names.existing_name_ok(name):
            return None  # never sent upstream
        if entry.origin is None and self._missing.get(name, 0.0) > time.monotonic():
            self._used(uplink, "packument", "missing")
            return None
        try:
            return await self._once(("packument", name), lambda: self._refresh_locked(name, uplink, entry))
        except UpstreamMissing:
            self._used(uplink, "packument", "missing")
            if len(self._missing) > 10_000:
                now = time.monotonic()
                self._missing = {n: t for n, t in self._missing.items() if t > now}
            self._missing[name] = time.monotonic() + self.settings.uplinks[uplink].missing_max_age
            return None
        except (UpstreamError, BadUpstreamDocument) as e:
            self._warn(uplink, f"{name}: {e}")
            if entry.origin is not None:
                self._used(uplink, "packument", "stale")
                # Served as it is, by every path, until the uplink is worth asking again.
                client = self.clients[uplink]
                entry.warning = scope["ketch.warning"] = (STALE_WARNING, f"stale; {e}")
                entry.expires = time.time() + max(1.0, client.skip_until - time.monotonic())
                return entry
            self._used(uplink, "packument", "error")
            raise _upstream_failed(f"Could not fetch {name} from uplink {uplink}: {e}", e) from None

    async def _refresh_locked(self, name: str, uplink: str, entry: Entry) -> Entry | None:
        async with self.locks.hold(f"packument:{name}", self.settings.uplinks[uplink].timeout):
            return await self._refresh(name, uplink, entry)

    async def _refresh(self, name: str, uplink: str, entry: Entry) -> Entry | None:
        max_age = self.settings.uplinks[uplink].max_age
        async with self.db.read() as session:
            row = await store.packument_state(session, name)
        if row is not None and row.uplink == uplink and row.fetched.timestamp() + max_age >= time.time():
            # Another process (or node) refreshed it since this one loaded its copy.
            if row.etag == entry.etag:
                entry.expires, entry.warning = row.fetched.timestamp() + max_age, None
                return entry
            return await self.packuments.get(name)
        known = row.upstream_etag if row is not None and row.uplink == uplink else None
        answer = await self.clients[uplink].packument(name, known)
        if answer.status == 304 and row is not None:
            async with self.db.write() as session:
                await store.mark_fresh(session, name, answer.etag or known)
            self._used(uplink, "packument", "revalidated")
            if row.etag == entry.etag:
                entry.expires, entry.warning = time.time() + max_age, None
                return entry
            return await self.packuments.get(name)
        if answer.status == 304:
            raise UpstreamError(f"uplink {uplink} answered 304 to a request without If-None-Match")
        docs = rewrite(name, answer.body)
        async with self.db.write() as session:
            await store.save_packument(session, name, uplink, docs, answer.etag)
        self._used(uplink, "packument", "miss")
        return await self.packuments.get(name)

    # -- tarballs ------------------------------------------------------------------------------
    async def tarball_key(self, name: str, filename: str, entry: Entry) -> str | Streamed | None:
        """The blob key of a tarball of a cached package, fetched and verified first if needed — or,
        for a large tarball being fetched right now, the :class:`Streamed` download."""
        key = entry.tarballs.get(filename)
        if key is not None:
            self.hit(entry.origin, name, filename)
            return key
        if filename not in entry.files:
            return None
        streaming = self._streaming.get((name, filename))
        if streaming is not None:
            return await asyncio.shield(streaming.done)
        found = await self._once(("tarball", name, filename),
                                 lambda: self._fetch_tarball_locked(name, filename, entry))
        if isinstance(found, Streamed) and (name, filename) not in self._streaming:
            self._streaming[(name, filename)] = found
            found.done.add_done_callback(lambda _: self._streaming.pop((name, filename), None))
        return found

    async def _fetch_tarball_locked(self, name: str, filename: str, entry: Entry) -> str | Streamed | None:
        """:meth:`_fetch_tarball` under the cross-process lock, held until a streamed one is stored."""
        uplink = self.settings.uplinks.get(entry.origin)
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self.locks.hold(f"tarball:{name}/{filename}",
                                                        uplink.timeout if uplink else 0))
        try:
            found = await self._fetch_tarball(name, filename, entry)
        except BaseException:
            await stack.aclose()
            raise
        if isinstance(found, Streamed):
            found.done.add_done_callback(lambda _: asyncio.ensure_future(stack.aclose()))
        else:
            await stack.aclose()
        return found

    async def _fetch_tarball(self, name: str, filename: str, entry: Entry) -> str | Streamed | None:
        async with self.db.read() as session:
            row = await store.get_tarball(session, name, filename)
        if row is not None:
            entry.tarballs[filename] = row.blob_key
            entry.sizes[filename] = row.size
            return row.blob_key
        client = self.clients.get(entry.origin)
        if client is None:
            return None  # a mirrored package whose tarball was never copied
        url, integrity, shasum = entry.files[filename]
        try:
            answer = await client.tarball(url, STREAM_ABOVE)
            if answer.stream is not None:
                return Streamed(self, name, filename, entry, answer)
            checked = verify(answer.body, integrity, shasum)
        except UpstreamMissing:
            self._used(entry.origin, "tarball", "missing")
            return None
        except UpstreamError as e:
            self._used(entry.origin, "tarball", "error")
            raise _upstream_failed(f"Could not fetch {filename} from uplink {entry.origin}: {e}", e) from None
        except IntegrityMismatch as e:
            raise self._corrupt(filename, entry, e) from None
        return await self._keep_tarball(name, filename, entry, answer.body, checked)

    async def _keep_tarball(self, name: str, filename: str, entry: Entry, data: bytes, checked: str) -> str:
        key = await store.put_blob(self.blobs, data)  # outside the transaction: no fsync under the write lock
        async with self.db.write() as session:
            await store.record_tarball(session, name, filename, key, len(data), checked)
        entry.tarballs[filename] = key
        entry.sizes[filename] = len(data)
        self._used(entry.origin, "tarball", "miss")
        return key

    def _corrupt(self, filename: str, entry: Entry, error: Exception) -> ApiError:
        self._used(entry.origin, "tarball", "error")
        log.error("proxy: %s from uplink %s failed its integrity check: %s", filename, entry.origin, error)
        return ApiError(502, f"{filename} from uplink {entry.origin} failed its integrity check and was not "
                             f"cached: {error}")

    # -- publishing over upstream --------------------------------------------------------------
    async def check_publish(self, name: str, versions: list[str]) -> None:
        """Refuse to publish a version the name's uplink already has, unless its route allows it."""
        route = self.router.route_for(name)
        if route is None or route.uplink is None or route.publish_over_upstream:
            return
        try:
            answer = await self.clients[route.uplink].packument(name, None)
            upstream = set(rewrite(name, answer.body).files)
        except UpstreamMissing:
            return
        except (UpstreamError, BadUpstreamDocument) as e:
            async with self.db.read() as session:
                row = await store.get_packument(session, name)
            if row is None:
                log.warning("proxy: publishing %s without knowing uplink %s's versions: %s", name, route.uplink, e)
                return
            import orjson

            upstream = set(orjson.loads(row.files))
        from ketch.proxy.documents import tarball_filename

        taken = [v for v in versions if tarball_filename(name, v) in upstream]
        if taken:
            raise ApiError(403, f"{name}@{taken[0]} already exists on uplink {route.uplink}. Publishing it here "
                                f"would shadow the upstream package; choose another version or name (or set "
                                f"publish_over_upstream on the route for {route.packages!r}).")

    # -- bookkeeping ---------------------------------------------------------------------------
    async def _once(self, key: tuple, work: Callable[[], Awaitable]):
        """Run ``work`` once for concurrent callers with the same ``key``; all get its result."""
        running = self._inflight.get(key)
        if running is None:
            running = asyncio.ensure_future(work())
            self._inflight[key] = running
            running.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(running)

    def _warn(self, uplink: str, message: str) -> None:
        """Log uplink trouble at most once per uplink every WARN_EVERY seconds (with a count)."""
        now = time.monotonic()
        last, quiet = self._warned.get(uplink, (0.0, 0))
        if now - last < WARN_EVERY:
            self._warned[uplink] = (last, quiet + 1)
            return
        self._warned[uplink] = (now, 0)
        more = f" ({quiet} more like it since the last message)" if quiet else ""
        log.warning("proxy: uplink %s: %s%s", uplink, message, more)

    def hit(self, origin: str, name: str, filename: str | None = None) -> None:
        """A cached packument (or tarball) was served: count it and remember it was used."""
        if filename is None:
            self._used(origin, "packument", "hit")
            self._used_packuments.add(name)
        else:
            self._used(origin, "tarball", "hit")
            self._used_tarballs.add((name, filename))

    def _used(self, origin: str | None, kind: str, result: str) -> None:
        key = (origin, kind, result)
        counter = self._counters.get(key)
        if counter is None:
            label = "mirror" if origin is None or origin.startswith("mirror:") else origin
            counter = self._counters[key] = PROXY.labels(label, kind, result)
        TALLY.inc(counter)

    async def flush_used(self) -> None:
        packuments, self._used_packuments = self._used_packuments, set()
        tarballs, self._used_tarballs = self._used_tarballs, set()
        if not packuments and not tarballs:
            return
        try:
            async with self.db.write() as session:
                await store.mark_used(session, packuments, tarballs)
        except Exception as e:  # noqa: BLE001 - bookkeeping must never break serving
            log.warning("proxy: could not record cache use: %s", e)

    async def run_bookkeeping(self) -> None:
        while True:
            await asyncio.sleep(USED_FLUSH_SECONDS)
            await self.flush_used()


class Streamed:
    """A large tarball on its way from the uplink: one client gets the bytes as they arrive while
    they are hashed and kept; the last chunk is held back until the whole tarball matches the
    packument, so a client never receives a complete body that failed the check (its download
    ends short instead). Concurrent requests for the same file wait for ``done``: the blob key."""

    def __init__(self, proxy: Proxy, name: str, filename: str, entry: Entry, answer):
        self.proxy, self.name, self.filename, self.entry, self.answer = proxy, name, filename, entry, answer
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if unawaited
        self.claimed = False

    def claim(self) -> bool:
        """True for the one caller that sends the stream; the others wait for ``done``."""
        first, self.claimed = not self.claimed, True
        return first

    async def body(self):
        chunks: list[bytes] = []
        held = None
        try:
            async for chunk in self.answer.stream:
                if held is not None:
                    yield held
                chunks.append(chunk)
                held = chunk
            data = b"".join(chunks)
            _, integrity, shasum = self.entry.files[self.filename]
            try:
                checked = verify(data, integrity, shasum)
            except IntegrityMismatch as e:
                raise self.proxy._corrupt(self.filename, self.entry, e) from None
            key = await self.proxy._keep_tarball(self.name, self.filename, self.entry, data, checked)
            self.done.set_result(key)
            if held is not None:
                yield held
        except BaseException as e:
            if not self.done.done():
                self.done.set_exception(e if isinstance(e, ApiError) else
                                        ApiError(502, f"Could not fetch {self.filename} from uplink "
                                                      f"{self.entry.origin}: {e}"))
            if isinstance(e, (ApiError, UpstreamError)):
                log.warning("proxy: download of %s cut short: %s", self.filename, e)
                return  # end the body early: the client sees fewer bytes than Content-Length
            raise


def _upstream_failed(message: str, error: Exception) -> ApiError:
    timeout = isinstance(error, UpstreamError) and error.timeout
    return ApiError(504 if timeout else 502, message)


def open_proxy(settings: Settings, db: Database, blobs: BlobStore, packuments: PackumentCache) -> Proxy | None:
    if not settings.uplinks:
        return None
    return Proxy(settings, db, blobs, packuments, packuments.router)
