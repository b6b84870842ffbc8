"""The Application on real SQLite and PostgreSQL: lifecycle, guards, bad input, replay."""

from __future__ import annotations

import json
from datetime import datetime

import psycopg
import pytest

from fgd_core.adapters.testing import RecordingEventBus
from fgd_core.application.app import FGDApplication
from fgd_core.application.replay import history, sync_as_of
from fgd_core.application.signals import fgd_file_processed, fgd_sync_completed, fgd_sync_started
from fgd_core.application.views import file_records, state_transitions, sync_status
from fgd_core.errors import (
    FGDErrorCodes,
    IllegalTransitionError,
    NotFoundError,
    SchemaMismatchError,
    SyncAlreadyInProgressError,
    ValidationError,
)
from fgd_core.events.schemas import validate_envelope
from tests.conftest import PG_URL


def log_size(app: FGDApplication) -> int:
    return app.recorder.max_notification_id() or 0


def run_full_sync(app: FGDApplication, fabric_id: int, files: int = 2) -> str:
    sync = app.start_sync(fabric_id, "manual")
    sid = sync.sync_id
    app.begin_stage(sid, "validation")
    app.complete_stage(sid, "validation")
    app.begin_stage(sid, "discovery")
    app.discover_files(sid, [(f"gitops/raw/f{i}.yaml", 100 + i, None) for i in range(files)])
    app.complete_stage(sid, "discovery", {"total_files": files})
    app.begin_stage(sid, "file_ingestion")
    for i in range(files):
        app.process_file(
            sid,
            f"gitops/raw/f{i}.yaml",
            documents_extracted=1,
            target_files=[f"gitops/managed/vpcs/v{i}.yaml"],
            processing_time=0.01,
        )
    app.complete_stage(sid, "file_ingestion")
    for stage in ("github_sync", "reconciliation"):
        app.begin_stage(sid, stage)
        app.complete_stage(sid, stage)
    app.complete_sync(sid)
    return sid


def test_full_sync_lifecycle_updates_fabric_and_views(app: FGDApplication) -> None:
    fabric = app.register_fabric("lab", "/srv/git/lab.git")
    sid = run_full_sync(app, fabric.fabric_id, files=3)

    sync = app.get_sync(sid)
    status = sync_status(sync)
    assert status["state"] == "completed"
    assert status["progress"]["percent_complete"] == 100
    assert status["progress"]["stages_completed"] == [
        "validation", "discovery", "file_ingestion", "github_sync", "reconciliation"
    ]
    assert status["progress"]["files_processed"] == status["progress"]["total_files"] == 3
    assert [t["to_state"] for t in state_transitions(sync)] == [
        "pending", "processing", "completed"
    ]
    assert {r["status"] for r in file_records(sync)} == {"processed"}

    fabric = app.get_fabric(fabric.fabric_id)
    assert fabric.running_sync_id is None
    assert (fabric.last_sync_id, fabric.last_sync_status) == (sid, "completed")
    assert (fabric.total_sync_count, fabric.successful_sync_count) == (1, 1)
    # The lock is released: a second sync may start.
    assert app.start_sync(fabric.fabric_id).state == "pending"


def test_second_start_is_refused_with_3001_naming_the_running_sync(app: FGDApplication) -> None:
    fabric = app.register_fabric("lab", "/srv/git/lab.git")
    running = app.start_sync(fabric.fabric_id)
    before = log_size(app)
    with pytest.raises(SyncAlreadyInProgressError) as caught:
        app.start_sync(fabric.fabric_id, "webhook")
    assert caught.value.code == FGDErrorCodes.SYNC_ALREADY_IN_PROGRESS == "FGD_3001"
    assert caught.value.details["sync_id"] == running.sync_id
    assert caught.value.to_body()["error"]["details"]["sync_id"] == running.sync_id
    assert log_size(app) == before


