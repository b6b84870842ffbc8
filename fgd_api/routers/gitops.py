"""Directory and file management (the spec's "Directory Management" and "File Management"
APIs) on a fabric's repository."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from fgd_api.deps import (
    CONFIGURE_SYNC,
    REPAIR_DIRECTORY,
    TRIGGER_SYNC,
    VIEW_SYNC,
    Caller,
    FabricId,
    get_caller,
    guarded_text,
)
from fgd_api.errors import ERROR_RESPONSES
from fgd_api.routers.syncs import wait_for_own_write
from fgd_core.errors import FGDError
from fgd_core.ingestion.input_guard import FILE_PATH, IDENTIFIER

router = APIRouter(
    prefix="/api/plugins/hedgehog/fabrics/{fabric_id}", tags=["gitops"], responses=ERROR_RESPONSES
)


class InitializeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    force: bool = False
    create_samples: bool = True


class RepairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    issues: list[guarded_text(IDENTIFIER)] = Field([], max_length=50)  # type: ignore[valid-type]
    auto_detect: bool = True


class ProcessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    file_path: guarded_text(FILE_PATH)  # type: ignore[valid-type]
    validate_only: bool = False


def _audited(caller: Caller, action: str, fabric_id: int, work: Any, **details: Any) -> Any:
    try:
        result = work()
    except FGDError as exc:
        caller.audit(
            action,
            fabric_id,
            success=False,
            error=exc.message,
            details={"code": exc.code, **details},
        )
        raise
    sync_id = result.get("sync_id") if isinstance(result, dict) else None
    caller.audit(action, fabric_id, success=True, sync_id=sync_id, details=details)
    return result


@router.get("/gitops-directory/validate/")
def validate_directory(fabric_id: FabricId, caller: Caller = Depends(get_caller)) -> dict[str, Any]:
    caller.require(VIEW_SYNC, fabric_id, "validate_directory")
    report = caller.container.ops.validate_directory(fabric_id)
    return {k: report[k] for k in ("valid", "issues", "structure")}


@router.post("/gitops-directory/initialize/")
def initialize_directory(
    fabric_id: FabricId,
    body: InitializeRequest,
    response: Response,
    caller: Caller = Depends(get_caller),
) -> dict[str, Any]:
    caller.require(CONFIGURE_SYNC, fabric_id, "initialize_directory")
    result = _audited(
        caller,
        "initialize_directory",
        fabric_id,
        lambda: caller.container.ops.initialize_directory(
            fabric_id, force=body.force, create_samples=body.create_samples
        ),
        **body.model_dump(),
    )
    wait_for_own_write(caller, response)
    return result  # type: ignore[no-any-return]


@router.post("/gitops-directory/repair/")
def repair_directory(
    fabric_id: FabricId,
    body: RepairRequest,
    response: Response,
    caller: Caller = Depends(get_caller),
) -> dict[str, Any]:
    caller.require(REPAIR_DIRECTORY, fabric_id, "repair_directory")
    result = _audited(
        caller,
        "repair_directory",
        fabric_id,
        lambda: caller.container.ops.repair_directory(
            fabric_id, body.issues, auto_detect=body.auto_detect
        ),
        **body.model_dump(),
    )
    wait_for_own_write(caller, response)
    return result  # type: ignore[no-any-return]


@router.get("/gitops-files/")
def list_files(
    fabric_id: FabricId,
    directory: Literal["raw", "managed", "all"] = Query("all"),
    file_type: Literal["yaml", "yml", "all"] = Query("all"),
    include_content: bool = Query(False),
    caller: Caller = Depends(get_caller),
) -> dict[str, Any]:
    caller.require(VIEW_SYNC, fabric_id, "list_files")
    return caller.container.ops.list_files(  # type: ignore[no-any-return]
        fabric_id, directory, file_type, include_content
    )


@router.post("/gitops-files/process/")
def process_file(
    fabric_id: FabricId,
    body: ProcessRequest,
    response: Response,
    caller: Caller = Depends(get_caller),
) -> dict[str, Any]:
    caller.require(TRIGGER_SYNC, fabric_id, "process_file")
    result = _audited(
        caller,
        "process_file",
        fabric_id,
        lambda: caller.container.ops.process_file(fabric_id, body.file_path, body.validate_only),
        **body.model_dump(),
    )
    wait_for_own_write(caller, response)
    return result  # type: ignore[no-any-return]
