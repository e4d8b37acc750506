"""The per-process objects every request handler needs, stored on ``app.state.ketch``."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from ketch.blobs import BlobStore
from ketch.config import Settings
from ketch.db import Database


@dataclass
class Context:
    settings: Settings
    db: Database
    blobs: BlobStore
    caches: dict = field(default_factory=dict)
    proxy: object | None = None  # ketch.proxy.services.Proxy when uplinks are configured


def ctx(request: Request) -> Context:
    return request.app.state.ketch


def base_url(request: Request) -> str:
    """The registry's base URL as this client reached it (no trailing slash)."""
    settings = ctx(request).settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    if not safe_host(host):
        host = f"{settings.host}:{settings.port}"
    return f"{request.url.scheme}://{host}{request.scope.get('root_path', '')}".rstrip("/")


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]_")


def safe_host(host: str) -> bool:
    """Whether a Host header may go into URLs we hand out (no quotes, slashes or other injection)."""
    return 0 < len(host) <= 255 and all(c in _HOST_CHARS for c in host)
