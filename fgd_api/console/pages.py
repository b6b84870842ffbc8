"""The console's read-only pages. Each calls the API's own endpoint function or read-model
query, with the API's ``Caller``: the same permission checks, denials audited the same way."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fgd_api.console import plan_preview
from fgd_api.console.render import render
from fgd_api.console.routing import ConsoleRoute
from fgd_api.console.session import console_caller
from fgd_api.console.views import (
    PAGE_SIZES,
    SYNC_STATES,
    abilities,
    day_bounds,
    history_filters,
    int_arg,
    timeline,
)
from fgd_api.deps import VIEW_HISTORY, Caller, FabricId
from fgd_api.projections.queries import _sync_row
from fgd_api.routers import audit, fabrics, gitops, health, syncs
from fgd_core.domain.sync_operation import FINAL_STATES

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)

MAX_CONTENT_BYTES = 256 * 1024  # a file shown on the files page (the rest is cut)


@router.get("/")
async def fabric_list(request: Request, caller: Caller = Depends(console_caller)) -> Response:
    listing = await run_in_threadpool(fabrics.list_fabrics, caller)
    can_register = caller.principal is not None and caller.principal.has_perm(
        fabrics.CONFIGURE_SYNC, None
    )
    return render(request, "fabrics.html", caller=caller, fabrics=listing["results"],
                  can_register=can_register, form={}, problems={})


async def fabric_page_context(
    request: Request, caller: Caller, fabric_id: int
) -> dict[str, Any]:
    fabric = await run_in_threadpool(fabrics.get_fabric, fabric_id, caller)
    assert caller.principal is not None
    can = abilities(caller.principal, fabric_id)
    filters = history_filters(request.query_params)
    history = None
    if can["history"]:
        await caller.require_async(VIEW_HISTORY, fabric_id, "view_history")
        start, end = day_bounds(filters)
        history = await caller.container.read_model.sync_history_async(
            fabric_id, filters["limit"], filters["offset"], filters["status"] or None, start, end
        )
    return {
        "caller": caller,
        "fabric": fabric,
        "can": can,
        "history": history,
        "filters": filters,
        "states": SYNC_STATES,
        "page_sizes": sorted({*PAGE_SIZES, filters["limit"]}),
        "result": None,
    }


@router.get("/fabrics/{fabric_id}/")
async def fabric_page(
    fabric_id: FabricId, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    context = await fabric_page_context(request, caller, fabric_id)
    return render(request, "fabric.html", **context)


@router.get("/fabrics/{fabric_id}/edit/")
async def fabric_edit(
    fabric_id: FabricId, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    fabric = await run_in_threadpool(fabrics.get_fabric, fabric_id, caller)
    await caller.require_async(fabrics.CONFIGURE_SYNC, fabric_id, "update_fabric")
    return render(request, "fabric_edit.html", caller=caller, fabric=fabric, form=fabric,
                  problems={})


def _sync_details(caller: Caller, sync_id: str) -> dict[str, Any]:
    read_model = caller.container.read_model
    files = read_model.file_records(sync_id)
    return {
        "files": files,
        "transitions": read_model.state_transitions(sync_id, with_timestamps=True),
        "summaries": _sync_row(read_model.view, sync_id)["stages_data"]["summaries"],
    }


@router.get("/syncs/{sync_id}/")
async def sync_page(
    sync_id: str, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    status = await syncs.sync_status(sync_id, caller)  # 404 / 403 as the API answers
    details = await run_in_threadpool(_sync_details, caller, sync_id)
    fabric = await run_in_threadpool(caller.container.read_model.fabric, status["fabric_id"])
    plan = await run_in_threadpool(
        plan_preview.validate_only_plan,
        caller.container, status, details["summaries"], details["files"],
    )
    assert caller.principal is not None
    return render(
        request,
        "sync.html",
        caller=caller,
        sync=status,
        fabric=fabric,
        stages=timeline(status),
        live=status["state"] not in FINAL_STATES,
        can=abilities(caller.principal, status["fabric_id"]),
        plan=plan,
        **details,
    )


@router.get("/fabrics/{fabric_id}/files/")
async def files_page(
    fabric_id: FabricId, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    asked = request.query_params.get("directory", "all")
    directory: Literal["raw", "managed", "all"] = (
        "raw" if asked == "raw" else "managed" if asked == "managed" else "all"
    )
    path = request.query_params.get("path") or None
    fabric = await run_in_threadpool(fabrics.get_fabric, fabric_id, caller)
    listing = await run_in_threadpool(
        gitops.list_files, fabric_id, directory, "all", path is not None, caller
    )
    shown = None
    if path is not None:
        shown = next((dict(f) for f in listing["files"] if f["path"] == path), None)
        if shown is not None:
            content = shown.pop("content", "")
            shown["truncated"] = len(content) > MAX_CONTENT_BYTES
            shown["content"] = content[:MAX_CONTENT_BYTES]
        for item in listing["files"]:
            item.pop("content", None)
    return render(request, "files.html", caller=caller, fabric=fabric, listing=listing,
                  directory=directory, path=path, shown=shown)


@router.get("/audit/")
async def audit_page(request: Request, caller: Caller = Depends(console_caller)) -> Response:
    params = request.query_params
    raw_fabric = params.get("fabric_id", "")
    fabric_id = int_arg(raw_fabric, 0, 0, 2**31 - 1) if raw_fabric else None
    user = (params.get("user") or "").strip()[:150] or None
    limit = int_arg(params.get("limit"), 50, 1, 200)
    offset = int_arg(params.get("offset"), 0, 0, 2**31 - 1)
    assert caller.principal is not None
    allowed = caller.principal.fabrics_with(VIEW_HISTORY)
    page = None
    if caller.principal.has_perm(VIEW_HISTORY, fabric_id):
        page = await run_in_threadpool(
            audit.audit_log, request, fabric_id, user, limit, offset, caller
        )
    return render(request, "audit.html", caller=caller, page=page, allowed=allowed,
                  filters={"fabric_id": raw_fabric if fabric_id is not None else "",
                           "user": user or "", "limit": limit})


@router.get("/system/")
async def system_page(request: Request, caller: Caller = Depends(console_caller)) -> Response:
    answer = await run_in_threadpool(health.health, request, caller.container)
    report = orjson.loads(bytes(answer.body))
    return render(request, "system.html", caller=caller, report=report,
                  http_status=answer.status_code)
