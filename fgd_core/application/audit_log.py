"""The audit log: ``audit.recorded`` entries, scrubbed of secrets, for the API and bus commands.

    record_audit(app, user=principal, action="sync.trigger", fabric_id=3, ...)

``audit_entry`` builds an entry without saving it, for a caller that saves it in the same
transaction as what it audits.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from uuid import UUID, uuid4

import orjson

from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import Principal
from fgd_core.domain.auth import AuditEntry
from fgd_core.errors import ValidationError
from fgd_core.ingestion.input_guard import bounded, sanitized
from fgd_core.redact import scrub, scrub_text


def _json_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise ValidationError("audit details must be a mapping", details={"field": "details"})
    try:  # JSON now, so the live entry equals a replayed one; control characters and lone
        # surrogates escaped (input_guard): the edges refuse them, this is the backstop
        data = orjson.loads(
            orjson.dumps(
                bounded(dict(details), None, None, 64), default=str, option=orjson.OPT_NON_STR_KEYS
            )
        )
    except (TypeError, orjson.JSONEncodeError):
        raise ValidationError(
            "audit details must be JSON-serializable", details={"field": "details"}
        ) from None
    return scrub(data)  # type: ignore[no-any-return]


def _ip(value: Any) -> str | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return sanitized(text, 255)  # e.g. "testclient", or a proxy's opaque name


def _sync_id(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(value if isinstance(value, UUID) else UUID(str(value)))
    except ValueError:
        raise ValidationError(
            f"sync_id {sanitized(str(value))!r} is not a UUID", details={"field": "sync_id"}
        ) from None


def record_audit(app: FGDApplication, **entry: Any) -> int:
    """Record one ``audit.recorded`` event (see ``audit_entry``); returns its position in
    the event log."""
    recordings = app.save(audit_entry(**entry))
    return int(recordings[-1].notification.id)


def audit_entry(
    *,
    user: str | Principal | None,
    action: str,
    fabric_id: int | None,
    ip_address: str | None,
    user_agent: str | None,
    sync_id: str | UUID | None = None,
    details: Mapping[str, Any] | None = None,
    success: bool,
    error_message: str = "",
    correlation_id: str | None = None,
) -> AuditEntry:
    """An audit entry, not yet saved — for a caller that saves it in the same transaction as
    what it audits. ``details`` and ``error_message`` are scrubbed of secrets."""
    if isinstance(user, Principal):
        user = user.user
    if user is not None and (not isinstance(user, str) or not user):
        raise ValidationError("user must be a name or None", details={"field": "user"})
    if not isinstance(action, str) or not action.strip() or len(action) > 100:
        raise ValidationError(
            "action must be a name of 1 to 100 characters", details={"field": "action"}
        )
    fabric_id = 0 if fabric_id is None else fabric_id
    if not isinstance(fabric_id, int) or isinstance(fabric_id, bool) or fabric_id < 0:
        raise ValidationError("fabric_id must be an integer >= 0", details={"field": "fabric_id"})
    if not isinstance(success, bool):
        raise ValidationError("success must be a boolean", details={"field": "success"})
    entry = AuditEntry(
        fabric_id=fabric_id,
        correlation_id=sanitized(correlation_id, 200) if correlation_id else str(uuid4()),
        user=sanitized(user, 150) if user else None,
        action=sanitized(action.strip(), 100),
        ip_address=_ip(ip_address),
        user_agent=sanitized(scrub_text(str(user_agent or "")), 500),
        sync_id=_sync_id(sync_id),
        details=_json_details(details),
        success=success,
        error_message=sanitized(scrub_text(str(error_message or "")), None),
    )
    return entry
