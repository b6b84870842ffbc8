"""Fabric registration and settings (what the spec assumes exists): the Extended Fabric
Model at ``/api/plugins/hedgehog/fabrics/``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from fgd_api.deps import (
    CONFIGURE_SYNC,
    NAME_PATTERN,
    TEXT_PATTERN,
    VIEW_SYNC,
    Caller,
    FabricId,
    get_caller,
    whole_number,
)
from fgd_api.errors import ERROR_RESPONSES
from fgd_api.routers.syncs import found, wait_for_own_write
from fgd_core.domain.fabric import DIRECTORY_PATTERN
from fgd_core.errors import FGDError
from fgd_core.events.redaction import shown_repository

router = APIRouter(
    prefix="/api/plugins/hedgehog/fabrics", tags=["fabrics"], responses=ERROR_RESPONSES
)


def _shown(fabric: dict[str, Any]) -> dict[str, Any]:
    """A fabric of the read model as shown: a repository URL stored with credentials before
    they were refused is shown without them."""
    return {**fabric, "repository": shown_repository(fabric.get("repository"))}


class FabricCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    repository: str = Field(
        min_length=1,
        max_length=500,
        pattern=TEXT_PATTERN,
        description="Git repository: an https:// (or http://) URL without credentials, a "
        "file:// URL or an absolute path, under one of fgd.repositories.allowed",
    )
    branch: str = Field("main", min_length=1, max_length=200, pattern=TEXT_PATTERN)
    gitops_directory: str = Field("gitops", min_length=1, max_length=500, pattern=DIRECTORY_PATTERN)
    sync_enabled: bool = True
    auto_sync_on_change: bool = False
    sync_interval_minutes: whole_number() = 60  # type: ignore[valid-type]
    id: whole_number() | None = Field(  # type: ignore[valid-type]
        None, description="Integer id (default: the next free one)"
    )


class FabricUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str | None = Field(None, min_length=1, max_length=100, pattern=NAME_PATTERN)
    repository: str | None = Field(None, min_length=1, max_length=500, pattern=TEXT_PATTERN)
    branch: str | None = Field(None, min_length=1, max_length=200, pattern=TEXT_PATTERN)
    gitops_directory: str | None = Field(
        None, min_length=1, max_length=500, pattern=DIRECTORY_PATTERN
    )
    sync_enabled: bool | None = None
    auto_sync_on_change: bool | None = None
    sync_interval_minutes: whole_number() | None = None  # type: ignore[valid-type]


@router.post("/", status_code=201)
def create_fabric(
    body: FabricCreate, response: Response, caller: Caller = Depends(get_caller)
) -> dict[str, Any]:
    caller.require(CONFIGURE_SYNC, None, "create_fabric")
    settings = body.model_dump(exclude={"id"})
    try:
        fabric = caller.container.app.register_fabric(
            fabric_id=body.id, correlation_id=caller.correlation_id or "", initial_sync=True,
            **settings,
        )
    except FGDError as exc:
        caller.audit(
            "create_fabric", body.id, success=False, error=exc.message, details={"name": body.name}
        )
        raise
    first = fabric.running_sync_id  # the fabric_created sync registration started
    caller.audit(
        "create_fabric", fabric.fabric_id, success=True, sync_id=first,
        details={"name": body.name, "initial_sync": first},
    )
    if first is not None:
        caller.container.executor.submit(first)
    wait_for_own_write(caller, response)
    shown = _shown(found(caller.container.read_model.fabric(fabric.fabric_id), "fabric"))
    return {**shown, "initial_sync": initial_sync(first, body.sync_enabled)}


def initial_sync(sync_id: str | None, sync_enabled: bool) -> dict[str, Any] | None:
    """What registration says about the fabric's first sync: the ``fabric_created`` sync it
    started, or (every slot of max_concurrent_syncs taken) that the scheduler starts it;
    None when the fabric was registered suspended."""
    if sync_id is not None:
        return {
            "sync_id": sync_id,
            "trigger": "fabric_created",
            "status": "started",
            "tracking_url": f"/api/plugins/hedgehog/sync-status/{sync_id}/",
        }
    if sync_enabled:
        return {"sync_id": None, "trigger": "fabric_created", "status": "deferred",
                "tracking_url": None}
    return None


@router.get("/")
def list_fabrics(caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    if caller.principal is None:
        caller.require(VIEW_SYNC, None, "list_fabrics")
    allowed = caller.principal.fabrics_with(VIEW_SYNC)  # type: ignore[union-attr]
    fabrics = [
        _shown(f)
        for f in caller.container.read_model.fabrics()
        if allowed is None or f["id"] in allowed
    ]
    return {"count": len(fabrics), "next": None, "previous": None, "results": fabrics}


@router.get("/{fabric_id}/")
def get_fabric(fabric_id: FabricId, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    caller.require(VIEW_SYNC, fabric_id, "view_fabric")
    fabric = caller.container.read_model.fabric(fabric_id)
    return _shown(found(fabric, f"fabric {fabric_id}", fabric_id=fabric_id))


@router.patch("/{fabric_id}/")
def update_fabric(
    fabric_id: FabricId,
    body: FabricUpdate,
    response: Response,
    caller: Caller = Depends(get_caller),
) -> dict[str, Any]:
    caller.require(CONFIGURE_SYNC, fabric_id, "update_fabric")
    changes = body.model_dump(exclude_none=True)
    try:
        caller.container.app.update_fabric(
            fabric_id, correlation_id=caller.correlation_id or "", **changes
        )
    except FGDError as exc:
        caller.audit(
            "update_fabric",
            fabric_id,
            success=False,
            error=exc.message,
            details={"changes": sorted(changes)},
        )
        raise
    caller.audit("update_fabric", fabric_id, success=True, details={"changes": changes})
    wait_for_own_write(caller, response)
    return _shown(found(caller.container.read_model.fabric(fabric_id), "fabric"))


class DeleteResponse(BaseModel):
    success: bool
    message: str
    fabric_id: int
    cancelled_sync_id: str | None


@router.delete("/{fabric_id}/", response_model=DeleteResponse)
def delete_fabric(
    fabric_id: FabricId, response: Response, caller: Caller = Depends(get_caller)
) -> dict[str, Any]:
    """Delete the fabric: a running sync is cancelled first (named in the answer); its
    history stays (the event log, sync status, sync history); its repository is not
    touched. Its repository + branch + directory may be registered again, as a new fabric
    with a new id (ids are never reused)."""
    caller.require(CONFIGURE_SYNC, fabric_id, "delete_fabric")
    user = caller.principal.user if caller.principal else "unknown"
    try:
        fabric = caller.container.app.delete_fabric(
            fabric_id, correlation_id=caller.correlation_id or "",
            reason=f"fabric {fabric_id} deleted by {user}",
        )
    except FGDError as exc:
        caller.audit("delete_fabric", fabric_id, success=False, error=exc.message,
                     details={"code": exc.code})
        raise
    cancelled = fabric.cancelled_sync_id
    caller.audit("delete_fabric", fabric_id, success=True, sync_id=cancelled,
                 details={"name": fabric.name, "cancelled_sync_id": cancelled})
    wait_for_own_write(caller, response)
    return {"success": True, "message": f"Fabric {fabric_id} deleted", "fabric_id": fabric_id,
            "cancelled_sync_id": cancelled}


def _set_enabled(
    fabric_id: int, enabled: bool, action: str, response: Response, caller: Caller
) -> dict[str, Any]:
    caller.require(CONFIGURE_SYNC, fabric_id, action)
    app = caller.container.app
    command = app.resume_fabric if enabled else app.suspend_fabric
    try:
        command(fabric_id, correlation_id=caller.correlation_id or "")
    except FGDError as exc:
        caller.audit(action, fabric_id, success=False, error=exc.message)
        raise
    caller.audit(action, fabric_id, success=True, details={"sync_enabled": enabled})
    wait_for_own_write(caller, response)
    return _shown(found(caller.container.read_model.fabric(fabric_id), "fabric"))


@router.post("/{fabric_id}/suspend/")
def suspend_fabric(
    fabric_id: FabricId, response: Response, caller: Caller = Depends(get_caller)
) -> dict[str, Any]:
    """Suspend: ``sync_enabled`` becomes false (as a PATCH would set it). No sync is started
    while suspended — scheduled and webhook syncs are not, a trigger is refused with 409
    FGD_3004 (``details.reason`` ``fabric_suspended``); a running sync runs to its end."""
    return _set_enabled(fabric_id, False, "suspend_fabric", response, caller)


@router.post("/{fabric_id}/resume/")
def resume_fabric(
    fabric_id: FabricId, response: Response, caller: Caller = Depends(get_caller)
) -> dict[str, Any]:
    """Resume: ``sync_enabled`` becomes true; the scheduler syncs it when it is due (at
    once if it never synced: a ``fabric_created`` sync)."""
    return _set_enabled(fabric_id, True, "resume_fabric", response, caller)
