"""What a ``sync.trigger`` came to, as recorded in its receipt and sent as its reply:
``{"status": "started", "sync_id": …}`` (``"duplicate": true`` when its correlation id named
the sync an earlier request started) or ``{"status": "error", "error": {…}}`` — and the
receipt (audit entry) that records it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from fgd_core.adapters.bus_client import SYNC_TRIGGER
from fgd_core.application.app import FGDApplication, PreparedSync
from fgd_core.application.auth import scrub, scrub_text
from fgd_core.domain.auth import AuditEntry
from fgd_core.domain.command import receipt_uuid
from fgd_core.domain.correlation import check_same_request
from fgd_core.errors import FGDError

if TYPE_CHECKING:
    from fgd_workers.command_messages import Accepted

AUDIT_SYNC = "bus_trigger_sync"
USER_AGENT = "amqp"


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


def receipt(accepted: Accepted, outcome: dict[str, Any]) -> AuditEntry:
    """The audit entry of an accepted trigger, which is its receipt: its id derives from
    the ``message_id`` and its details keep ``outcome`` (record_audit's rules otherwise).
    Saved in the same transaction as the sync: one commit, one event per command."""
    cmd, error = accepted.cmd, outcome.get("error")
    # Scrubbed where a client's text can be: the message_id and app_id, and the error
    # (whose details may echo input). The trigger and options passed the command's
    # schema (an enum, booleans); the rest is ours. Everything here is JSON already.
    if error:
        error = {**error, "message": scrub_text(error["message"][:1000]),
                 "details": scrub(error["details"])}
        outcome = {**outcome, "error": error}
    details = {
        **({"code": error["code"]} if error else {}),  # as the REST API's entries have it
        "via": "amqp", "command": SYNC_TRIGGER,
        "message_id": scrub_text((cmd.message_id or "")[:200]),
        "trigger": accepted.trigger, "options": dict(accepted.options), "outcome": outcome,
    }
    user_agent = f"{USER_AGENT} {scrub_text(cmd.app_id)}" if cmd.app_id else USER_AGENT
    return AuditEntry.at(
        receipt_uuid(cmd.message_id or ""),
        fabric_id=accepted.fabric_id,
        correlation_id=accepted.cid,
        user=accepted.principal.user[:150],
        action=AUDIT_SYNC,
        ip_address=None,
        user_agent=user_agent[:500],
        sync_id=outcome.get("sync_id"),
        details=details,
        success=outcome["status"] == "started",
        error_message=error["message"] if error else "",
    )
