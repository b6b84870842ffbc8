"""Repository URLs shown without credentials.

Credentials inside a repository URL (``https://user:secret@host/r.git``) are refused when a
fabric is saved, but a store written before that may hold them in ``fabric.registered`` /
``fabric.updated``. Those events stay as they are (replay rebuilds the fabric from them, and
its syncs keep working); every place that shows an event or a fabric to someone — the
audit history, ``fgd events``, the relay to RabbitMQ, the API's and the CLI's fabric views —
shows the URL through ``shown_repository``.
"""

from __future__ import annotations

from typing import Any

from fgd_core.redact import scrub_text

_FABRIC_EVENTS = frozenset({"fabric.registered", "fabric.updated"})


def shown_repository(value: Any) -> Any:
    """``value`` with any ``user:password@`` of a URL redacted (non-strings unchanged)."""
    if isinstance(value, str) and "@" in value:
        return scrub_text(value)
    return value


def redacted_envelope(envelope: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of ``envelope`` with its repository URL's credentials redacted, or None when
    it holds none (the common case costs one set lookup)."""
    event_type = envelope.get("event_type")
    if event_type not in _FABRIC_EVENTS:
        return None
    payload = envelope.get("payload") or {}
    holder = payload.get("changes", {}) if event_type == "fabric.updated" else payload
    repository = holder.get("repository") if isinstance(holder, dict) else None
    shown = shown_repository(repository)
    if shown == repository:
        return None
    new_holder = {**holder, "repository": shown}
    new_payload = (
        {**payload, "changes": new_holder} if event_type == "fabric.updated" else new_holder
    )
    return {**envelope, "payload": new_payload}
