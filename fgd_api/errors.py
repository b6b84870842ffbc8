"""Every error leaves the API as the spec's error body with an HTTP status that fits it."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from fgd_core.errors import FGDError, FGDErrorCodes, NotFoundError, error_body
from fgd_core.ingestion.input_guard import bounded, sanitized

log = logging.getLogger("fgd_api")

# FGD code → HTTP status. Validation errors of a request are 422; a missing object is 404.
STATUS_BY_CODE = {
    FGDErrorCodes.INVALID_YAML: 422,
    FGDErrorCodes.UNSUPPORTED_RESOURCE: 422,
    FGDErrorCodes.VALIDATION_FAILED: 422,
    FGDErrorCodes.SCHEMA_MISMATCH: 500,  # we produced an event our own schemas reject
    FGDErrorCodes.DIRECTORY_NOT_FOUND: 404,  # the fabric's GitOps (or raw/) directory
    FGDErrorCodes.DIRECTORY_PERMISSION_DENIED: 409,
    FGDErrorCodes.DIRECTORY_INITIALIZATION_FAILED: 409,
    FGDErrorCodes.DIRECTORY_REPAIR_FAILED: 409,
    FGDErrorCodes.SYNC_ALREADY_IN_PROGRESS: 409,
    FGDErrorCodes.SYNC_TIMEOUT: 409,
    FGDErrorCodes.SYNC_CANCELLED: 409,
    FGDErrorCodes.SYNC_FAILED: 409,
    # The git host is down: a bad gateway. Refused credentials or a missing repository are
    # the fabric's configuration, not an outage: a conflict with its current settings.
    FGDErrorCodes.GITHUB_CONNECTION_FAILED: 502,
    FGDErrorCodes.GITHUB_AUTHENTICATION_FAILED: 409,
    FGDErrorCodes.GITHUB_RATE_LIMITED: 429,
    FGDErrorCodes.GITHUB_NOT_FOUND: 409,
    FGDErrorCodes.INTERNAL_ERROR: 500,
    FGDErrorCodes.DATABASE_ERROR: 503,
    FGDErrorCodes.REDIS_CONNECTION_FAILED: 503,
    FGDErrorCodes.WORKER_POOL_EXHAUSTED: 503,
}


def status_for(exc: FGDError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    explicit = getattr(exc, "http_status", None)
    return int(explicit) if explicit else STATUS_BY_CODE.get(exc.code, 500)


# An error body echoes client input (a path's sync id, a field name, a file path): its
# message keeps MESSAGE_CHARS characters, every string in its details ECHO_CHARS (200).
MESSAGE_CHARS = 300
PROBLEMS_LISTED = 20


def bounded_body(body: dict[str, Any]) -> dict[str, Any]:
    """The spec's error body with what it echoes cut and made storable (``input_guard``)."""
    error = body["error"]
    error["message"] = sanitized(error["message"], MESSAGE_CHARS)
    error["details"] = bounded(error["details"])
    return body


def correlation_id(request: Request) -> str | None:
    return getattr(request.state, "correlation_id", None)


def fgd_response(request: Request, exc: FGDError) -> JSONResponse:
    status = status_for(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Token"
    if status == 429 and exc.details.get("retry_after_seconds"):
        headers["Retry-After"] = str(exc.details["retry_after_seconds"])
    return JSONResponse(
        bounded_body(exc.to_body(correlation_id(request))), status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(FGDError)
    async def on_fgd_error(request: Request, exc: FGDError) -> JSONResponse:
        return fgd_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        problems = [  # a field name may be a client's key: cut, like every echo
            {"field": sanitized(".".join(str(p) for p in e["loc"]), 100),
             "problem": sanitized(e["msg"])}
            for e in errors[:PROBLEMS_LISTED]
        ]
        details: dict[str, Any] = {"problems": problems}
        if len(errors) > PROBLEMS_LISTED:
            details["more_problems"] = len(errors) - PROBLEMS_LISTED
        body = error_body(
            FGDErrorCodes.VALIDATION_FAILED,
            "invalid request: " + "; ".join(f"{p['field']}: {p['problem']}" for p in problems),
            details,
            correlation_id(request),
        )
        return JSONResponse(bounded_body(body), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = FGDErrorCodes.VALIDATION_FAILED if exc.status_code < 500 else "FGD_5001"
        body = error_body(code, str(exc.detail), {}, correlation_id(request))
        return JSONResponse(bounded_body(body), status_code=exc.status_code)

    @app.exception_handler(PersistenceError)
    @app.exception_handler(psycopg.Error)
    async def on_database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return database_down(correlation_id(request), type(exc).__name__)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"correlation_id": correlation_id(request)})
        body = error_body(
            FGDErrorCodes.INTERNAL_ERROR, "internal error", {}, correlation_id(request)
        )
        return JSONResponse(body, status_code=500)


def database_down(cid: str | None, error: str = "unreachable") -> JSONResponse:
    body = error_body(
        FGDErrorCodes.DATABASE_ERROR,
        "the database is unavailable; retry shortly",
        {"error": error},
        cid,
    )
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


class _ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any]
    timestamp: str
    correlation_id: str


class ErrorBody(BaseModel):
    """The spec's "Standard Error Response"."""

    error: _ErrorDetail


def _described(text: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": text}


# What any endpoint may answer besides its success (documented in the OpenAPI document).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _described("no or invalid token"),
    403: _described("the token lacks the permission (for this fabric)"),
    404: _described("unknown fabric or sync"),
    409: _described(
        "conflicts with the current state: a sync is running (FGD_3001), the fabric's "
        "repository is missing (FGD_4004) or refuses our credentials (FGD_4002) …"
    ),
    422: _described("invalid request (FGD_1003)"),
    429: _described("the git host rate-limits us (FGD_4003)"),
    500: _described("internal error (FGD_5001)"),
    502: _described("the git host cannot be reached (FGD_4001)"),
    503: _described("the database or broker is unavailable (FGD_5002/5003)"),
}


def problem(message: str, **details: Any) -> dict[str, Any]:
    return {"message": message, **details}
