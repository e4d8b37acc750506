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


def ctx(request: Request) -> Context:
    return request.app.state.ketch


def base_url(request: Request) -> str:
    """The registry's base URL as this client reached it (no trailing slash)."""
    settings = ctx(request).settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    if not _safe_host(host):
        host = f"{settings.host}:{settings.port}"
    return f"{request.url.scheme}://{host}{request.scope.get('root_path', '')}".rstrip("/")


def _safe_host(host: str) -> bool:
    return 0 < len(host) <= 255 and all(c.isalnum() or c in ".-:[]_" for c in host)
