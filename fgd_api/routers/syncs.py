"""Sync management: trigger, status, cancel, history (the spec's "Sync Management APIs")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from fgd_api.deps import (
    CANCEL_SYNC,
    FORCE_SYNC,
    PRINTABLE_PATTERN,
    TRIGGER_SYNC,
    VIEW_HISTORY,
    VIEW_SYNC,
    Caller,
    FabricId,
    SyncId,
    get_caller,
)
from fgd_api.errors import ERROR_RESPONSES
from fgd_core.errors import FGDError, NotFoundError
from fgd_core.ingestion.input_guard import sanitized

router = APIRouter(prefix="/api/plugins/hedgehog", tags=["syncs"], responses=ERROR_RESPONSES)
READ_TIMEOUT = 5.0


class SyncOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    force_refresh: bool = False
    validate_only: bool = False
    include_github_sync: bool = True


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trigger: Literal["manual", "webhook", "scheduled", "fabric_created"] = "manual"
    options: SyncOptions = Field(default_factory=SyncOptions)


class TriggerResponse(BaseModel):
    success: bool
    sync_id: str
    status: str
    message: str
    tracking_url: str


class CancelResponse(BaseModel):
    success: bool
    message: str
    final_state: str


def wait_for_own_write(caller: Caller, response: Response) -> None:
    """Read-your-writes: answer only once the read model holds this request's write."""
    position = caller.container.app.last_position()
    if position:
        caller.container.read_model.wait_for(position, timeout=READ_TIMEOUT)
        response.headers["X-FGD-Position"] = str(position)


def found(value: Any, what: str, **details: Any) -> Any:
    if value is None:
        raise NotFoundError(f"{what} not found", details=details)
    return value


def sync_fabric_id(caller: Caller, sync_id: str) -> int:
    status = found(
        caller.container.read_model.sync_status(sync_id), f"sync {sanitized(sync_id, 100)}",
        sync_id=sync_id,
    )
    return int(status["fabric_id"])


@router.post("/fabrics/{fabric_id}/gitops-sync/", response_model=TriggerResponse, status_code=202)
def trigger_sync(
    fabric_id: FabricId,
    body: TriggerRequest,
    response: Response,
    caller: Caller = Depends(get_caller),
) -> dict[str, Any]:
    caller.require(TRIGGER_SYNC, fabric_id, "trigger_sync")
    if body.options.force_refresh:
        caller.require(FORCE_SYNC, fabric_id, "trigger_sync")
    container = caller.container
    try:
        # A repeated X-Correlation-ID names the same request: answered with its sync.
        started = container.app.request_sync(
            fabric_id, body.trigger, body.options.model_dump(), caller.correlation_id
        )
    except FGDError as exc:
        caller.audit(
            "trigger_sync",
            fabric_id,
            success=False,
            error=exc.message,
            details={"code": exc.code, **exc.details},
        )
        raise
    sync = started.sync
    caller.request.state.sync_correlation_id = sync.correlation_id
    details = {"trigger": body.trigger, "options": body.options.model_dump()}
    caller.audit(
        "trigger_sync",
        fabric_id,
        success=True,
        sync_id=sync.sync_id,
        details={**details, "status": "duplicate"} if started.duplicate else details,
    )
    if not started.duplicate:
        container.executor.submit(sync.sync_id)
    wait_for_own_write(caller, response)
    return {
        "success": True,
        "sync_id": sync.sync_id,
        "status": "started",
        "message": "Sync operation already started by this correlation id"
        if started.duplicate
        else "Sync operation started",
        "tracking_url": f"/api/plugins/hedgehog/sync-status/{sync.sync_id}/",
    }


# The two hot reads are ``async``: with a read model that reads on the event loop
# (PostgreSQL, ``sync_status_async``) a request needs no worker thread at all; anything
# that blocks (another read model, the audit of a denial) goes to a worker thread.


@router.get("/sync-status/{sync_id}/")
async def sync_status(sync_id: SyncId, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    if caller.principal is None:
        await caller.require_async(VIEW_SYNC, None, "view_sync")
    read_model = caller.container.read_model
    reader = getattr(read_model, "sync_status_async", None)
    if reader is not None:
        status = await reader(sync_id)
    else:
        status = await anyio.to_thread.run_sync(read_model.sync_status, sync_id)
    status = found(status, f"sync {sanitized(sync_id, 100)}", sync_id=sync_id)
    await caller.require_async(VIEW_SYNC, int(status["fabric_id"]), "view_sync")
    return status  # type: ignore[no-any-return]


@router.post("/sync-status/{sync_id}/cancel/", response_model=CancelResponse)
def cancel_sync(
    sync_id: SyncId, response: Response, caller: Caller = Depends(get_caller)
) -> dict[str, Any]:
    if caller.principal is None:
        caller.require(CANCEL_SYNC, None, "cancel_sync")
    fabric_id = sync_fabric_id(caller, sync_id)
    caller.require(CANCEL_SYNC, fabric_id, "cancel_sync")
    try:
        user = caller.principal.user if caller.principal else "unknown"
        sync = caller.container.app.cancel_sync(sync_id, f"cancelled by {user}")
    except FGDError as exc:
        caller.audit("cancel_sync", fabric_id, success=False, sync_id=sync_id, error=exc.message)
        raise
    caller.audit("cancel_sync", fabric_id, success=True, sync_id=sync_id)
    wait_for_own_write(caller, response)
    return {"success": True, "message": "Sync operation cancelled", "final_state": sync.state}


# The history page is answered pre-encoded (orjson, the same JSON FastAPI would write for
# this dict); ``response_model`` keeps the route's OpenAPI description as it was.
@router.get("/fabrics/{fabric_id}/sync-history/", response_model=dict[str, Any])
async def sync_history(
    fabric_id: FabricId,
    request: Request,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31 - 1),
    status: str | None = Query(None, max_length=100, pattern=PRINTABLE_PATTERN),
    start_date: datetime | None = Query(None),
    end_date: datetime | None = Query(None),
    caller: Caller = Depends(get_caller),
) -> Response:
    await caller.require_async(VIEW_HISTORY, fabric_id, "view_history")
    read_model = caller.container.read_model
    args = (fabric_id, limit, offset, status, start_date, end_date)
    reader = getattr(read_model, "sync_history_async", None)
    if reader is not None:  # 404 for an unknown fabric included, in the same statement
        page = await reader(*args)
    else:

        def history() -> dict[str, Any]:  # 404 for an unknown fabric (not a deleted one)
            return read_model.sync_history(*args)  # type: ignore[no-any-return]

        page = await anyio.to_thread.run_sync(history)
    body = {**page_links(request, limit, offset, page["count"]), "results": page["results"]}
    return Response(orjson.dumps(body), media_type="application/json")


def page_links(request: Request, limit: int, offset: int, count: int) -> dict[str, Any]:
    """NetBox-style ``count``/``next``/``previous``, keeping the request's other filters."""
    base = request.url.path
    filters = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}

    def link(new_offset: int) -> str:
        return f"{base}?{urlencode({**filters, 'limit': limit, 'offset': new_offset})}"

    return {
        "count": count,
        "next": link(offset + limit) if offset + limit < count else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
    }
