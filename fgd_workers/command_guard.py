"""The bus edge of ``fgd_core.ingestion.input_guard``: a command whose AMQP properties, headers or
body
fields hold text the store cannot keep (NUL, other control characters, lone surrogates) or
too long for their face is refused — dead-lettered with reason code ``unstorable_input`` and
audited with a sanitized copy — before anything about it is recorded.

The checks return ``(field, problem)`` or None; ``fgd_workers.command_intake`` turns a finding
into its ``Refused``.
"""

from __future__ import annotations

from typing import Any

from fgd_core.application.webhook_intake import MAX_BODY_BYTES
from fgd_core.ingestion.input_guard import (
    CORRELATION_ID,
    HEADER,
    IDENTIFIER,
    Face,
    bytes_problem,
    json_problem,
    problem,
    sanitized,
)

REASON = "unstorable_input"
PROPERTIES: tuple[tuple[str, Face], ...] = (
    ("routing_key", IDENTIFIER),
    ("message_id", IDENTIFIER),
    ("correlation_id", CORRELATION_ID),
    ("app_id", IDENTIFIER),
    ("reply_to", IDENTIFIER),
)
# Body fields with a face of their own; every other string (and every key) is an identifier.
# The webhook's ``body`` is GitHub's JSON text (line breaks allowed, up to GitHub's 25 MB).
BODY_FIELDS: dict[str, Face] = {
    "correlation_id": CORRELATION_ID,
    "body": Face("webhook body", MAX_BODY_BYTES, line_breaks=True),
    "body_base64": Face("webhook body", MAX_BODY_BYTES * 4 // 3 + 4),
}


def property_problem(cmd: Any) -> tuple[str, str] | None:
    """The first AMQP property or header of ``cmd`` (a ``Command``) that cannot be kept."""
    for name, face in PROPERTIES:
        value = getattr(cmd, name)
        if value and (why := problem(value, face)) is not None:
            return f"property {name}", why
    for key, value in cmd.headers.items():
        if isinstance(key, str) and (why := problem(key, IDENTIFIER)) is not None:
            return f"header {sanitized(key, 100)}", f"name {why}"
        if isinstance(value, str):
            why = problem(value, HEADER)
        elif isinstance(value, bytes):
            why = bytes_problem(value, HEADER)
        else:
            continue  # numbers, tables (x-death …): the broker's own, never stored
        if why is not None:
            return f"header {sanitized(str(key), 100)}", why
    return None


def body_problem(data: Any) -> tuple[str, str] | None:
    """The first field of a command body (already schema-valid JSON) that cannot be kept."""
    if not isinstance(data, dict):
        return json_problem(data, IDENTIFIER, "body")
    for key, value in data.items():
        face = BODY_FIELDS.get(key, IDENTIFIER) if isinstance(key, str) else IDENTIFIER
        found = json_problem({key: value}, face if isinstance(value, str) else IDENTIFIER,
                             "body")
        if found is not None:
            return found
    return None


def refusal_text(found: tuple[str, str]) -> str:
    return f"{found[0]} {found[1]}"


__all__ = ["BODY_FIELDS", "PROPERTIES", "REASON", "body_problem", "property_problem",
           "refusal_text"]
