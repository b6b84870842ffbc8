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
            fabric_id=body.id, correlation_id=caller.correlation_id or "", **settings
        )
    except FGDError as exc:
        caller.audit(
            "create_fabric", body.id, success=False, error=exc.message, details={"name": body.name}
        )
        raise
    caller.audit("create_fabric", fabric.fabric_id, success=True, details={"name": body.name})
    wait_for_own_write(caller, response)
    return _shown(found(caller.container.read_model.fabric(fabric.fabric_id), "fabric"))


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
