"""The scheduler's view of every registered fabric, kept current from the event log.

Loading each fabric aggregate on every tick cost the scheduler 0.5 s of CPU per tick at
1,000 fabrics (bench/bench_fleet.py) — linear in the fleet and paid every few seconds, the
first limit on the way to 10,000. Instead the first tick lists them all, and later ticks
read only the log's fabric and registry events since the previous tick (one topic-filtered
query) and reload just the fabrics they name; a registration or rename lists them all
again. PostgreSQL inserts lock the events table (``FGDPostgresRecorder``) and SQLite
serializes writes, so positions are committed in order and reading from a cursor misses
nothing.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from fgd_core.application.app import FGDApplication
from fgd_core.domain.fabric import Fabric, FabricRegistry
from fgd_core.errors import NotFoundError

SCAN_BATCH = 500


def _event_topics(aggregate: type) -> list[str]:
    base: Any = aggregate.Event  # type: ignore[attr-defined]
    return sorted(
        get_topic(cls) for name in dir(aggregate)
        if isinstance(cls := getattr(aggregate, name), type) and issubclass(cls, base)
        and cls is not base
    )


FABRIC_TOPICS = _event_topics(Fabric)
REGISTRY_TOPICS = set(_event_topics(FabricRegistry))


class FabricWatch:
    """``fabrics()``: every registered fabric, current as of the call."""

    def __init__(self, app: FGDApplication) -> None:
        self.app = app
        self._fabrics: dict[int, Fabric] | None = None
        self._ids: dict[UUID, int] = {}
        self._cursor = 0
        self.reloaded = 0  # fabric aggregates loaded by the last call (for tests, metrics)

    def reset(self) -> None:
        """Forget everything: the next call lists every fabric again."""
        self._fabrics = None

    def fabrics(self) -> list[Fabric]:
        if self._fabrics is None:
            return self._list_all()
        changed: set[int] = set()
        relist = False
        recorder: Any = self.app.recorder
        topics = [*FABRIC_TOPICS, *REGISTRY_TOPICS]
        while True:
            batch = recorder.select_notifications(
                start=self._cursor, limit=SCAN_BATCH, topics=topics, inclusive_of_start=False
            )
            for notification in batch:
                fabric_id = self._ids.get(notification.originator_id)
                if fabric_id is None:  # a new fabric, or the registry (names) changed
                    relist = True
                else:
                    changed.add(fabric_id)
                self._cursor = max(self._cursor, notification.id)
            if len(batch) < SCAN_BATCH:
                break
        if relist:
            return self._list_all()
        for fabric_id in changed:
            try:
                self._fabrics[fabric_id] = self.app.get_fabric(fabric_id)
            except NotFoundError:  # deleted (its registry event relists too): forget it
                self._fabrics.pop(fabric_id, None)
        self.reloaded = len(changed)
        return [self._fabrics[k] for k in sorted(self._fabrics)]

    def _list_all(self) -> list[Fabric]:
        # The cursor first: an event recorded while listing is read again next time.
        self._cursor = self.app.last_position()
        fabrics = self.app.list_fabrics()
        self._fabrics = {f.fabric_id: f for f in fabrics}
        self._ids = {f.id: f.fabric_id for f in fabrics}
        self.reloaded = len(fabrics)
        return fabrics


__all__ = ["FABRIC_TOPICS", "FabricWatch"]
