"""The console's read-only pages. Each calls the API's own endpoint function or read-model
query, with the API's ``Caller``: the same permission checks, denials audited the same way."""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from fgd_api.console import plan_preview, reads
from fgd_api.console.render import environment, render
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
from fgd_api.deps import CONFIGURE_SYNC, VIEW_HISTORY, VIEW_SYNC, Caller, FabricId
from fgd_api.routers import fabrics, gitops, health
from fgd_api.routers.syncs import page_links
from fgd_core.domain.sync_operation import FINAL_STATES
from fgd_core.errors import FGDError

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)

MAX_CONTENT_BYTES = 256 * 1024  # a file shown on the files page (the rest is cut)
MAX_FILES_SHOWN = 500  # rows of a sync page's file table


# allowed fabric ids → (the read model's fabric list they were rendered from, count, rows)
_ROWS: dict[frozenset[int] | None, tuple[list[dict[str, Any]], int, Markup]] = {}


async def fabric_rows(caller: Caller) -> tuple[int, Markup]:
    """The fabric list's table rows for this caller (as the API's list_fabrics filters),
    rendered again only when the fabrics changed: (how many, the rows)."""
    assert caller.principal is not None
    allowed = caller.principal.fabrics_with(VIEW_SYNC)
    every = await reads.fabrics(caller.container.read_model)
    cached = _ROWS.get(allowed)
    if cached is not None and cached[0] is every:
        return cached[1], cached[2]
    listing = [f for f in every if allowed is None or f["id"] in allowed]
    rows = Markup(environment.get_template("_fabric_rows.html").render(fabrics=listing))
    if len(_ROWS) > 256:
        _ROWS.clear()
    _ROWS[allowed] = (every, len(listing), rows)
    return len(listing), rows


@router.get("/")
async def fabric_list(request: Request, caller: Caller = Depends(console_caller)) -> Response:
    count, rows = await fabric_rows(caller)
    assert caller.principal is not None
    can_register = caller.principal.has_perm(CONFIGURE_SYNC, None)
    return render(request, "fabrics.html", caller=caller, count=count, rows=rows,
                  can_register=can_register, form={}, problems={})


async def fabric_page_context(
    request: Request, caller: Caller, fabric_id: int
) -> dict[str, Any]:
    await caller.require_async(VIEW_SYNC, fabric_id, "view_fabric")  # as get_fabric does
    fabric = await reads.fabric(caller.container.read_model, fabric_id)
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
    await caller.require_async(CONFIGURE_SYNC, fabric_id, "update_fabric")
    return render(request, "fabric_edit.html", caller=caller, fabric=fabric, form=fabric,
                  problems={})


@router.get("/syncs/{sync_id}/")
async def sync_page(
    sync_id: str, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    # What the API's sync_status reads and checks (404, then view_fgd_sync on its fabric),
    # with the sync's files, transitions and fabric beside it.
    data = await reads.sync_page(caller.container.read_model, sync_id)
    status = data.pop("status")
    await caller.require_async(VIEW_SYNC, status["fabric_id"], "view_sync")
    plan = None
    if status["options"].get("validate_only") and status["state"] == "completed":
        try:
            plan = await run_in_threadpool(
                plan_preview.validate_only_plan,
                caller.container, status, data["summaries"], data["files"],
            )
        except FGDError as exc:  # e.g. the git host is down: the rest of the page stands
            plan = {"unavailable": f"{exc.code}: {exc.message}"}
    assert caller.principal is not None
    files = data.pop("files")
    # A sync of thousands of files: its failures first, and a page that stays a page.
    shown = sorted(files, key=lambda f: f["status"] != "failed")[:MAX_FILES_SHOWN]
    return render(
        request,
        "sync.html",
        files=shown,
        files_total=len(files),
        caller=caller,
        sync=status,
        stages=timeline(status),
        live=status["state"] not in FINAL_STATES,
        can=abilities(caller.principal, status["fabric_id"]),
        plan=plan,
        **data,
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
        # what the API's audit_log endpoint answers, read on the event loop
        await caller.require_async(VIEW_HISTORY, fabric_id, "view_audit_log")
        found = await reads.audit_log(caller.container.read_model, fabric_id, user, limit,
                                      offset)
        page = {**page_links(request, limit, offset, found["count"]), **found}
    return render(request, "audit.html", caller=caller, page=page, allowed=allowed,
                  filters={"fabric_id": raw_fabric if fabric_id is not None else "",
                           "user": user or "", "limit": limit})


# The system page shows the health report as of at most this long ago: every viewer of the
# page at once gets one health check (database, broker, projections), not one each.
HEALTH_TTL = 1.0
_health_seen: dict[int, tuple[float, int, dict[str, Any]]] = {}


@router.get("/system/")
async def system_page(request: Request, caller: Caller = Depends(console_caller)) -> Response:
    key = id(caller.container)
    seen = _health_seen.get(key)
    if seen is None or time.monotonic() - seen[0] > HEALTH_TTL:
        answer = await run_in_threadpool(health.health, request, caller.container)
        seen = (time.monotonic(), answer.status_code, orjson.loads(bytes(answer.body)))
        _health_seen[key] = seen
    return render(request, "system.html", caller=caller, report=seen[2],
                  http_status=seen[1])


@router.get("/{unknown:path}")
async def not_found(request: Request, caller: Caller = Depends(console_caller)) -> Response:
    """Any other console path (registered last): the console's 404 page, not JSON."""
    return render(request, "error.html", status=404, caller=caller, title="Not found",
                  message="There is no such page.", details={})
