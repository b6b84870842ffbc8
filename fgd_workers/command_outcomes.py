"""What a ``sync.trigger`` came to, as recorded in its receipt and sent as its reply:
``{"status": "started", "sync_id": …}`` (``"duplicate": true`` when its correlation id named
the sync an earlier request started) or ``{"status": "error", "error": {…}}``."""

from __future__ import annotations

from typing import Any

import orjson

from fgd_core.application import FGDApplication, PreparedSync
from fgd_core.domain.correlation import check_same_request
from fgd_core.errors import FGDError


def error_outcome(exc: FGDError) -> dict[str, Any]:
    return {"status": "error",
            "error": {"code": exc.code, "message": exc.message,
                      "details": orjson.loads(orjson.dumps(exc.details, default=str))}}


def started_outcome(prepared: PreparedSync) -> dict[str, Any]:
    """A new sync, or the one a repeated correlation id names (nothing new started)."""
    outcome: dict[str, Any] = {"status": "started", "sync_id": prepared.sync.sync_id}
    if prepared.duplicate:
        outcome["duplicate"] = True
    return outcome


def replayed_outcome(
    app: FGDApplication, cid: str, fabric_id: int, trigger: str, options: dict[str, Any]
) -> dict[str, Any] | None:
    """The outcome for a trigger whose correlation id names a stored sync — the same
    request's (duplicate), or FGD_1003 for another request's; None if it names none. For a
    save that conflicted: the sync's id, derived from the correlation id, may be taken."""
    earlier = app.sync_named(cid)
    if earlier is None:
        return None
    try:
        check_same_request(earlier, fabric_id, trigger, dict(options))
    except FGDError as exc:
        return error_outcome(exc)
    return {"status": "started", "sync_id": earlier.sync_id, "duplicate": True}
