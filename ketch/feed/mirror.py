"""`ketch mirror`: copy packages from another registry into this one's proxy cache, pinned.

It follows the source's ``/_changes`` feed from where the last run stopped (table mirror_state),
or copies only the names it is given. For each package it fetches the full packument and every
tarball, checks each tarball against the packument's checksums, and stores them as pinned proxy
rows (ketch.proxy.store), which ``ketch serve`` answers from with tarball URLs pointing at itself.

Killed at any moment, it resumes safely: a package's rows are committed before the resume point
moves past its change, and copying a package again only rewrites the same rows (tarballs already
copied with the same checksum are not downloaded again). The resume point never moves past a
change that failed, so the next run retries it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import delete, select

from ketch.blobs import BlobStore
from ketch.db import Database, touch
from ketch.db.base import utcnow
from ketch.feed.models import MirrorState
from ketch.proxy import store
from ketch.proxy.documents import BadUpstreamDocument, IntegrityMismatch, rewrite, verify
from ketch.proxy.models import CachedPackument, CachedTarball
from ketch.proxy.prune import release_blobs

PAGE = 500
BATCH_BYTES = 32 * 1024 * 1024  # tarball bytes held in memory and written per transaction
RETRIES = 3
BACKOFF = 0.5


class CopyFailed(Exception):
    def __init__(self, reason: str, status: int | None = None):
        super().__init__(reason)
        self.status = status


@dataclass
class Summary:
    packages: int = 0
    versions: int = 0
    tarballs: int = 0
    bytes: int = 0
    deleted: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # name → reason


class Mirror:
    def __init__(self, db: Database, blobs: BlobStore, source: str, *, token: str | None = None,
                 concurrency: int = 8, progress: Callable[[int, int | None], None] = lambda done, total: None):
        self.db = db
        self.blobs = blobs
        self.source = source.rstrip("/")
        self.origin = f"mirror:{self.source}"
        self.token = token
        self.requests = asyncio.Semaphore(concurrency)
        self.packages = asyncio.Semaphore(concurrency)
        self.progress = progress
        self.summary = Summary()
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), trust_env=False,
                                      follow_redirects=True)

    async def close(self) -> None:
        await self.http.aclose()

    # -- what to copy --------------------------------------------------------------------------
    async def copy_names(self, names: list[str]) -> Summary:
        done = 0
        self.progress(0, len(names))

        async def one(name: str) -> None:
            nonlocal done
            await self._copy_or_note(name, deleted=False)
            done += 1
            self.progress(done, len(names))

        await asyncio.gather(*(one(n) for n in dict.fromkeys(names)))
        return self.summary

    async def follow(self) -> Summary:
        """Copy every change after the stored resume point, until the source has no more."""
        since = start = await self._resume_point()
        head = int(orjson.loads(await self._get("/_changes?since=now&limit=0"))["last_seq"])
        safe = True  # False once a change failed: the resume point then stays before it
        while True:
            page = orjson.loads(await self._get(f"/_changes?since={since}&limit={PAGE}"))
            results, last = page["results"], int(page["last_seq"])
            latest: dict[str, bool] = {}  # name → deleted, as of its last change in this page
            for change in results:
                latest[change["id"]] = bool(change.get("deleted"))
            outcome = dict(zip(latest, await asyncio.gather(
                *(self._copy_or_note(name, deleted) for name, deleted in latest.items()))))
            for change in results:
                if safe and not outcome[change["id"]]:
                    safe = False
                    if int(change["seq"]) - 1 > since:
                        await self._save_resume_point(int(change["seq"]) - 1)
            if safe and last != since:
                await self._save_resume_point(last)
            self.progress(max(last - start, 0), max(head - start, last - start, 1))
            if not results or last == since:
                return self.summary
            since = last

    # -- one package -----------------------------------------------------------------------------
    async def _copy_or_note(self, name: str, deleted: bool) -> bool:
        async with self.packages:
            try:
                if deleted:
                    await self._remove(name)
                else:
                    await self._copy(name)
                return True
            except CopyFailed as e:
                self.summary.failures[name] = str(e)
            except httpx.HTTPError as e:
                self.summary.failures[name] = f"source unreachable: {e!r}"
            return False

    async def _copy(self, name: str) -> None:
        try:
            raw = await self._get("/" + name.replace("/", "%2f"), accept="application/json")
        except CopyFailed as e:
            if e.status == 404:  # gone, or no longer readable: drop our copy too
                await self._remove(name)
                return
            raise
        try:
            docs = rewrite(name, raw)
        except BadUpstreamDocument as e:
            raise CopyFailed(f"bad packument: {e}") from None
        async with self.db.read() as session:
            have = dict((await session.execute(
                select(CachedTarball.filename, CachedTarball.integrity)
                .where(CachedTarball.name == name, CachedTarball.pinned.is_(True)))).all())
        fetched = [t for t in await asyncio.gather(*(self._tarball(filename, *entry, have.get(filename))
                                                     for filename, entry in docs.files.items())) if t]
        # Tarballs first, the packument with the last batch: a small package is one transaction.
        while True:
            batch, size = [], 0
            while fetched and (not batch or size + len(fetched[0][1]) <= BATCH_BYTES):
                batch.append(fetched.pop(0))
                size += len(batch[-1][1])
            async with self.db.write() as session:
                for filename, data, matched in batch:
                    await store.save_tarball(session, self.blobs, name, filename, data, matched, pinned=True)
                if not fetched:
                    await store.save_packument(session, name, self.origin, docs, None, pinned=True)
                    gone = (await session.execute(
                        delete(CachedTarball)
                        .where(CachedTarball.name == name, CachedTarball.filename.not_in(list(docs.files)))
                        .returning(CachedTarball.blob_key))).scalars().all()
            if not fetched:
                break
        await release_blobs(self.db, self.blobs, set(gone))
        self.summary.packages += 1
        self.summary.versions += len(docs.files)

    async def _tarball(self, filename: str, url: str, integrity: str, shasum: str,
                       stored: str | None) -> tuple[str, bytes, str] | None:
        """The verified bytes of one tarball, or None when an earlier run copied it already."""
        if stored is not None and stored in _sri_forms(integrity, shasum):
            return None
        data = await self._get(url, absolute=True)
        try:
            matched = verify(data, integrity, shasum)
        except IntegrityMismatch as e:
            raise CopyFailed(f"{filename}: {e}") from None
        self.summary.tarballs += 1
        self.summary.bytes += len(data)
        return filename, data, matched

    async def _remove(self, name: str) -> None:
        async with self.db.write() as session:
            found = await session.execute(delete(CachedPackument).where(
                CachedPackument.name == name, CachedPackument.uplink == self.origin).returning(CachedPackument.name))
            if found.first() is None:
                return
            keys = (await session.execute(delete(CachedTarball).where(CachedTarball.name == name)
                                          .returning(CachedTarball.blob_key))).scalars().all()
            touch(session, name)
        await release_blobs(self.db, self.blobs, set(keys))
        self.summary.deleted += 1

    # -- the source ------------------------------------------------------------------------------
    async def _get(self, path: str, *, accept: str | None = None, absolute: bool = False) -> bytes:
        """GET with retries on network errors, 429 and 5xx; raises CopyFailed for other answers."""
        url = path if absolute else self.source + path
        headers = {"accept": accept} if accept else {}
        if self.token and _same_origin(url, self.source):  # never hand the token to another host
            headers["authorization"] = f"Bearer {self.token}"
        attempt = 0
        while True:
            try:
                async with self.requests:
                    response = await self.http.get(url, headers=headers)
                if response.status_code == 200:
                    return response.content
                problem: Exception = CopyFailed(f"GET {url} answered {response.status_code}", response.status_code)
                if response.status_code != 429 and response.status_code < 500:
                    raise problem
            except httpx.TransportError as e:
                problem = e
            if attempt == RETRIES:
                raise problem
            await asyncio.sleep(BACKOFF * 2 ** attempt)
            attempt += 1

    # -- the resume point -------------------------------------------------------------------------
    async def _resume_point(self) -> int:
        async with self.db.read() as session:
            state = await session.get(MirrorState, self.source)
        return int(state.since) if state is not None else 0

    async def _save_resume_point(self, seq: int) -> None:
        async with self.db.write() as session:
            state = await session.get(MirrorState, self.source)
            if state is None:
                session.add(MirrorState(source=self.source, since=str(seq), updated=utcnow()))
            else:
                state.since, state.updated = str(seq), utcnow()


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _sri_forms(integrity: str, shasum: str) -> set[str]:
    """The SRI strings ``verify`` may have recorded for a tarball with these checksums."""
    import base64

    forms = {item.split("?")[0] for item in (integrity or "").split()}
    try:
        forms.add("sha1-" + base64.b64encode(bytes.fromhex(shasum)).decode())
    except ValueError:
        pass
    return forms
