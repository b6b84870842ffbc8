"""``SyncCapacity.grant``: the slots of several syncs taken in ONE event (a batch of
starts), all or none; one slot is the ``capacity.acquired`` of before."""

from __future__ import annotations

from typing import Any

import pytest

from fgd_core.domain.capacity import SyncCapacity
from fgd_core.errors import WorkerPoolExhaustedError
from fgd_core.events.envelope import EnvelopeMapper


def sid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def slots(n: int) -> list[tuple[str, int, str]]:
    return [(sid(i), i, f"cid-{i}") for i in range(1, n + 1)]


def test_several_slots_are_one_granted_event_naming_each() -> None:
    shard = SyncCapacity.open_shard(0)
    shard.grant(slots(3), limit=10)
    events: list[Any] = list(shard.collect_events())
    assert [type(e).__name__ for e in events] == ["Opened", "Granted"]
    assert (events[1].fabric_id, events[1].correlation_id) == (0, "capacity")
    assert shard.running == {sid(1): 1, sid(2): 2, sid(3): 3}
    # A valid envelope, and read back it is the same state.
    mapper = EnvelopeMapper()
    replayed: Any = None
    for event in events:
        replayed = mapper.to_domain_event(mapper.to_stored_event(event)).mutate(replayed)
    assert replayed.running == shard.running


def test_one_slot_is_an_acquired_event_as_before() -> None:
    shard = SyncCapacity.open_shard(0)
    shard.grant(slots(1), limit=10)
    events: list[Any] = list(shard.collect_events())
    assert [type(e).__name__ for e in events] == ["Opened", "Acquired"]
    assert (events[1].fabric_id, events[1].correlation_id) == (1, "cid-1")


def test_a_grant_beyond_the_free_slots_takes_none() -> None:
    shard = SyncCapacity.open_shard(0)
    shard.grant(slots(2), limit=3)
    with pytest.raises(WorkerPoolExhaustedError):
        shard.grant([(sid(i), i, f"cid-{i}") for i in (7, 8)], limit=3)
    assert len(shard.running) == 2
    shard.grant([], limit=3)  # nothing to take: no event
    assert [type(e).__name__ for e in shard.collect_events()] == ["Opened", "Granted"]


def pool(preferred: int, elsewhere: set[int] = frozenset()) -> Any:  # type: ignore[assignment]
    from fgd_core.application.capacity_slots import SlotPool

    slot_pool = SlotPool(None, 16 * 128, preferred=preferred)  # type: ignore[arg-type]
    slot_pool.elsewhere = set(elsewhere)
    return slot_pool


def test_a_full_shard_is_followed_by_the_next_with_room_round_the_ring() -> None:
    assert pool(5)._next_shard([0, 2, 6, 9]) == 6
    assert pool(14)._next_shard([0, 2, 6, 9]) == 0  # round the end of the ring


def test_shards_another_writer_uses_are_left_to_it_and_the_pool_moves_far_from_them() -> None:
    # The other writer fills 8 and 9 (and will go on to 10): not 10, the far side.
    assert pool(7, {8, 9})._next_shard(list(range(16))) == 0
    # Only its shards have room: one of them rather than none.
    assert pool(7, {8, 9})._next_shard([9]) == 9
