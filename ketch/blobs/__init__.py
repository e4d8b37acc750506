"""Content-addressed tarball storage behind one small interface.

Keys are derived from the SHA-512 of the bytes (:func:`blob_key`), so writes are idempotent and a
retried or racing upload of the same bytes can never corrupt a stored blob.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from starlette.responses import Response


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


def open_blob_store(url: str) -> BlobStore:
    if url.startswith("file://"):
        from ketch.blobs.files import FileBlobStore

        return FileBlobStore.from_url(url)
    raise ValueError(f"unsupported storage URL {url!r} (expected file:///path)")
