"""A bounded in-process cache of small blobs."""

from __future__ import annotations

from collections import OrderedDict


class BlobCache:
    """Recently served small blobs of this process, bounded by bytes (least recently used go first).

    Keys are content addresses, so a cached body never goes stale. Used twice: by the S3 store
    (a GET from the bucket costs a network round trip: 1,000 vs 12,000 small tarballs/s on the
    2-core dev box) and by the hot path, which sends a cached tarball without a file open, stat
    and thread-pool read per request. Installs fetch the same popular versions over and over.
    """

    def __init__(self, max_bytes: int, max_item: int = 1024 * 1024):
        self.max_bytes = max_bytes
        self.max_item = min(max_item, max_bytes // 8)
        self.bytes = 0
        self._items: OrderedDict[str, tuple[bytes, dict[str, str]]] = OrderedDict()

    def fits(self, size: int) -> bool:
        return size <= self.max_item

    def get(self, key: str) -> tuple[bytes, dict[str, str]] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, body: bytes, headers: dict[str, str]) -> None:
        self.discard(key)
        self._items[key] = (body, headers)
        self.bytes += len(body)
        while self.bytes > self.max_bytes:
            _, (old, _) = self._items.popitem(last=False)
            self.bytes -= len(old)

    def discard(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.bytes -= len(item[0])
