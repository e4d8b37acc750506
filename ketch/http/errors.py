"""Errors in npm's JSON shape: ``{"error": "<human text>"}``, with the status codes npm reacts to.

npm prints only ``error``; yarn 1 falls back to ``message``; so both carry the same text.
"""

from __future__ import annotations

import logging

import orjson
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from ketch.blobs import BlobStoreUnavailable
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("ketch.errors")


class ApiError(Exception):
    def __init__(self, status: int, error: str, *, headers: dict[str, str] | None = None, reason: str | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or {}
        self.reason = reason


def BadRequest(error: str) -> ApiError:  # noqa: N802 - reads like a status name at the raise site
    return ApiError(400, error)


def Forbidden(error: str) -> ApiError:  # noqa: N802
    return ApiError(403, error)


def NotFound(error: str = "Not found") -> ApiError:  # noqa: N802
    return ApiError(404, error)


def Conflict(error: str) -> ApiError:  # noqa: N802
    return ApiError(409, error)


def Unauthorized(error: str = "You must be logged in to do that.", scheme: str | None = None) -> ApiError:  # noqa: N802
    return ApiError(401, error, headers={"www-authenticate": scheme} if scheme else None)


def json_error(status: int, error: str, headers: dict[str, str] | None = None, reason: str | None = None) -> Response:
    body = {"error": error, "message": error}
    if reason:
        body["reason"] = reason
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


NOT_FOUND_BODY = orjson.dumps({"error": "Not found", "message": "Not found"})


def not_found() -> Response:
    """The one 404 answer for every missing or hidden resource: byte-identical, so nothing leaks."""
    return Response(NOT_FOUND_BODY, status_code=404, media_type="application/json")


async def api_error_handler(request: Request, exc: ApiError) -> Response:
    if exc.status == 404 and exc.error == "Not found":
        return not_found()
    return json_error(exc.status, exc.error, exc.headers, exc.reason)


async def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    text = exc.detail if isinstance(exc.detail, str) else "Error"
    if exc.status_code == 404:
        return not_found()
    return json_error(exc.status_code, text, dict(exc.headers or {}))


async def unavailable_handler(request: Request, exc: Exception) -> Response:
    log.warning("dependency unavailable on %s %s: %s", request.method, request.url.path, exc)
    return json_error(503, "Service temporarily unavailable, please retry.", {"retry-after": "5"})


async def conflict_handler(request: Request, exc: Exception) -> Response:
    log.info("write conflict on %s %s: %s", request.method, request.url.path, exc)
    return json_error(409, "Conflict with a concurrent change; please retry.")


async def server_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_error(500, "Internal server error")


def exception_handlers() -> dict:
    return {
        ApiError: api_error_handler,
        HTTPException: http_exception_handler,
        OperationalError: unavailable_handler,
        InterfaceError: unavailable_handler,
        PoolTimeout: unavailable_handler,
        ConnectionError: unavailable_handler,
        BlobStoreUnavailable: unavailable_handler,
        IntegrityError: conflict_handler,
        Exception: server_error_handler,
    }
