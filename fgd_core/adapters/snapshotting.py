"""Snapshots taken from the aggregates a save has just recorded, not read back.

eventsourcing's ``Application._take_snapshots`` reloads an aggregate from the store (its
last snapshot and up to an interval of events) for every event of a save whose version is
a multiple of the aggregate's snapshotting interval. A batch of bus starts appends a
hundred ``capacity.acquired`` to the one SyncCapacity, so every save crossed one or two
boundaries and paid as many reloads of a large aggregate (a fifth of a start's CPU in a
profile). The saved object holds exactly the recorded state at its version, so the snapshot
is taken of it — at its version (the newest, past the boundary), once per aggregate and
save. Any version's snapshot is valid: loading starts from the newest and replays the rest.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent


def take_snapshots(app: Application[UUID], processing_event: ProcessingEvent[UUID]) -> None:
    """Snapshot each aggregate of ``processing_event`` one of whose new events' versions is
    a multiple of its class's interval (``app.snapshotting_intervals``)."""
    intervals = app.snapshotting_intervals
    if app.snapshots is None or not intervals:
        return
    due: dict[UUID, Any] = {}
    for event in processing_event.events:
        aggregate = processing_event.aggregates.get(event.originator_id)
        if aggregate is None:
            continue
        interval = intervals.get(type(aggregate))
        if interval is not None and event.originator_version % interval == 0:
            due[aggregate.id] = aggregate
    for aggregate in due.values():
        snapshot_class: Any = getattr(type(aggregate), "Snapshot", type(app).snapshot_class)
        app.snapshots.put([snapshot_class.take(aggregate)])


__all__ = ["take_snapshots"]
