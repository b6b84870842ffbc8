"""Bus command messages as the intake sees them: ``Command`` in, ``Result`` out, ``Refused``
(with its documented reasons) for a command to dead-letter, ``Accepted`` for a trigger that
passed every check. Used by ``command_intake`` (what a command does) and ``commands`` (AMQP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fgd_core.application.auth import Principal
from fgd_workers import command_guard


@dataclass
class Command:
    """One delivered command: what the consumer needs of the AMQP message."""

    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    app_id: str | None = None


@dataclass
class Result:
    """The reply to publish (if the command has ``reply_to``), or why to dead-letter."""

    reply: dict[str, Any] | None = None
    dead: str | None = None  # the reason (header x-fgd-reason)
    kind: str = "ok"  # metric label


# Why a command is refused: header x-fgd-reason-code of its dead letter (asyncapi.yaml).
REFUSAL_REASONS = (
    "unknown_command",
    "not_json",
    "schema",
    "unauthenticated",
    "forbidden",
    "missing_message_id",
    "signature",
    "invalid_delivery",
    command_guard.REASON,
)


class Refused(Exception):
    """A command that must be dead-lettered (after its denial is audited)."""

    def __init__(self, kind: str, reason: str, *, fabric_id: int | None = None) -> None:
        if kind not in REFUSAL_REASONS:
            raise ValueError(f"undocumented refusal reason {kind!r}")
        super().__init__(reason)
        self.kind, self.reason, self.fabric_id = kind, reason, fabric_id


def refuse_unstorable(found: tuple[str, str] | None) -> None:
    if found is not None:  # what fgd_workers.command_guard found
        raise Refused(command_guard.REASON, command_guard.refusal_text(found))


@dataclass
class Accepted:
    """A ``sync.trigger`` that passed every check (authenticated, valid, authorized, with a
    ``message_id``): what starting its sync needs."""

    cmd: Command
    principal: Principal
    fabric_id: int
    trigger: str
    options: dict[str, Any]
    cid: str
    details: dict[str, Any]
