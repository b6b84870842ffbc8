"""Bus commands: what makes each command ``message_id`` count once.

An accepted command's audit entry (``AuditEntry``, one ``audit.recorded`` event) is its
receipt: its aggregate id is derived from the command's AMQP ``message_id``, its details keep
the outcome, and it is saved in the same transaction as whatever the command did (a sync and
its fabric's lock). A redelivered or duplicated command therefore conflicts in the event store
(IntegrityError), starts nothing new, and is answered with the recorded outcome. One event per
accepted command: the audit trail itself enforces exactly-once.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from fgd_core.domain.base import ID_NAMESPACE, FGDAggregate

COMMAND_NAMESPACE = uuid5(ID_NAMESPACE, "bus-command")


def receipt_uuid(message_id: str) -> UUID:
    """The aggregate id of the audit entry that records command ``message_id``."""
    return uuid5(COMMAND_NAMESPACE, message_id)


def recorded_outcome(entry: Any) -> dict[str, Any]:
    """The outcome a receipt recorded: an accepted command's audit entry, or a legacy
    ``CommandReceipt`` (same id for the same ``message_id``)."""
    if isinstance(entry, CommandReceipt):
        return dict(entry.outcome)
    return dict(entry.details["outcome"])


class CommandReceipt(FGDAggregate):
    """LEGACY — no longer recorded. Earlier versions saved one ``command.received`` event per
    accepted command beside its audit entry. The class, its event type and its schema stay so
    that a store written by them still replays, and so that such a receipt still answers a
    duplicate of its command."""

    @staticmethod
    def create_id(message_id: str, **_: Any) -> UUID:
        return receipt_uuid(message_id)

    @event("Received")
    def __init__(
        self,
        message_id: str,
        correlation_id: str,
        command: str,
        user: str | None,
        outcome: dict[str, Any],
        fabric_id: int = 0,
    ) -> None:
        self.fabric_id = fabric_id
        self.correlation_id = correlation_id
        self.message_id = message_id
        self.command = command
        self.user = user
        self.outcome = dict(outcome)
