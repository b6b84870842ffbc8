"""Two intake processes starting syncs at once: a batch of ``sync.trigger``s whose one save
conflicts because another writer took a ``max_concurrent_syncs`` slot meanwhile (the shared
SyncCapacity moved) is prepared again on fresh state and saved as a batch — not handled one
command at a time, which against another process's batches conflicts on nearly every
command. Real PostgreSQL (a schema per test); two Applications stand for two processes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fgd_core.adapters.persistence import postgres_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from fgd_workers.command_intake import Command, CommandIntake

LIMIT = 100


@pytest.fixture
def intake_app(pg_url: str) -> Iterator[FGDApplication]:
    application = FGDApplication(env=postgres_env(pg_url), max_concurrent_syncs=LIMIT)
    yield application
    application.close()


@pytest.fixture
def other_app(pg_url: str) -> Iterator[FGDApplication]:
    application = FGDApplication(env=postgres_env(pg_url), max_concurrent_syncs=LIMIT)
    yield application
    application.close()


def triggers(key: str, fabric_ids: list[int]) -> list[Command]:
    return [Command("sync.trigger", json.dumps({"fabric_id": f}).encode(),
                    {"authorization": f"Token {key}"}, message_id=str(uuid.uuid4()))
            for f in fabric_ids]


def test_a_batch_that_loses_the_capacity_race_takes_other_slots_without_preparing_again(
    pg_app: FGDApplication, intake_app: FGDApplication, other_app: FGDApplication,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fabric_ids = [pg_app.register_fabric(f"f{i}", f"https://github.com/example/f{i}.git")
                  .fabric_id for i in range(9)]
    key, _ = create_token(pg_app, "ci", permissions=["trigger_fgd_sync"])
    other_app.start_sync(fabric_ids[0])  # the capacity exists (and is cached) before
    intake = CommandIntake(intake_app)

    records: list[int] = []
    real_record = intake_app.record

    def record(collected: Any) -> Any:
        if not records:  # between this batch's read of the capacity and its save …
            other_app.start_sync(fabric_ids[1])  # … another process takes a slot
        records.append(len(collected.events))
        return real_record(collected)

    one_by_one: list[Any] = []
    prepared: list[Any] = []
    real_start, real_prepare = intake._start, intake._prepare
    monkeypatch.setattr(intake_app, "record", record)
    monkeypatch.setattr(intake, "_start", lambda a: one_by_one.append(a) or real_start(a))
    monkeypatch.setattr(intake, "_prepare",
                        lambda *args: prepared.append(args[0]) or real_prepare(*args))

    results = intake.handle_batch(triggers(key, fabric_ids[2:]))

    assert [r.kind for r in results] == ["started"] * 7
    # Conflicted once, then the same events again with the slots: one commit, each
    # command prepared once (7 receipts + 7 syncs + 7 locks + one capacity event).
    assert records == [22, 22]
    assert len(prepared) == 7 and one_by_one == []
    slots = intake_app.sync_capacity()
    assert slots is not None and slots.active == 9
    for fabric_id in fabric_ids:  # one sync per fabric, each holding a slot
        fabric = pg_app.get_fabric(fabric_id)
        assert fabric.running_sync_id is not None
        assert slots.holds(fabric.running_sync_id)
    assert {r.reply["sync_id"] for r in results if r.reply} == {
        pg_app.get_fabric(f).running_sync_id for f in fabric_ids[2:]}


def test_a_batch_whose_retaken_slots_find_no_room_is_prepared_again(
    pg_app: FGDApplication, other_app: FGDApplication, pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The limit filled up meanwhile: the starts that no longer fit are refused (FGD_5004)
    on fresh state, the others start — never more than the limit."""
    limit = 4
    mine = FGDApplication(env=postgres_env(pg_url), max_concurrent_syncs=limit)
    other = FGDApplication(env=postgres_env(pg_url), max_concurrent_syncs=limit)
    try:
        fabric_ids = [pg_app.register_fabric(f"g{i}", f"https://github.com/example/g{i}.git")
                      .fabric_id for i in range(6)]
        key, _ = create_token(pg_app, "ci", permissions=["trigger_fgd_sync"])
        intake = CommandIntake(mine)
        records: list[int] = []
        real_record = mine.record

        def record(collected: Any) -> Any:
            if not records:  # meanwhile another process takes two of the four slots
                other.start_sync(fabric_ids[0])
                other.start_sync(fabric_ids[1])
            records.append(len(collected.events))
            return real_record(collected)

        monkeypatch.setattr(mine, "record", record)
        results = intake.handle_batch(triggers(key, fabric_ids[2:5]))
        assert sorted(r.kind for r in results) == ["FGD_5004", "started", "started"]
        slots = mine.sync_capacity()
        assert slots is not None and slots.active == limit
    finally:
        mine.close()
        other.close()
