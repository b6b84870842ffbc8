"""What the pages show, derived from the API's answers (no queries of their own beyond
what the read model offers): permissions per fabric, the stage timeline, history filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fgd_api.deps import (
    CANCEL_SYNC,
    CONFIGURE_SYNC,
    FORCE_SYNC,
    REPAIR_DIRECTORY,
    TRIGGER_SYNC,
    VIEW_HISTORY,
    VIEW_SYNC,
)
from fgd_core.application.auth import Principal
from fgd_core.domain.sync_operation import FINAL_STATES, STAGES

SYNC_STATES = ("pending", "processing", "completed", "failed", "cancelled", "timed_out")
PAGE_SIZES = (10, 25, 50, 100)


def abilities(principal: Principal, fabric_id: int | None) -> dict[str, bool]:
    """Which actions the page may offer: exactly the permissions the API checks."""
    return {
        "view": principal.has_perm(VIEW_SYNC, fabric_id),
        "history": principal.has_perm(VIEW_HISTORY, fabric_id),
        "trigger": principal.has_perm(TRIGGER_SYNC, fabric_id),
        "force": principal.has_perm(FORCE_SYNC, fabric_id),
        "cancel": principal.has_perm(CANCEL_SYNC, fabric_id),
        "configure": principal.has_perm(CONFIGURE_SYNC, fabric_id),
        "repair": principal.has_perm(REPAIR_DIRECTORY, fabric_id),
    }


def timeline(status: dict[str, Any]) -> list[dict[str, str]]:
    """The five stages, each ``done``, ``running``, ``pending``, ``stopped`` (where a failed,
    cancelled or timed-out sync ended) or ``skipped`` (never reached)."""
    progress = status["progress"]
    done = set(progress["stages_completed"])
    current = progress["current_stage"]
    final = status["state"] in FINAL_STATES
    stages, stopped_seen = [], False
    for stage in STAGES:
        if stage in done:
            state = "done"
        elif not final:
            state = "running" if stage == current else "pending"
        elif status["state"] != "completed" and not stopped_seen:
            state, stopped_seen = "stopped", True
        else:
            state = "skipped"
        stages.append({"name": stage, "state": state})
    return stages


def int_arg(value: str | None, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value not in (None, "") else default
    except ValueError:
        return default
    return min(max(number, low), high)


def history_filters(params: Any) -> dict[str, Any]:
    """The history form's values, bounded (a bad value falls back to the default, as a
    filter form should, instead of an error page)."""
    status = params.get("status") or ""
    filters: dict[str, Any] = {
        "status": status if status in SYNC_STATES else "",
        "start_date": _date(params.get("start_date")),
        "end_date": _date(params.get("end_date")),
        "limit": int_arg(params.get("limit"), 10, 1, 100),
        "offset": int_arg(params.get("offset"), 0, 0, 2**31 - 1),
    }
    return filters


def _date(value: str | None) -> str:
    if not value:
        return ""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return ""
    return value[:10]


def day_bounds(filters: dict[str, Any]) -> tuple[str | None, str | None]:
    """The date inputs (days, UTC) as the API's ``start_date`` / ``end_date`` instants."""
    start = f"{filters['start_date']}T00:00:00+00:00" if filters["start_date"] else None
    end = f"{filters['end_date']}T23:59:59.999999+00:00" if filters["end_date"] else None
    return start, end
