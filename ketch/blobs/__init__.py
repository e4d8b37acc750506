"""Content-addressed tarball storage behind one small interface.

Keys are derived from the SHA-512 of the bytes (:func:`blob_key`), so writes are idempotent and a
retried or racing upload of the same bytes can never corrupt a stored blob.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from starlette.responses import Response


class BlobStoreUnavailable(Exception):
    """The blob store cannot be reached or refused to serve (network, 5xx, timeout, credentials).

    The HTTP layer answers 503 with ``Retry-After``; retrying later may succeed."""

    retry_after = 5


def blob_key(sha512_hex: str) -> str:
    return f"sha512/{sha512_hex[:2]}/{sha512_hex[2:4]}/{sha512_hex}"


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (readers never see a partial blob)."""

    async def get(self, key: str) -> bytes:
        """Return the whole blob; raises KeyError when it is missing."""

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    def keys(self) -> AsyncIterator[str]:
        """Every stored key (for fsck and garbage collection)."""

    async def response(self, key: str, headers: dict[str, str]) -> Response | None:
        """A streaming response for the blob, or None when it is missing."""

    async def ping(self) -> None:
        """Raise when the store is unreachable."""


def open_blob_store(settings) -> BlobStore:
    """The store named by ``settings.resolved_storage_url`` (file:///path or s3://bucket/prefix)."""
    url = settings.resolved_storage_url
    if url.startswith("file://"):
        from ketch.blobs.files import FileBlobStore

        return FileBlobStore.from_url(url)
    if url.startswith("s3://"):
        from ketch.blobs.s3 import S3BlobStore

        return S3BlobStore.from_url(
            url, endpoint_url=settings.s3_endpoint_url, access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key, region=settings.s3_region,
            redirect=settings.s3_redirect, presign_expiry=settings.s3_presign_expiry,
            cache_bytes=settings.blob_cache_mb * 1024 * 1024)
    raise ValueError(f"unsupported storage URL {url!r} (expected file:///path or s3://bucket/prefix)")
