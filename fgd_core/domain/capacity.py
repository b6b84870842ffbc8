"""The SyncCapacity aggregate: the slots that ``sync.max_concurrent_syncs`` allows.

One per event store (a fixed id, like FabricRegistry). Every start of a sync — manual, API,
webhook, bus command or scheduler, in any process — acquires a slot in the same save as the
new SyncOperation and its fabric's lock, and the sync's ending releases it in the same save
as the fabric's unlock. Concurrent acquires conflict on this aggregate's version, so the
limit holds across processes (the loser reloads and gets FGD_5004).
"""

from __future__ import annotations

from typing import Any
from uuid import uuid5

from eventsourcing.domain import event

from fgd_core.domain.base import ID_NAMESPACE, FGDAggregate
from fgd_core.errors import WorkerPoolExhaustedError

CAPACITY_ID = uuid5(ID_NAMESPACE, "sync-capacity")


class SyncCapacity(FGDAggregate):
    """The running syncs holding a slot (sync id → fabric id). Its events carry the envelope
    ``fabric_id`` of the sync they concern."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> Any:
        return CAPACITY_ID

    @event("Opened")
    def __init__(self, fabric_id: int = 0, correlation_id: str = "capacity") -> None:
        self.fabric_id = 0
        self.correlation_id = correlation_id
        self.running: dict[str, int] = {}

    @property
    def active(self) -> int:
        return len(self.running)

    def check(self, limit: int) -> None:
        """FGD_5004 if no slot is free (changes nothing)."""
        if len(self.running) >= limit:
            raise WorkerPoolExhaustedError(
                f"max_concurrent_syncs reached: {len(self.running)} of {limit} syncs running",
                details={"active": len(self.running), "limit": limit},
            )

    def acquire(self, sync_id: str, fabric_id: int, correlation_id: str, limit: int) -> None:
        self.check(limit)
        self._acquired(sync_id=sync_id, fabric_id=fabric_id, correlation_id=correlation_id)

    @event("Acquired")
    def _acquired(self, sync_id: str, fabric_id: int, correlation_id: str) -> None:
        self.running[sync_id] = fabric_id

    def holds(self, sync_id: str) -> bool:
        return sync_id in self.running

    def release(self, sync_id: str, fabric_id: int, correlation_id: str) -> bool:
        """Free the sync's slot; False (and no event) if it holds none — e.g. a sync started
        before the limit was enforced, or by a process without one."""
        if sync_id not in self.running:
            return False
        self._released(sync_id=sync_id, fabric_id=fabric_id, correlation_id=correlation_id)
        return True

    @event("Released")
    def _released(self, sync_id: str, fabric_id: int, correlation_id: str) -> None:
        self.running.pop(sync_id, None)
