"""ASGI application factory: mounts each domain's routes in a fixed order, plus lifespan and errors."""

from __future__ import annotations

import contextlib
import logging

from starlette.applications import Starlette

from ketch.accounts import api as accounts_api
from ketch.accounts import views as accounts_views
from ketch.blobs import open_blob_store
from ketch.config import Settings
from ketch.context import Context
from ketch.db import Database
from ketch.http.errors import exception_handlers
from ketch.registry import api as registry_api
from ketch.registry.fastpath import FastPath, PackumentCache

log = logging.getLogger("ketch")


def create_app(settings: Settings | None = None) -> FastPath:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        db = Database(settings.resolved_database_url)
        if db.changes is not None:
            db.changes.bump_epoch()  # a restarted worker must not leave others trusting old copies
        app.state.ketch = Context(settings=settings, db=db, blobs=open_blob_store(settings.resolved_storage_url))
        app.state.ketch.caches["packuments"] = PackumentCache(db, settings.packument_cache_mb * 1024 * 1024)
        try:
            yield
        finally:
            await db.dispose()

    routes = [
        *accounts_api.routes,
        *accounts_views.routes,
        *registry_api.routes,
        registry_api.package_route,  # last: every other path is a package name
    ]
    return FastPath(Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers()))


def app_from_env() -> Starlette:
    """Entry point for server worker processes: settings come from KETCH_* variables set by `ketch serve`."""
    return create_app(Settings())
