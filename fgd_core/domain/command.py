"""Bus commands: the CommandReceipt aggregate that makes each command ``message_id`` count once.

A receipt's aggregate id is derived from the command's AMQP ``message_id``, and it is saved in
the same transaction as whatever the command did (a sync and its fabric's lock), so a
redelivered or duplicated command conflicts in the event store (IntegrityError) and starts
nothing new; the receipt keeps the outcome, so the duplicate is answered as the original was.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from fgd_core.domain.base import ID_NAMESPACE, FGDAggregate

COMMAND_NAMESPACE = uuid5(ID_NAMESPACE, "bus-command")


def receipt_uuid(message_id: str) -> UUID:
    return uuid5(COMMAND_NAMESPACE, message_id)


class CommandReceipt(FGDAggregate):
    """One accepted command, recorded once with its outcome (never its token)."""

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
