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

from fgd_core.domain.base import ID_NAMESPACE

COMMAND_NAMESPACE = uuid5(ID_NAMESPACE, "bus-command")


def receipt_uuid(message_id: str) -> UUID:
    """The aggregate id of the audit entry that records command ``message_id``."""
    return uuid5(COMMAND_NAMESPACE, message_id)


def recorded_outcome(entry: Any) -> dict[str, Any]:
    """The outcome a receipt (an accepted command's audit entry) recorded."""
    return dict(entry.details["outcome"])
