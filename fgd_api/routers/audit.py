"""The audit log (every mutating and every denied request), served from its projection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from fgd_api.deps import PRINTABLE_PATTERN, VIEW_HISTORY, Caller, get_caller
from fgd_api.errors import ERROR_RESPONSES
from fgd_api.routers.syncs import page_links

router = APIRouter(prefix="/api/plugins/hedgehog", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("/audit-log/")
def audit_log(
    request: Request,
    fabric_id: int | None = Query(None, ge=0, le=2**31 - 1),
    user: str | None = Query(None, max_length=150, pattern=PRINTABLE_PATTERN),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31 - 1),
    caller: Caller = Depends(get_caller),
) -> dict[str, Any]:
    """Entries newest first. Without ``fabric_id`` the token needs ``view_fgd_history`` on
    every fabric; with it, on that fabric."""
    caller.require(VIEW_HISTORY, fabric_id, "view_audit_log")
    page = caller.container.read_model.audit_log(
        fabric_id=fabric_id, user=user, limit=limit, offset=offset
    )
    return {**page_links(request, limit, offset, page["count"]), "results": page["results"]}
