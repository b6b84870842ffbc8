"""``fgd_core.adapters.batch_load``: many aggregates in two queries, each exactly what
``repository.get`` returns — with a snapshot and events after it, only a snapshot, no
snapshot, not in the store, and through the aggregate cache — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fgd_core.adapters.batch_load import fast_forward, get_fabrics, get_many, stored_after
from fgd_core.application.app import FGDApplication
from fgd_core.domain.base import fabric_uuid
from fgd_core.domain.capacity import CAPACITY_ID, SyncCapacity
from fgd_core.errors import NotFoundError


def state(aggregate: Any) -> dict[str, Any]:
    return dict(vars(aggregate))


@pytest.fixture
def fabrics(app: FGDApplication) -> dict[str, int]:
    """Fabric ids by how they are stored."""
    snap_then_events = app.register_fabric("a", "https://github.com/o/a.git").fabric_id
    snap_only = app.register_fabric("b", "https://github.com/o/b.git").fabric_id
    events_only = app.register_fabric("c", "https://github.com/o/c.git").fabric_id
    app.update_fabric(snap_then_events, branch="first")
    app.take_snapshot(fabric_uuid(snap_then_events))
    app.update_fabric(snap_then_events, branch="second")
    app.update_fabric(snap_then_events, gitops_directory="later")
    app.take_snapshot(fabric_uuid(snap_only))
    app.update_fabric(events_only, branch="only-events")
    return {"snap_then_events": snap_then_events, "snap_only": snap_only,
            "events_only": events_only}


def test_each_fabric_is_what_get_fabric_returns(app: FGDApplication,
                                                fabrics: dict[str, int]) -> None:
    missing = max(fabrics.values()) + 100
    loaded = get_fabrics(app, [*fabrics.values(), missing])
    for fabric_id in fabrics.values():
        expected = app.get_fabric(fabric_id)
        assert state(loaded[fabric_id]) == state(expected)
    first = loaded[fabrics["snap_then_events"]]
    assert (first.branch, first.gitops_directory) == ("second", "later")
    assert first.version == app.get_fabric(fabrics["snap_then_events"]).version
    assert isinstance(loaded[missing], NotFoundError)
    with pytest.raises(NotFoundError) as raised:
        app.get_fabric(missing)
    assert loaded[missing].message == raised.value.message
    assert loaded[missing].details == {"fabric_id": missing}


def test_a_snapshot_is_where_loading_starts(app: FGDApplication,
                                            fabrics: dict[str, int]) -> None:
    """Both snapshotted fabrics have one stored (the load starts from it)."""
    for name in ("snap_then_events", "snap_only"):
        assert list(app.snapshots.get(fabric_uuid(fabrics[name])))  # type: ignore[union-attr]
    fabric_id = fabrics["snap_only"]
    loaded = get_fabrics(app, [fabric_id])[fabric_id]
    assert loaded.version == app.get_fabric(fabric_id).version
    assert get_many(app, []) == {}


@pytest.fixture
def cached_pair(app_env: dict[str, str]) -> Iterator[tuple[FGDApplication, FGDApplication]]:
    reader = FGDApplication(env={**app_env, "AGGREGATE_CACHE_MAXSIZE": "16"})
    writer = FGDApplication(env=app_env)
    yield reader, writer
    reader.close()
    writer.close()


def test_the_cache_is_used_and_fast_forwarded(
        cached_pair: tuple[FGDApplication, FGDApplication]) -> None:
    reader, writer = cached_pair
    fabric_id = writer.register_fabric("a", "https://github.com/o/a.git").fabric_id
    other = writer.register_fabric("b", "https://github.com/o/b.git").fabric_id
    cache: Any = reader.repository.cache
    reader.get_fabric(fabric_id)  # now cached (repository.get puts it there)
    first = get_fabrics(reader, [fabric_id])[fabric_id]
    assert cache.get(fabric_uuid(fabric_id)).version == first.version
    first.update_settings("cid", branch="never-saved")  # the caller's copy, not the cache's
    writer.update_fabric(fabric_id, branch="elsewhere")  # another process moves it on
    again = get_fabrics(reader, [fabric_id, other])
    assert again[fabric_id].branch == "elsewhere"
    assert again[fabric_id].version == writer.get_fabric(fabric_id).version
    assert state(again[fabric_id]) == state(writer.get_fabric(fabric_id))
    assert state(again[other]) == state(writer.get_fabric(other))
    assert cache.get(fabric_uuid(fabric_id)).branch == "elsewhere"
    assert again[fabric_id] is not cache.get(fabric_uuid(fabric_id))
    with pytest.raises(KeyError):  # a batch does not fill the cache (it would evict all)
        cache.get(fabric_uuid(other))


def test_a_full_replay_agrees_with_the_snapshots_a_save_took_across_boundaries(
        app_env: dict[str, str]) -> None:
    """Snapshots are taken of the saved objects (fgd_core.adapters.snapshotting): after a
    save that crosses several snapshot boundaries at once, loading (from the newest
    snapshot) gives what replaying every event gives."""
    app = FGDApplication(env=app_env, max_concurrent_syncs=200)  # one capacity shard
    try:
        capacity = SyncCapacity.open_shard(0)
        for i in range(1, 131):  # 130 capacity.acquired (one slot each) in ONE save
            capacity.acquire(f"00000000-0000-4000-8000-{i:012d}", i, f"cid-{i}", 200)
        app.save(capacity)
        snapshots = list(app.snapshots.get(capacity.id))  # type: ignore[union-attr]
        assert [s.originator_version for s in snapshots] == [capacity.version] == [131]
        replayed: Any = None
        for event in app.events.get(capacity.id):
            replayed = event.mutate(replayed)
        assert state(app.repository.get(capacity.id)) == state(replayed)
        loaded = get_many(app, [capacity.id])[capacity.id]
        assert state(loaded) == state(replayed)
    finally:
        app.close()


def test_a_batch_of_starts_takes_its_slots_in_one_event_per_shard(
        app_env: dict[str, str]) -> None:
    """Syncs started in one save take their slots in ONE ``capacity.granted`` per shard
    (not a ``capacity.acquired`` each); loading and replaying it agree, and every sync
    holds its slot."""
    app = FGDApplication(env=app_env, max_concurrent_syncs=200)  # one capacity shard
    try:
        fabric_ids = [app.register_fabric(f"f{i}", f"https://github.com/o/f{i}.git").fabric_id
                      for i in range(130)]
        slots = app.sync_capacity()
        assert slots is not None
        objs: list[Any] = []
        for fabric_id in fabric_ids:
            prepared = app.prepare_sync(fabric_id, "manual", None, f"cid-{fabric_id}",
                                        capacity=slots)
            objs.extend([prepared.sync, prepared.fabric])
        assert slots.active == 130  # taken, recorded when saved
        app.save(*objs, slots)
        events = list(app.events.get(CAPACITY_ID))
        assert [type(e).__name__ for e in events] == ["Opened", "Granted"]
        granted: Any = events[1]
        assert (granted.fabric_id, granted.correlation_id) == (0, "capacity")
        assert [s["fabric_id"] for s in granted.slots] == fabric_ids
        loaded = get_many(app, [CAPACITY_ID])[CAPACITY_ID]
        replayed: Any = None
        for event in events:
            replayed = event.mutate(replayed)
        assert state(loaded) == state(replayed)
        assert loaded.active == 130
        assert set(loaded.running.values()) == set(fabric_ids)
        again = app.sync_capacity()
        assert again is not None and again.active == 130
        sync_id = app.get_fabric(fabric_ids[0]).running_sync_id
        assert again.release(sync_id, fabric_ids[0], f"cid-{fabric_ids[0]}")
        app.save(again)
        assert app.sync_capacity().active == 129  # type: ignore[union-attr]
    finally:
        app.close()


def test_fast_forward_applies_what_was_stored_after_the_held_version(
        app: FGDApplication, fabrics: dict[str, int]) -> None:
    fabric_id = fabrics["snap_then_events"]
    held = get_fabrics(app, [fabric_id])[fabric_id]
    assert state(fast_forward(app, held)) == state(app.get_fabric(fabric_id))  # nothing new
    app.update_fabric(fabric_id, branch="moved")
    app.update_fabric(fabric_id, gitops_directory="moved-too")
    current = fast_forward(app, held)
    assert (current.branch, current.gitops_directory) == ("moved", "moved-too")
    assert state(current) == state(app.get_fabric(fabric_id))


def test_stored_after_tells_whether_an_aggregate_moved_past_a_version(
        app: FGDApplication, fabrics: dict[str, int]) -> None:
    fabric = app.get_fabric(fabrics["events_only"])
    assert not stored_after(app, fabric.id, fabric.version)
    assert stored_after(app, fabric.id, fabric.version - 1)
    app.update_fabric(fabric.fabric_id, branch="later")
    assert stored_after(app, fabric.id, fabric.version)
    assert not stored_after(app, fabric_uuid(10_000), 0)  # not in the store
