"""The SyncCapacity aggregates: the slots that ``sync.max_concurrent_syncs`` allows.

Every start of a sync — manual, API, webhook, bus command or scheduler, in any process —
acquires a slot in the same save as the new SyncOperation and its fabric's lock, and the
sync's ending releases it in the same save as the fabric's unlock. Concurrent acquires on
one aggregate conflict on its version, so the limit holds across processes (the loser
reloads and gets FGD_5004, or a slot of another shard).

The slots are split over ``shard_count(limit)`` aggregates (fixed ids, shard 0 the original
single one): shard ``i`` holds at most ``shard_quota(limit, i)`` syncs and the quotas add up
to the limit, so the limit holds whichever shard a start takes. A limit below
``2 × SLOTS_PER_SHARD`` keeps ONE shard — exactly the single aggregate of before; a large
one (many accepted starts per second, from several intake processes) spreads them, so two
processes taking slots at once rarely touch the same aggregate
(``fgd_core.application.capacity_slots``
picks the shard; docs/decisions.md "Capacity shards").
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from fgd_core.domain.base import ID_NAMESPACE, FGDAggregate
from fgd_core.errors import WorkerPoolExhaustedError

CAPACITY_ID = uuid5(ID_NAMESPACE, "sync-capacity")
SHARDS = 16  # the most aggregates the slots are split over
SLOTS_PER_SHARD = 128  # a shard is added per this many slots of the limit


def shard_id(index: int) -> UUID:
    """The id of capacity shard ``index`` (shard 0: the original single aggregate)."""
    return CAPACITY_ID if index == 0 else uuid5(ID_NAMESPACE, f"sync-capacity:{index}")


Slot = tuple[str, int, str]  # (sync id, fabric id, correlation id) of a sync taking a slot

SHARD_IDS = tuple(shard_id(i) for i in range(SHARDS))
SHARD_INDEX = {uuid: i for i, uuid in enumerate(SHARD_IDS)}


def shard_count(limit: int) -> int:
    """How many shards a limit is split over (1 below 2 × SLOTS_PER_SHARD)."""
    return max(1, min(SHARDS, limit // SLOTS_PER_SHARD))


def shard_quota(limit: int, index: int) -> int:
    """The slots of shard ``index``: the quotas of shards 0…count-1 add up to ``limit``;
    a shard beyond the count (one a larger limit used) takes none."""
    count = shard_count(limit)
    if index >= count:
        return 0
    return limit // count + (1 if index < limit % count else 0)


class SyncCapacity(FGDAggregate):
    """The running syncs holding a slot (sync id → fabric id). Its events carry the envelope
    ``fabric_id`` of the sync they concern."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> Any:
        return CAPACITY_ID

    @classmethod
    def open_shard(cls, index: int) -> SyncCapacity:
        """A new shard ``index`` (unsaved). Its Opened event is the constructor's, under an
        explicit id (eventsourcing's ``_create``: the id stays out of the payload)."""
        opened: Any = cls.Opened  # type: ignore[attr-defined]
        return cls._create(opened, id=shard_id(index), fabric_id=0,
                           correlation_id="capacity")

    @event("Opened")
    def __init__(self, fabric_id: int = 0, correlation_id: str = "capacity") -> None:
        self.fabric_id = 0
        self.correlation_id = correlation_id
        self.running: dict[str, int] = {}

    @property
    def active(self) -> int:
        return len(self.running)

    @property
    def shard(self) -> int:
        return SHARD_INDEX[self.id]

    def room(self, limit: int) -> int:
        """Free slots of this shard under ``limit`` (its quota)."""
        return max(0, shard_quota(limit, self.shard) - len(self.running))

    def acquire(self, sync_id: str, fabric_id: int, correlation_id: str, limit: int) -> None:
        """Take a slot of this shard (its quota of ``limit``); FGD_5004 if it has none."""
        if not self.room(limit):
            raise WorkerPoolExhaustedError(
                f"max_concurrent_syncs reached: capacity shard {self.shard} is full",
                details={"active": len(self.running), "limit": limit},
            )
        self._acquired(sync_id=sync_id, fabric_id=fabric_id, correlation_id=correlation_id)

    @event("Acquired")
    def _acquired(self, sync_id: str, fabric_id: int, correlation_id: str) -> None:
        self.running[sync_id] = fabric_id

    def grant(self, slots: list[Slot], limit: int) -> None:
        """Take a slot of this shard for each of ``slots`` (sync id, fabric id, correlation
        id) at once; FGD_5004 (and nothing taken) if the shard has fewer free. One slot is
        one ``capacity.acquired`` as from ``acquire``; several are ONE ``capacity.granted``
        listing them — a batch of starts costs one capacity event per shard, not one per
        sync (its envelope names no single sync: fabric 0, correlation id "capacity")."""
        if len(slots) == 1:
            self.acquire(*slots[0], limit)
            return
        if self.room(limit) < len(slots):
            raise WorkerPoolExhaustedError(
                f"max_concurrent_syncs reached: capacity shard {self.shard} has "
                f"{self.room(limit)} free slots, not {len(slots)}",
                details={"active": len(self.running), "limit": limit},
            )
        if slots:
            self._granted(slots=[{"sync_id": s, "fabric_id": f, "correlation_id": c}
                                 for s, f, c in slots],
                          fabric_id=0, correlation_id="capacity")

    @event("Granted")
    def _granted(self, slots: list[dict[str, Any]], fabric_id: int,
                 correlation_id: str) -> None:
        for slot in slots:
            self.running[slot["sync_id"]] = slot["fabric_id"]

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
