"""A large ``sync.max_concurrent_syncs`` is split over capacity shards (SyncCapacity
aggregates whose quotas add up to the limit): two processes taking slots at once mostly
write different aggregates, and the limit still holds across all of them — on SQLite and
on PostgreSQL. The shard size is lowered here so that a limit of 5 makes two shards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from fgd_core.application.app import FGDApplication
from fgd_core.application.capacity_slots import SlotPool
from fgd_core.domain import capacity
from fgd_core.domain.capacity import shard_id, shard_quota
from fgd_core.errors import WorkerPoolExhaustedError

LIMIT = 5  # with SLOTS_PER_SHARD 2: shard 0 holds 3, shard 1 holds 2


@pytest.fixture
def two(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[tuple[FGDApplication, FGDApplication]]:
    monkeypatch.setattr(capacity, "SLOTS_PER_SHARD", 2)
    apps = (FGDApplication(env=app_env, max_concurrent_syncs=LIMIT),
            FGDApplication(env=app_env, max_concurrent_syncs=LIMIT))
    yield apps
    for app in apps:
        app.close()


def event_types(app: FGDApplication) -> list[str]:
    return [orjson.loads(n.state)["event_type"]
            for n in app.recorder.select_notifications(start=1, limit=100_000)]


def running(app: FGDApplication, index: int) -> dict[str, int]:
    shard: Any = app.repository.get(shard_id(index))
    return dict(shard.running)


def test_quotas_add_up_to_the_limit() -> None:
    for limit in (1, 10, 255, 256, 257, 2010, 5000, 10**6):
        assert sum(shard_quota(limit, i) for i in range(capacity.SHARDS)) == limit
    assert capacity.shard_count(255) == 1  # a small limit: the single aggregate of before


def test_two_processes_fill_both_shards_never_beyond_the_limit_and_reuse_a_freed_slot(
    two: tuple[FGDApplication, FGDApplication],
) -> None:
    one, other = two
    ids = [one.register_fabric(f"f{i}", f"/r/{i}").fabric_id for i in range(7)]
    started = [(one if i % 2 else other).start_sync(fid).sync_id
               for i, fid in enumerate(ids[:LIMIT])]
    for app in two:  # full in both processes' view
        with pytest.raises(WorkerPoolExhaustedError) as refused:
            app.start_sync(ids[5])
        assert refused.value.details == {"active": LIMIT, "limit": LIMIT}
    assert len(running(one, 0)) == 3 and len(running(one, 1)) == 2
    assert {**running(one, 0), **running(one, 1)}.keys() == set(started)

    one.cancel_sync(started[-1])  # its slot (in whichever shard) is free again …
    assert other.start_sync(ids[5]).is_active  # … and taken by the other process
    with pytest.raises(WorkerPoolExhaustedError):
        one.start_sync(ids[6])
    types = event_types(one)
    assert types.count("capacity.acquired") == LIMIT + 1
    assert types.count("capacity.released") == 1
    assert types.count("capacity.opened") == 2  # one per shard, created on first use


def test_a_pool_whose_shard_is_full_takes_a_slot_of_another(
    two: tuple[FGDApplication, FGDApplication],
) -> None:
    one, other = two
    ids = [one.register_fabric(f"f{i}", f"/r/{i}").fabric_id for i in range(4)]
    first = SlotPool(one, LIMIT, preferred=1)  # shard 1 holds 2
    for fid in ids[:2]:
        one.save(*one.prepare_sync(fid, capacity=first).objects)
    assert len(running(one, 1)) == 2
    late = SlotPool(other, LIMIT, preferred=1)  # loaded after: shard 1 is full
    prepared = other.prepare_sync(ids[2], capacity=late)
    [shard] = prepared.capacity.changed() if prepared.capacity else []
    assert shard.id == shard_id(0)
    other.save(*prepared.objects)
    assert late.active == 3 and late.holds(prepared.sync.sync_id)
