"""ASGI application factory: mounts each domain's routes in a fixed order, plus lifespan and errors.

Layers, outermost first: Observability (metrics, access log) → WebPages (browser pages on package
URLs, see ketch.web.layer) → FastPath (public package reads
from the in-process cache) → Starlette (every other route).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from starlette.applications import Starlette

from ketch.accounts import api as accounts_api
from ketch.accounts import views as accounts_views
from ketch.accounts import web_routes as account_pages
from ketch.blobs import open_blob_store
from ketch.blobs.cache import BlobCache
from ketch.config import Settings
from ketch.context import Context
from ketch.feed import api as feed_api
from ketch.db import Database
from ketch.http.errors import exception_handlers
from ketch.ops import api as ops_api
from ketch.orgs import api as orgs_api
from ketch.ops.metrics import DB_POOL
from ketch.ops.observe import Observability
from ketch.proxy.routing import Router
from ketch.proxy.services import open_proxy
from ketch.registry import api as registry_api
from ketch.registry.fastpath import FastPath, PackumentCache
from ketch.search import api as search_api
from ketch.stats import api as stats_api
from ketch.stats import counter as stats_counter
from ketch.web import views as web_views
from ketch.web.layer import WebPages

log = logging.getLogger("ketch")
POOL_SAMPLE_SECONDS = 5
BACKGROUND_DRAIN_SECONDS = 5
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def create_app(settings: Settings | None = None) -> Observability:
    settings = settings or Settings()
    observed: Observability

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        db = Database(settings.resolved_database_url)
        if db.changes is not None:
            db.changes.bump_epoch()  # a restarted worker must not leave others trusting old copies
        app.state.ketch = Context(settings=settings, db=db, blobs=open_blob_store(settings))
        packuments = PackumentCache(db, settings.packument_cache_mb * 1024 * 1024, settings,
                                    Router(settings) if settings.uplinks else None)
        app.state.ketch.caches["packuments"] = packuments
        app.state.ketch.proxy = proxy = open_proxy(settings, db, app.state.ketch.blobs, packuments)
        bookkeeping = asyncio.get_running_loop().create_task(proxy.run_bookkeeping()) if proxy else None
        app.state.ketch.caches["tarballs"] = BlobCache(settings.blob_cache_mb * 1024 * 1024)
        sampler = asyncio.get_running_loop().create_task(_sample_pool(db))
        downloads = stats_counter.start(app.state.ketch) if settings.count_downloads else None
        try:
            yield
        finally:
            # The server calls this only after its requests in flight have finished (granian drains
            # them first). What they started in the background (token bookkeeping, emails) still
            # needs the database, so it gets a bounded time before the pool goes.
            sampler.cancel()
            if proxy is not None:
                bookkeeping.cancel()
                await proxy.close()
            if downloads is not None:
                await downloads.stop()  # before the drain below, which would otherwise wait on its loop
            await _drain_background(BACKGROUND_DRAIN_SECONDS, skip={sampler, bookkeeping})
            observed.flush()
            await db.dispose()

    routes = [
        *ops_api.routes,
        *accounts_api.routes,
        *accounts_views.routes,
        *account_pages.routes,
        *orgs_api.routes,
        *search_api.routes,
        *stats_api.routes,
        *feed_api.routes,
        *web_views.routes,
        *registry_api.routes,
        registry_api.package_route,  # last: every other path is a package name
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers())
    observed = Observability(WebPages(FastPath(starlette)), access_log=settings.access_log)
    return observed


def _is_ketch_task(task: asyncio.Task) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and code.co_filename.startswith(_PACKAGE_DIR)


async def _drain_background(timeout: float, skip: set[asyncio.Task] = frozenset()) -> None:
    """Wait up to ``timeout`` seconds for Ketch's own fire-and-forget tasks, then cancel the rest."""
    deadline = asyncio.get_running_loop().time() + timeout
    me = asyncio.current_task()
    while True:
        pending = {t for t in asyncio.all_tasks() if t is not me and t not in skip and not t.done()
                   and _is_ketch_task(t)}
        remaining = deadline - asyncio.get_running_loop().time()
        if not pending:
            return
        if remaining <= 0:
            for task in pending:
                log.warning("shutdown: cancelling unfinished background task %s", task.get_coro().__qualname__)
                task.cancel()
            await asyncio.wait(pending, timeout=1)
            return
        await asyncio.wait(pending, timeout=remaining)


async def _sample_pool(db: Database) -> None:
    pool = db.engine.pool
    while hasattr(pool, "checkedout"):
        DB_POOL.labels("checked_out").set(pool.checkedout())
        DB_POOL.labels("size").set(pool.size())
        await asyncio.sleep(POOL_SAMPLE_SECONDS)


def app_from_env() -> Observability:
    """Entry point for server worker processes: settings come from KETCH_* variables set by `ketch serve`."""
    return create_app(Settings())
