"""``sync.max_concurrent_syncs`` across every trigger and process: the SyncCapacity aggregate
holds one slot per active sync (FGD_5004 WORKER_POOL_EXHAUSTED beyond the limit) — on SQLite
and on PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from fgd_core.application.app import FGDApplication
from fgd_core.domain.capacity import CAPACITY_ID
from fgd_core.errors import FGDError, WorkerPoolExhaustedError

LIMIT = 2


@pytest.fixture
def capped(app_env: dict[str, str]) -> Iterator[FGDApplication]:
    application = FGDApplication(env=app_env, max_concurrent_syncs=LIMIT)
    yield application
    application.close()


def envelopes(app: FGDApplication) -> list[dict[str, Any]]:
    notifications = app.recorder.select_notifications(start=1, limit=100_000)
    return [orjson.loads(n.state) for n in notifications]


def event_types(app: FGDApplication) -> list[str]:
    return [e["event_type"] for e in envelopes(app)]


def complete(app: FGDApplication, sid: str) -> None:
    """Run a sync with no files through every stage to ``completed``."""
    for stage in ("validation", "discovery", "file_ingestion", "github_sync", "reconciliation"):
        app.begin_stage(sid, stage)
        app.complete_stage(sid, stage)
    app.complete_sync(sid)


def fabrics(app: FGDApplication, n: int) -> list[int]:
    return [app.register_fabric(f"f{i}", f"/r/{i}").fabric_id for i in range(n)]


def test_third_sync_is_refused_with_fgd_5004_and_nothing_stored(
    capped: FGDApplication,
) -> None:
    a, b, c = fabrics(capped, 3)
    first = capped.start_sync(a)
    second = capped.start_sync(b, "webhook")
    before = event_types(capped)

    with pytest.raises(WorkerPoolExhaustedError) as info:
        capped.start_sync(c, "scheduled")
    assert info.value.code == "FGD_5004"
    assert info.value.details == {"active": 2, "limit": LIMIT}

    assert event_types(capped) == before  # no sync, no fabric lock, no slot
    assert capped.get_fabric(c).running_sync_id is None
    assert capped.get_fabric(c).sync_ids == []
    capacity: Any = capped.repository.get(CAPACITY_ID)
    assert capacity.running == {first.sync_id: a, second.sync_id: b}
    assert before.count("capacity.acquired") == 2


def test_acquired_and_released_envelopes_name_the_sync_and_its_fabric(
    capped: FGDApplication,
) -> None:
    [a] = fabrics(capped, 1)
    sync = capped.start_sync(a, correlation_id="cid-cap")
    complete(capped, sync.sync_id)
    kinds = ("capacity.acquired", "capacity.released")
    mine = [e for e in envelopes(capped) if e["event_type"] in kinds]
    assert [(e["event_type"], e["fabric_id"], e["correlation_id"], e["payload"])
            for e in mine] == [
        ("capacity.acquired", a, "cid-cap", {"sync_id": sync.sync_id}),
        ("capacity.released", a, "cid-cap", {"sync_id": sync.sync_id}),
    ]


@pytest.mark.parametrize(
    "end",
    [
        complete,
        lambda app, sid: app.cancel_sync(sid),
        lambda app, sid: app.fail_sync(sid, "FGD_3004", "boom"),
        lambda app, sid: app.time_out_sync(sid, 60.0),
    ],
    ids=["complete", "cancel", "fail", "timeout"],
)
def test_ending_a_sync_frees_its_slot(
    capped: FGDApplication, end: Callable[[FGDApplication, str], Any]
) -> None:
    a, b, c = fabrics(capped, 3)
    first = capped.start_sync(a)
    capped.start_sync(b)
    with pytest.raises(WorkerPoolExhaustedError):
        capped.start_sync(c)

    end(capped, first.sync_id)
    assert event_types(capped).count("capacity.released") == 1
    third = capped.start_sync(c)
    assert capped.get_fabric(c).running_sync_id == third.sync_id
    # the fabric whose sync ended can start again once a slot is free
    with pytest.raises(WorkerPoolExhaustedError):
        capped.start_sync(a)


def test_a_busy_fabric_is_still_fgd_3001_at_the_limit(capped: FGDApplication) -> None:
    a, b = fabrics(capped, 2)
    running = capped.start_sync(a)
    capped.start_sync(b)
    with pytest.raises(FGDError) as info:
        capped.start_sync(a)
    assert info.value.code == "FGD_3001"
    assert info.value.details["sync_id"] == running.sync_id


def test_a_sync_without_a_slot_ends_without_a_capacity_event(app_env: dict[str, str]) -> None:
    unlimited = FGDApplication(env=app_env)
    [a] = fabrics(unlimited, 1)
    old = unlimited.start_sync(a)  # started before the limit was set
    capped = FGDApplication(env=app_env, max_concurrent_syncs=LIMIT)
    complete(capped, old.sync_id)
    assert not [t for t in event_types(capped) if t.startswith("capacity.")]
    assert capped.get_fabric(a).running_sync_id is None
    unlimited.close()
    capped.close()


def test_unlimited_stores_no_capacity_events(app: FGDApplication) -> None:
    ids = fabrics(app, 4)
    syncs = [app.start_sync(f) for f in ids]
    for sync in syncs[:2]:
        complete(app, sync.sync_id)
    assert not [t for t in event_types(app) if t.startswith("capacity.")]
    assert app.sync_capacity() is None


def _contender(env: dict[str, str], barrier: Any, results: Any, fabric_id: int) -> None:
    app = FGDApplication(env=env, max_concurrent_syncs=LIMIT)
    barrier.wait(timeout=30)
    try:
        sync = app.start_sync(fabric_id, "webhook")
        results.put((fabric_id, "won", sync.sync_id))
    except FGDError as exc:
        results.put((fabric_id, exc.code, exc.details))
    app.close()


def test_two_processes_racing_for_the_last_slot_exactly_one_wins(
    capped: FGDApplication, app_env: dict[str, str]
) -> None:
    a, b, c = fabrics(capped, 3)
    capped.start_sync(a)  # one of two slots taken: b and c race for the last one

    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_contender, args=(app_env, barrier, results, fabric_id))
        for fabric_id in (b, c)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in range(2)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    (loser_fabric, loser_code, loser_details), (winner_fabric, won, winner_id) = sorted(
        outcomes, key=lambda o: o[1] == "won"
    )
    assert (won, loser_code) == ("won", "FGD_5004"), outcomes
    assert loser_details == {"active": 2, "limit": LIMIT}
    assert capped.get_fabric(winner_fabric).running_sync_id == winner_id
    assert capped.get_fabric(loser_fabric).running_sync_id is None
    assert capped.get_fabric(loser_fabric).sync_ids == []
    capacity: Any = capped.repository.get(CAPACITY_ID)
    assert len(capacity.running) == LIMIT
    assert capacity.running[winner_id] == winner_fabric