@pytest.mark.parametrize(
    ("trigger", "options"),
    [
        ("cron", None),
        ("manual", {"force_refresh": "yes"}),
        ("manual", {"dry_run": True}),
    ],
)
def test_invalid_trigger_or_options_store_nothing(
    app: FGDApplication, trigger: str, options: dict | None
) -> None:
    fabric = app.register_fabric("lab", "/srv/git/lab.git")
    before = log_size(app)
    with pytest.raises(ValidationError) as caught:
        app.start_sync(fabric.fabric_id, trigger, options)
    assert caught.value.code == "FGD_1003"
    assert log_size(app) == before
    assert app.get_fabric(fabric.fabric_id).running_sync_id is None


def test_illegal_transition_raises_and_records_nothing(app: FGDApplication) -> None:
    fabric = app.register_fabric("lab", "/srv/git/lab.git")
    sid = app.start_sync(fabric.fabric_id).sync_id
    before = log_size(app)
    with pytest.raises(IllegalTransitionError):
        app.complete_stage(sid, "discovery")  # never begun
    with pytest.raises(IllegalTransitionError):
        app.complete_sync(sid)  # pending syncs cannot complete
    app.cancel_sync(sid)
    after_cancel = log_size(app)
    with pytest.raises(IllegalTransitionError):
        app.begin_stage(sid, "validation")
    with pytest.raises(IllegalTransitionError):
        app.cancel_sync(sid)
    assert log_size(app) == after_cancel > before


def test_event_breaking_its_schema_is_fgd_1004_and_not_stored(app: FGDApplication) -> None:
    fabric = app.register_fabric("lab", "/srv/git/lab.git")
    sid = app.start_sync(fabric.fabric_id).sync_id
    before = log_size(app)
    with pytest.raises(SchemaMismatchError) as caught:
        app.warn(sid, code="not-a-code", message="codes must look like FGD_1234")
    assert caught.value.code == "FGD_1004"
    assert log_size(app) == before
    assert app.get_sync(sid).warnings == []


def test_unknown_fabric_and_sync_are_not_found(app: FGDApplication) -> None:
    with pytest.raises(NotFoundError):
        app.get_fabric(404)
    with pytest.raises(NotFoundError):
        app.start_sync(404)
    with pytest.raises(NotFoundError):
        app.get_sync("not-a-uuid")
    with pytest.raises(NotFoundError):
        app.get_sync("550e8400-e29b-41d4-a716-446655440000")


def test_fabric_names_are_unique_and_ids_allocated(app: FGDApplication) -> None:
    a = app.register_fabric("a", "/r/a")
    b = app.register_fabric("b", "/r/b")
    assert (a.fabric_id, b.fabric_id) == (1, 2)
    with pytest.raises(ValidationError):
        app.register_fabric("a", "/r/other")
    with pytest.raises(ValidationError):
        app.register_fabric("c", "/r/c", gitops_directory="../escape")
    with pytest.raises(ValidationError):
        app.register_fabric("c", "/r/c", sync_interval_minutes=0)
    app.update_fabric(b.fabric_id, name="b2", sync_enabled=False)
    assert [f.name for f in app.list_fabrics()] == ["a", "b2"]
    assert app.register_fabric("b", "/r/b3").fabric_id == 3


