"""The slots of ``sync.max_concurrent_syncs`` as one object over the capacity shards.

``SlotPool`` is what a start (or a batch of starts, or a sync's ending) works on: it loads
the shards it needs — a start looks at ONE shard while that one has room, and at all of
them (one read) only when it is full — takes slots, frees them, and is saved like an
aggregate (``FGDApplication.save`` saves the shards it changed).

The slots a pool takes are recorded when it is saved, one event per shard: several syncs
started in one save (a batch of bus commands) take theirs in ONE ``capacity.granted``
rather than a ``capacity.acquired`` each — the capacity is then a fixed cost of the save,
not of every start. A single start still records its ``capacity.acquired``.

Which shard a start takes: the one this pool took its last slot from (a process keeps
working one shard, so two intake processes each mostly write their own aggregate), at
first one drawn at random; when that one is full, the next one with room round the ring
of shards (two processes that began on different shards walk apart, where random picks
would meet on the same shard and conflict). A shard another writer was seen using — it
moved since this pool last read it, or a save conflicted on it — is left to that writer
while others have room, and the pool moves to the far side of the ring from it.
With one shard (a limit below ``2 × SLOTS_PER_SHARD``) this is the single aggregate of
before.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from uuid import UUID

from fgd_core.adapters.batch_load import events_after_many, get_many, project
from fgd_core.domain.capacity import (
    SHARD_INDEX,
    SHARDS,
    Slot,
    SyncCapacity,
    shard_count,
    shard_id,
)
from fgd_core.errors import WorkerPoolExhaustedError

if TYPE_CHECKING:
    from fgd_core.application.app import FGDApplication

_random = random.Random()  # the process's draw of a first shard (no security role)


def shard_indexes(aggregate_ids: Iterable[UUID]) -> set[int]:
    """The indexes of the capacity shards among ``aggregate_ids`` (other ids ignored)."""
    return {SHARD_INDEX[i] for i in aggregate_ids if i in SHARD_INDEX}


class SlotPool:
    """The capacity shards of ``limit`` a start or a batch of starts takes slots from.

    ``shards``: shard index → its aggregate (stored state, or new and unsaved), for the
    shards loaded so far."""

    def __init__(self, app: FGDApplication, limit: int,
                 shards: dict[int, SyncCapacity] | None = None,
                 preferred: int | None = None, avoid: Iterable[int] = ()) -> None:
        self.app, self.limit = app, limit
        self.count = shard_count(limit)
        self.shards: dict[int, SyncCapacity] = shards if shards is not None else {}
        self.absent: set[int] = set()  # looked for, not stored (nor created here) yet
        # Slots taken, not yet recorded in their shard (``record``): shard index → slots.
        self.taken: dict[int, list[Slot]] = {}
        self.all_loaded = False
        # Shards another writer was seen using (``avoid``; those ``refresh`` saw move).
        self.elsewhere = {i for i in avoid if i < self.count}
        if preferred is None:
            preferred = _random.choice([i for i in range(self.count)
                                        if i not in self.elsewhere] or range(self.count))
        self.preferred = preferred % self.count

    # -- reading --------------------------------------------------------------------------

    def _load(self, indexes: list[int]) -> None:
        wanted = [i for i in indexes if i not in self.shards and i not in self.absent]
        if not wanted:
            return
        found = get_many(self.app, [shard_id(i) for i in wanted])
        for i in wanted:
            if shard_id(i) in found:
                self.shards[i] = found[shard_id(i)]
            else:
                self.absent.add(i)

    def _shard(self, index: int) -> SyncCapacity:
        """Shard ``index``, created (unsaved) if it is not stored yet."""
        self._load([index])
        if index not in self.shards:
            self.absent.discard(index)
            self.shards[index] = SyncCapacity.open_shard(index)
        return self.shards[index]

    def load_all(self) -> SlotPool:
        """Every shard (one read): what totals, a full shard and a release need."""
        if not self.all_loaded:
            self._load(list(range(SHARDS)))
            self.all_loaded = True
        return self

    def refresh(self) -> SlotPool:
        """The loaded shards brought up to date with what was stored since (one query);
        shards not stored when last looked for are looked for again when needed."""
        self.absent.clear()
        self.all_loaded = False
        stored = [s for s in self.shards.values()
                  if not s.pending_events and s.shard not in self.taken]
        self.elsewhere = set()
        if stored:
            events = events_after_many(self.app, {s.id: s.version for s in stored})
            for shard in stored:
                if shard.id in events:
                    self.elsewhere.add(shard.shard)
                self.shards[shard.shard] = project(shard, events.get(shard.id, ()))
        return self

    @property
    def running(self) -> dict[str, int]:
        """Every running sync holding a slot (sync id → fabric id), across the shards."""
        self.load_all()
        running = {k: v for s in self.shards.values() for k, v in s.running.items()}
        running.update((sync_id, fabric_id) for slots in self.taken.values()
                       for sync_id, fabric_id, _ in slots)
        return running

    @property
    def active(self) -> int:
        return len(self.running)

    def holds(self, sync_id: str) -> bool:
        return sync_id in self.running

    def changed(self) -> list[SyncCapacity]:
        """The shards to save: every slot taken recorded first (``record``)."""
        self.record()
        return [s for s in self.shards.values() if s.pending_events]

    def record(self) -> None:
        """The slots taken so far, as events of their shards: one per shard."""
        taken, self.taken = self.taken, {}
        for index, slots in taken.items():
            self.shards[index].grant(slots, self.limit)

    def versions_read(self) -> dict[UUID, int]:
        """Each loaded shard's id → the stored version it was read at."""
        return {s.id: s.version - len(s.pending_events) for s in self.shards.values()}

    # -- slots ----------------------------------------------------------------------------

    def _room(self, shard: SyncCapacity) -> int:
        return shard.room(self.limit) - len(self.taken.get(shard.shard, ()))

    def _with_room(self) -> SyncCapacity:
        if self.preferred not in self.elsewhere:
            shard = self._shard(self.preferred)
            if self._room(shard):
                return shard
        self.load_all()
        free = [i for i in range(self.count)
                if i in self.absent or self._room(self.shards[i])]
        if not free:
            active = len(self.running)
            raise WorkerPoolExhaustedError(
                f"max_concurrent_syncs reached: {active} of {self.limit} syncs running",
                details={"active": active, "limit": self.limit},
            )
        self.preferred = self._next_shard(free)
        self.elsewhere.discard(self.preferred)  # (once chosen, kept while it has room)
        return self._shard(self.preferred)

    def _next_shard(self, free: list[int]) -> int:
        """Of the shards with room, the next after the current one round the ring: two
        processes that began on different shards walk the ring apart, where random picks
        would meet. If other writers were seen, the farthest from them round the ring
        (their next shard is the one after theirs: stepping just past them would meet it)."""
        n = self.count
        candidates = [i for i in free if i not in self.elsewhere] or free
        if self.elsewhere:
            def clearance(i: int) -> int:
                return min(min((i - e) % n, (e - i) % n) for e in self.elsewhere)

            best = max(map(clearance, candidates))
            candidates = [i for i in candidates if clearance(i) == best]
        return min(candidates, key=lambda i: (i - self.preferred) % n)

    def check(self, limit: int | None = None) -> None:
        """FGD_5004 if no shard has a free slot (changes nothing)."""
        self._with_room()

    def acquire(self, sync_id: str, fabric_id: int, correlation_id: str,
                limit: int | None = None) -> SyncCapacity:
        """Take a slot (FGD_5004 if none is free), recorded when the pool is saved; returns
        the shard that holds it."""
        shard = self._with_room()
        self.taken.setdefault(shard.shard, []).append((sync_id, fabric_id, correlation_id))
        return shard

    def release(self, sync_id: str, fabric_id: int, correlation_id: str) -> bool:
        """Free the sync's slot in whichever shard holds it (any shard: one a former limit
        used too); False (and no event) if none does."""
        self.record()  # (a slot taken by this pool is freed after its taking is recorded)
        for shard in self._holders(sync_id):
            return shard.release(sync_id, fabric_id, correlation_id)
        return False

    def _holders(self, sync_id: str) -> Iterator[SyncCapacity]:
        self.load_all()
        return (s for s in self.shards.values() if s.holds(sync_id))


__all__ = ["SlotPool", "shard_indexes"]
