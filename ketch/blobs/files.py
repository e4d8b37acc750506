"""Blobs as files under a directory: write to a temporary file, fsync, rename into place."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from starlette.responses import FileResponse, Response


class FileBlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)

    @classmethod
    def from_url(cls, url: str) -> FileBlobStore:
        return cls(Path(unquote(urlparse(url).path)))

    def _path(self, key: str) -> Path:
        if ".." in key or key.startswith("/"):
            raise ValueError("bad blob key")
        return self.root / key

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put_sync, key, data)

    def _put_sync(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists() and path.stat().st_size == len(data):
            return  # content-addressed: same key, same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with _suppress():
                os.unlink(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise KeyError(key) from None

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def delete(self, key: str) -> None:
        with _suppress():
            self._path(key).unlink()

    async def keys(self) -> AsyncIterator[str]:
        base = self.root / "sha512"
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                yield os.path.relpath(os.path.join(dirpath, name), self.root)

    async def response(self, key: str, headers: dict[str, str]) -> Response | None:
        path = self._path(key)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return None
        return FileResponse(path, headers=headers, media_type="application/octet-stream", stat_result=stat)

    async def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"blob directory {self.root} is not writable")


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)
