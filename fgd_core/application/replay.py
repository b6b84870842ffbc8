"""Replay for audits: the ordered history of everything, a fabric or a sync, read straight
from the event log with positions, and the state of a sync as of a position or a time.

History is read with ``select_notifications`` in pages (no aggregate is rebuilt), and every
envelope is validated as it is read, so an audit never reports something the schemas reject.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from fgd_core.application.app import FGDApplication
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.errors import NotFoundError
from fgd_core.events.envelope import decode_envelope
from fgd_core.events.redaction import redacted_envelope

PAGE = 1000


@dataclass(frozen=True)
class RecordedEvent:
    position: int
    envelope: dict[str, Any]
    originator_id: str
    originator_version: int

    @property
    def event_type(self) -> str:
        return str(self.envelope["event_type"])


def history(
    app: FGDApplication,
    fabric_id: int | None = None,
    sync_id: str | UUID | None = None,
    after: int = 0,
) -> Iterator[RecordedEvent]:
    """Every stored event in log order (position > ``after``), optionally of one fabric
    and/or one sync (its own events: ``sync.*``, ``stage.*``, ``file.*``)."""
    wanted_sync = str(sync_id) if sync_id is not None else None
    position = after
    while True:
        page = app.recorder.select_notifications(
            start=position, limit=PAGE, inclusive_of_start=False
        )
        for notification in page:
            position = notification.id
            originator = str(notification.originator_id)
            if wanted_sync is not None and originator != wanted_sync:
                continue
            envelope = decode_envelope(notification.state)
            envelope = redacted_envelope(envelope) or envelope  # legacy URL credentials
            if fabric_id is not None and envelope["fabric_id"] != fabric_id:
                continue
            yield RecordedEvent(position, envelope, originator, notification.originator_version)
        if len(page) < PAGE:
            return


def sync_as_of(
    app: FGDApplication,
    sync_id: str | UUID,
    position: int | None = None,
    at: datetime | None = None,
) -> SyncOperation:
    """The sync as it was after the last of its events at or before ``position`` / ``at``."""
    version = None
    for recorded in history(app, sync_id=sync_id):
        if position is not None and recorded.position > position:
            break
        if at is not None and datetime.fromisoformat(recorded.envelope["timestamp"]) > at:
            break
        version = recorded.originator_version
    if version is None:
        raise NotFoundError(
            f"sync {sync_id} has no events at that point",
            details={"sync_id": str(sync_id), "position": position},
        )
    return app.get_sync(sync_id, version=version)


def rebuild_all(app: FGDApplication, upto: int | None = None) -> dict[UUID, Any]:
    """Every aggregate rebuilt from the whole log (read, decode, validate, apply) — the
    audit's "state of everything as of position ``upto``"."""
    aggregates: dict[UUID, Any] = {}
    position = 0
    to_domain_event = app.mapper.to_domain_event
    while True:
        page = app.recorder.select_notifications(
            start=position, limit=PAGE, stop=upto, inclusive_of_start=False
        )
        for notification in page:
            domain_event: Any = to_domain_event(notification)
            key = domain_event.originator_id
            aggregates[key] = domain_event.mutate(aggregates.get(key))
        if len(page) < PAGE:
            return aggregates
        position = page[-1].id
