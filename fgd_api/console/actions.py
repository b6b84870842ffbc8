"""The console's actions (POST forms). Each checks the CSRF token, then calls the API's own
endpoint function with the API's ``Caller``: the same permission checks (a forged POST
without the permission is refused with 403 and audited), the same audit entry as the API
call it stands for, the same read-your-writes wait. Success redirects (303) to the page
that shows the outcome."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from fgd_api.console.pages import fabric_page_context, fabric_rows
from fgd_api.console.render import render
from fgd_api.console.routing import ConsoleRoute
from fgd_api.console.session import check_csrf, console_caller, read_form
from fgd_api.deps import CONFIGURE_SYNC, Caller, FabricId
from fgd_api.errors import status_for
from fgd_api.routers import fabrics, gitops, syncs
from fgd_core.errors import FGDError

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)

FABRIC_TEXT_FIELDS = ("name", "repository", "branch", "gitops_directory")
FABRIC_FLAGS = ("sync_enabled", "auto_sync_on_change")


async def posted(request: Request) -> dict[str, str]:
    form = await read_form(request)
    check_csrf(request, form, request.state.console_csrf)
    return form


def see(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def fabric_fields(form: dict[str, str]) -> dict[str, Any]:
    """The fabric form as the API's JSON body: text as typed, checkboxes as booleans, the
    interval as an integer when it is one (else as typed, for the model to refuse)."""
    fields: dict[str, Any] = {k: form[k].strip() for k in FABRIC_TEXT_FIELDS if k in form}
    fields.update({k: form.get(k) == "on" for k in FABRIC_FLAGS})
    interval = form.get("sync_interval_minutes", "").strip()
    if interval:
        digits = interval.isascii() and interval.isdigit()  # "¹".isdigit() is True
        fields["sync_interval_minutes"] = int(interval) if digits else interval
    return fields


def problems_of(exc: ValidationError | FGDError) -> dict[str, str]:
    """Field → problem, shown beside the field (anything else above the form)."""
    if isinstance(exc, ValidationError):
        return {".".join(str(p) for p in e["loc"]) or "form": e["msg"] for e in exc.errors()}
    field = str(exc.details.get("field", ""))
    known = field in (*FABRIC_TEXT_FIELDS, *FABRIC_FLAGS, "sync_interval_minutes")
    return {field if known else "form": f"{exc.code}: {exc.message}"}


@router.post("/fabrics/")
async def create_fabric(request: Request, caller: Caller = Depends(console_caller)) -> Response:
    form = await posted(request)
    await run_in_threadpool(caller.require, CONFIGURE_SYNC, None, "create_fabric")
    fields = fabric_fields(form)
    try:
        body = fabrics.FabricCreate(**fields)
        created = await run_in_threadpool(fabrics.create_fabric, body, Response(), caller)
    except (ValidationError, FGDError) as exc:
        problems = problems_of(exc)
        count, rows = await fabric_rows(caller)
        status = 422 if isinstance(exc, ValidationError) else status_for(exc)
        return render(request, "fabrics.html", status=status, caller=caller, count=count,
                      rows=rows, can_register=True, form=form, problems=problems)
    return see(f"/ui/fabrics/{created['id']}/")


@router.post("/fabrics/{fabric_id}/edit/")
async def update_fabric(
    fabric_id: FabricId, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    form = await posted(request)
    await run_in_threadpool(caller.require, CONFIGURE_SYNC, fabric_id, "update_fabric")
    current = await run_in_threadpool(fabrics.get_fabric, fabric_id, caller)
    # Only what changed, as a PATCH from the API would send it.
    changes = {k: v for k, v in fabric_fields(form).items() if current.get(k) != v}
    try:
        body = fabrics.FabricUpdate(**changes)
        if changes:
            await run_in_threadpool(fabrics.update_fabric, fabric_id, body, Response(), caller)
    except (ValidationError, FGDError) as exc:
        problems = problems_of(exc)
        status = 422 if isinstance(exc, ValidationError) else status_for(exc)
        return render(request, "fabric_edit.html", status=status, caller=caller,
                      fabric=current, form=form, problems=problems)
    return see(f"/ui/fabrics/{fabric_id}/")


@router.post("/fabrics/{fabric_id}/sync/")
async def trigger_sync(
    fabric_id: FabricId, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    form = await posted(request)
    body = syncs.TriggerRequest(
        options=syncs.SyncOptions(
            validate_only=form.get("validate_only") == "on",
            force_refresh=form.get("force_refresh") == "on",
        )
    )
    answer = await run_in_threadpool(syncs.trigger_sync, fabric_id, body, Response(), caller)
    return see(f"/ui/syncs/{answer['sync_id']}/")


@router.post("/syncs/{sync_id}/cancel/")
async def cancel_sync(
    sync_id: str, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    await posted(request)
    await run_in_threadpool(syncs.cancel_sync, sync_id, Response(), caller)
    return see(f"/ui/syncs/{sync_id}/")


async def _directory_result(
    request: Request, caller: Caller, fabric_id: int, operation: str, result: dict[str, Any]
) -> Response:
    # validate records its answer on the fabric but (as the API's GET) does not wait for it
    await run_in_threadpool(syncs.wait_for_own_write, caller, Response())
    context = await fabric_page_context(request, caller, fabric_id)
    context["result"] = {"operation": operation, "answer": result}
    return render(request, "fabric.html", **context)


@router.post("/fabrics/{fabric_id}/directory/validate/")
async def validate_directory(
    fabric_id: FabricId, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    await posted(request)
    result = await run_in_threadpool(gitops.validate_directory, fabric_id, caller)
    return await _directory_result(request, caller, fabric_id, "validate", result)


@router.post("/fabrics/{fabric_id}/directory/initialize/")
async def initialize_directory(
    fabric_id: FabricId, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    form = await posted(request)
    body = gitops.InitializeRequest(
        force=form.get("force") == "on", create_samples=form.get("create_samples") == "on"
    )
    result = await run_in_threadpool(
        gitops.initialize_directory, fabric_id, body, Response(), caller
    )
    return await _directory_result(request, caller, fabric_id, "initialize", result)


@router.post("/fabrics/{fabric_id}/directory/repair/")
async def repair_directory(
    fabric_id: FabricId, request: Request, caller: Caller = Depends(console_caller)
) -> Response:
    await posted(request)
    body = gitops.RepairRequest(issues=[], auto_detect=True)
    result = await run_in_threadpool(gitops.repair_directory, fabric_id, body, Response(), caller)
    return await _directory_result(request, caller, fabric_id, "repair", result)
