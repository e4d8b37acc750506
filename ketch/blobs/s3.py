"""Blobs in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, R2, …), through obstore.

Storage URL ``s3://bucket/optional/prefix``. Endpoint, credentials and region come from the
explicit arguments, else the standard ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_REGION`` variables (without keys, obstore's usual AWS
credential chain applies: session token, web identity, instance metadata).

obstore (Rust ``object_store`` + reqwest) rather than aioboto3: against SeaweedFS 4.48 on the 2-core
dev box, sequential put/get of 10 KB took 1.7/1.2–1.7 ms vs 4.1–6.1/4.0–4.2 ms, and with 16
requests in flight it did 2.4–5.8× the puts and 3.5–4.3× the gets of 10 KB and 3–4× the gets of
1 MB (1 MB puts are bound by SeaweedFS: 56–68/s vs 41–51/s). It also presigns locally and
needs no extra HTTP stack.

Every network, service, timeout or permission failure surfaces as :class:`BlobStoreUnavailable`,
so the HTTP layer can answer 503 + Retry-After; a missing object is ``KeyError`` from
:meth:`S3BlobStore.get` and ``None`` from :meth:`S3BlobStore.response`.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import NotFoundError
from obstore.store import S3Store
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ketch.blobs import BlobStoreUnavailable
from ketch.blobs.cache import BlobCache

OCTET_STREAM = "application/octet-stream"
_NOT_FOUND = (FileNotFoundError, NotFoundError)  # obstore raises the builtin for a 404
_FAILURES = (ObstoreError, OSError, TimeoutError, httpx.HTTPError)
# S3's naming rules, loosened to what S3-compatible servers accept (upper case, underscores).
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]")


_ssl_context = None


def _tls() -> Any:
    """One TLS context for the occasional bucket request: building one costs ~0.1 s of CPU."""
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()
    return _ssl_context


def _first(*values: Any) -> Any:
    """The first value that is neither None nor an empty string (an empty env var means unset)."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 300 else line[:297] + "..."


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
        redirect: bool = False,
        presign_expiry: int = 300,
        connect_timeout: float = 3.0,
        timeout: float = 30.0,
        stream_timeout: float = 3600.0,
        max_retries: int = 2,
        retry_timeout: float = 5.0,
        stream_chunk_size: int = 256 * 1024,
        cache_bytes: int = 0,
    ):
        """``timeout`` bounds one whole request for put/get/head/list/delete; streamed downloads
        (:meth:`response`) use ``stream_timeout`` instead, since a slow client paces them. Failed
        requests are retried ``max_retries`` times, never later than ``retry_timeout`` seconds
        after the first attempt."""
        if not _BUCKET_NAME.fullmatch(bucket or ""):
            raise ValueError(f"bad S3 bucket name {bucket!r} (3-63 letters, digits, dots, hyphens)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = _first(endpoint_url, os.environ.get("AWS_ENDPOINT_URL"))
        self.region = _first(region, os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION"),
                             "us-east-1")
        self.redirect = redirect
        self.presign_expiry = int(presign_expiry)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.stream_chunk_size = stream_chunk_size
        # Keys are content addresses, so a cached body can never go stale: no invalidation needed.
        self.cache = BlobCache(cache_bytes)

        config: dict[str, Any] = {"region": self.region}
        if self.endpoint_url:
            # Also the service-specific key, which obstore would otherwise take from
            # AWS_ENDPOINT_URL_S3 in preference to an explicit endpoint.
            config["endpoint"] = self.endpoint_url
            config["aws_endpoint_url_s3"] = self.endpoint_url
        key_id = _first(access_key_id, os.environ.get("AWS_ACCESS_KEY_ID"))
        secret = _first(secret_access_key, os.environ.get("AWS_SECRET_ACCESS_KEY"))
        if bool(key_id) != bool(secret):
            raise ValueError("S3 credentials need both an access key id and a secret access key")
        if key_id:
            config["access_key_id"] = key_id
            config["secret_access_key"] = secret

        retry = {
            "max_retries": max_retries,
            "retry_timeout": timedelta(seconds=retry_timeout),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1),
                        "base": 2},
        }

        def client(total: float) -> dict[str, Any]:
            return {
                "allow_http": bool(self.endpoint_url and self.endpoint_url.startswith("http://")),
                "connect_timeout": timedelta(seconds=connect_timeout),
                "timeout": timedelta(seconds=total),
                "default_content_type": OCTET_STREAM,
            }

        def store(prefix: str | None, total: float) -> S3Store:
            return S3Store(bucket, prefix=prefix or None, config=config, client_options=client(total),
                           retry_config=retry)

        self._store = store(self.prefix, timeout)
        self._stream_store = store(self.prefix, stream_timeout)
        self._bucket_store = store(None, timeout)  # signs bucket-level requests (HEAD/PUT /bucket/)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
        redirect: bool = False,
        presign_expiry: int = 300,
        cache_bytes: int = 0,
        **options: Any,
    ) -> S3BlobStore:
        """``s3://bucket/optional/prefix`` plus the values of the matching settings (None or ""
        means "not set": fall back to the AWS_* environment)."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"bad S3 storage URL {url!r} (expected s3://bucket/optional/prefix)")
        if parsed.query or parsed.fragment:
            raise ValueError(f"S3 storage URL {url!r} must not have a query or fragment")
        return cls(parsed.netloc, unquote(parsed.path).strip("/"), endpoint_url=endpoint_url,
                   access_key_id=access_key_id, secret_access_key=secret_access_key, region=region,
                   redirect=redirect, presign_expiry=presign_expiry, cache_bytes=cache_bytes, **options)

    def __repr__(self) -> str:
        where = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"S3BlobStore(s3://{where}, endpoint={self.endpoint_url or 'aws'})"

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _check(key: str) -> None:
        if not key or ".." in key or key.startswith("/") or "//" in key:
            raise ValueError("bad blob key")

    @contextmanager
    def _unavailable(self, what: str, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except (BlobStoreUnavailable, *_NOT_FOUND):
            raise  # not-found is each caller's business
        except _FAILURES as e:
            target = f"{self.bucket}/{key}" if key else self.bucket
            raise BlobStoreUnavailable(f"S3 {what} {target} failed: {_short(e)}") from e

    # -- the BlobStore interface -----------------------------------------------------------------

    async def put(self, key: str, data: bytes) -> None:
        """One S3 PUT (multipart above 5 MB): the object appears whole or not at all, and
        re-putting the same content-addressed bytes is harmless."""
        self._check(key)
        try:
            with self._unavailable("put", key):
                await self._put(key, data)
            return
        except _NOT_FOUND:
            pass  # NoSuchBucket: the only 404 a PUT can get
        await self.ensure_bucket()
        with self._unavailable("put", key):
            try:
                await self._put(key, data)
            except _NOT_FOUND as e:
                raise BlobStoreUnavailable(f"bucket {self.bucket} vanished while writing {key}") from e

    async def _put(self, key: str, data: bytes) -> None:
        await obstore.put_async(self._store, key, data, attributes={"Content-Type": OCTET_STREAM})

    async def get(self, key: str) -> bytes:
        self._check(key)
        with self._unavailable("get", key):
            try:
                result = await obstore.get_async(self._store, key)
            except _NOT_FOUND:
                raise KeyError(key) from None
            return (await result.bytes_async()).to_bytes()

    async def exists(self, key: str) -> bool:
        self._check(key)
        with self._unavailable("head", key):
            try:
                await obstore.head_async(self._store, key)
            except _NOT_FOUND:
                return False
        return True

    async def delete(self, key: str) -> None:
        self._check(key)
        self.cache.discard(key)
        with self._unavailable("delete", key):
            try:
                await obstore.delete_async(self._store, key)
            except _NOT_FOUND:
                pass  # no bucket, so no object either

    async def keys(self) -> AsyncIterator[str]:
        """Every key under this store's prefix (relative to it); nothing when the bucket is missing."""
        stream = obstore.list(self._store, chunk_size=1000)
        while True:
            try:
                with self._unavailable("list"):
                    try:
                        chunk = await stream.__anext__()
                    except StopAsyncIteration:
                        return
                    except _NOT_FOUND:
                        return
            except BlobStoreUnavailable:
                # A missing bucket comes back as a generic error from a list; tell it apart.
                if await self._bucket_status() == 404:
                    return
                raise
            for meta in chunk:
                yield meta["path"]

    async def response(self, key: str, headers: dict[str, str]) -> Response | None:
        self._check(key)
        if self.redirect:
            return await self._redirect(key, headers)
        cached = self.cache.get(key)
        if cached is not None:
            body, meta_headers = cached
            return Response(body, headers={**meta_headers, **headers}, media_type=OCTET_STREAM)
        with self._unavailable("get", key):
            try:
                result = await obstore.get_async(self._stream_store, key)
            except _NOT_FOUND:
                return None
        meta = result.meta
        out = {"last-modified": format_datetime(meta["last_modified"], usegmt=True)}
        if meta.get("e_tag"):
            out["etag"] = meta["e_tag"]
        if self.cache.fits(meta["size"]):
            with self._unavailable("download", key):
                body = (await result.bytes_async()).to_bytes()
            self.cache.put(key, body, out)
            return Response(body, headers={**out, **headers}, media_type=OCTET_STREAM)
        out["content-length"] = str(meta["size"])
        out.update(headers)
        return StreamingResponse(self._chunks(result, key), headers=out, media_type=OCTET_STREAM)

    async def _chunks(self, result: Any, key: str) -> AsyncIterator[bytes]:
        # After the headers are sent an error can only abort the connection; the client then
        # sees a short body against content-length and retries.
        with self._unavailable("download", key):
            try:
                async for chunk in result.stream(min_chunk_size=self.stream_chunk_size):
                    yield chunk
            except _NOT_FOUND as e:
                raise BlobStoreUnavailable(f"S3 object {key} vanished during download") from e

    async def _redirect(self, key: str, headers: dict[str, str]) -> Response | None:
        with self._unavailable("head", key):
            try:
                await obstore.head_async(self._store, key)
            except _NOT_FOUND:
                return None
            url = await obstore.sign_async(self._store, "GET", key, timedelta(seconds=self.presign_expiry))
        out = {k: v for k, v in headers.items() if k.lower() != "cache-control"}
        # The caller's cache policy is for the immutable bytes; the redirect is only good while
        # its signature is, so caches may keep it for half the expiry at most.
        scope = "private" if "private" in headers.get("cache-control", "") else "public"
        out["cache-control"] = f"{scope}, max-age={max(0, self.presign_expiry // 2)}"
        return RedirectResponse(url, status_code=302, headers=out)

    async def ping(self) -> None:
        """Raise :class:`BlobStoreUnavailable` unless the bucket is reachable (creating it if missing)."""
        await self.ensure_bucket()

    # -- the bucket ------------------------------------------------------------------------------

    async def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist. Another node creating it at the same moment
        is fine: whatever the create answers, success is the bucket being there afterwards."""
        status = await self._bucket_status()
        if status == 200:
            return
        if status != 404:
            raise BlobStoreUnavailable(f"S3 bucket {self.bucket}: HEAD answered {status}")
        body = b""
        if self.region != "us-east-1":
            body = ('<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<LocationConstraint>{self.region}</LocationConstraint>"
                    "</CreateBucketConfiguration>").encode()
        create = await self._bucket_request("PUT", body)
        if create.status_code == 200:
            return
        if await self._bucket_status() == 200:
            return  # 409 BucketAlreadyOwnedByYou / OperationAborted: someone else won the race
        raise BlobStoreUnavailable(
            f"S3 bucket {self.bucket} could not be created: {create.status_code} {create.text[:300]}")

    async def _bucket_status(self) -> int:
        return (await self._bucket_request("HEAD")).status_code

    async def _bucket_request(self, method: str, body: bytes = b"") -> httpx.Response:
        """HEAD or PUT ``/bucket/`` via a presigned URL, so obstore's credential chain signs it."""
        with self._unavailable(f"{method} bucket"):
            url = await obstore.sign_async(self._bucket_store, method, "", timedelta(seconds=60))
            timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
            async with httpx.AsyncClient(timeout=timeout, verify=_tls()) as client:
                response = await client.request(method, url, content=body)
        if response.status_code >= 500:
            raise BlobStoreUnavailable(f"S3 {method} bucket {self.bucket} answered {response.status_code}")
        return response