def test_history_is_ordered_validated_and_filterable(app: FGDApplication) -> None:
    f1 = app.register_fabric("one", "/r/1")
    f2 = app.register_fabric("two", "/r/2")
    s1 = run_full_sync(app, f1.fabric_id)
    s2 = run_full_sync(app, f2.fabric_id)

    everything = list(history(app))
    positions = [r.position for r in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    for recorded in everything:
        validate_envelope(recorded.envelope)

    of_sync = list(history(app, sync_id=s1))
    assert of_sync[0].event_type == "sync.started"
    assert of_sync[-1].event_type == "sync.completed"
    assert {r.envelope["payload"]["sync_id"] for r in of_sync} == {s1}

    of_fabric2 = list(history(app, fabric_id=f2.fabric_id))
    assert {r.envelope["fabric_id"] for r in of_fabric2} == {f2.fabric_id}
    assert any(r.envelope["payload"].get("sync_id") == s2 for r in of_fabric2)
    assert not any(r.envelope["payload"].get("sync_id") == s1 for r in of_fabric2)
    # Resuming after a position yields exactly the rest.
    middle = positions[len(positions) // 2]
    assert [r.position for r in history(app, after=middle)] == [
        p for p in positions if p > middle
    ]


def test_state_as_of_position_and_time(app: FGDApplication) -> None:
    fabric = app.register_fabric("lab", "/r/lab")
    sid = run_full_sync(app, fabric.fabric_id)
    events = list(history(app, sync_id=sid))
    discovered = next(r for r in events if r.event_type == "stage.completed"
                      and r.envelope["payload"]["stage"] == "discovery")

    then = sync_as_of(app, sid, position=discovered.position)
    assert then.state == "processing"
    assert then.stages_completed == ["validation", "discovery"]
    assert then.total_files == 2 and then.files_processed == 0

    at = datetime.fromisoformat(events[0].envelope["timestamp"])
    assert sync_as_of(app, sid, at=at).state == "pending"
    assert sync_as_of(app, sid).state == "completed"


def test_signals_fire_after_the_event_is_stored(app: FGDApplication) -> None:
    seen: list[tuple[str, int, bool]] = []

    def receiver(sender, **kw):  # type: ignore[no-untyped-def]
        stored = any(r.position == kw["position"] for r in history(app))
        seen.append((kw["event_type"], kw["position"], stored))
        assert sender is not None and sender.fabric_id == kw["event"].fabric_id

    fgd_sync_started.connect(receiver)
    fgd_sync_completed.connect(receiver)
    fgd_file_processed.connect(receiver)
    try:
        fabric = app.register_fabric("lab", "/r/lab")
        run_full_sync(app, fabric.fabric_id, files=2)
    finally:
        for signal in (fgd_sync_started, fgd_sync_completed, fgd_file_processed):
            signal.disconnect(receiver)
    assert [t for t, _, _ in seen] == [
        "sync.started", "file.processed", "file.processed", "sync.completed"
    ]
    assert all(stored for _, _, stored in seen)


def test_recording_event_bus_sees_every_stored_envelope(app: FGDApplication) -> None:
    bus = RecordingEventBus().attach(app)
    fabric = app.register_fabric("lab", "/r/lab")
    sid = run_full_sync(app, fabric.fabric_id)
    bus.assert_event_published("fabric.registered")
    bus.assert_event_published("sync.started", sync_id=sid)
    bus.assert_event_published("sync.completed", final_state="completed")
    with pytest.raises(AssertionError):
        bus.assert_event_published("sync.failed")
    assert [e.event_id for e in bus.events] == [r.envelope["event_id"] for r in history(app)]


def test_envelopes_are_readable_json_in_postgres(pg_schema: str) -> None:
    from fgd_core.adapters.persistence import postgres_env

    app = FGDApplication(env=postgres_env(f"{PG_URL}?schema={pg_schema}"))
    fabric = app.register_fabric("lab", "/r/lab")
    app.start_sync(fabric.fabric_id)
    app.close()
    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(
            f'SELECT envelope FROM "{pg_schema}".fgd_envelopes ORDER BY position'
        ).fetchall()
    assert [r[0]["event_type"] for r in rows][-2:] == ["sync.started", "fabric.syncing"]
    assert rows[-2][0]["payload"]["trigger"] == "manual"


def test_envelopes_readable_in_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from fgd_core.adapters.persistence import sqlite_env

    path = tmp_path / "x.sqlite3"
    app = FGDApplication(env=sqlite_env(path))
    app.register_fabric("lab", "/r/lab")
    app.close()
    rows = sqlite3.connect(path).execute("SELECT envelope FROM fgd_envelopes").fetchall()
    assert json.loads(rows[-1][0])["event_type"] == "fabric.registered"
