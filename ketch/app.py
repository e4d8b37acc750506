"""ASGI application factory: mounts each domain's routes in a fixed order, plus lifespan and errors.

Layers, outermost first: Observability (metrics, access log) → FastPath (public package reads
from the in-process cache) → Starlette (every other route).
"""

from __future__ import annotations

import asyncio
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
from ketch.ops import api as ops_api
from ketch.orgs import api as orgs_api
from ketch.ops.metrics import DB_POOL
from ketch.ops.observe import Observability
from ketch.registry import api as registry_api
from ketch.registry.fastpath import FastPath, PackumentCache

log = logging.getLogger("ketch")
POOL_SAMPLE_SECONDS = 5


def create_app(settings: Settings | None = None) -> Observability:
    settings = settings or Settings()
    observed: Observability

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        db = Database(settings.resolved_database_url)
        if db.changes is not None:
            db.changes.bump_epoch()  # a restarted worker must not leave others trusting old copies
        app.state.ketch = Context(settings=settings, db=db, blobs=open_blob_store(settings))
        app.state.ketch.caches["packuments"] = PackumentCache(db, settings.packument_cache_mb * 1024 * 1024)
        sampler = asyncio.get_running_loop().create_task(_sample_pool(db))
        try:
            yield
        finally:
            sampler.cancel()
            observed.flush()
            await db.dispose()

    routes = [
        *ops_api.routes,
        *accounts_api.routes,
        *accounts_views.routes,
        *orgs_api.routes,
        *registry_api.routes,
        registry_api.package_route,  # last: every other path is a package name
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers())
    observed = Observability(FastPath(starlette), access_log=settings.access_log)
    return observed


async def _sample_pool(db: Database) -> None:
    pool = db.engine.pool
    while hasattr(pool, "checkedout"):
        DB_POOL.labels("checked_out").set(pool.checkedout())
        DB_POOL.labels("size").set(pool.size())
        await asyncio.sleep(POOL_SAMPLE_SECONDS)


def app_from_env() -> Observability:
    """Entry point for server worker processes: settings come from KETCH_* variables set by `ketch serve`."""
    return create_app(Settings())
