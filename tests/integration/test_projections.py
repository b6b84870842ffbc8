"""Read projections on real SQLite and PostgreSQL: every query equals what
fgd_core.application.views
derives from the aggregates; filters and pages; read-your-writes; idempotence; rebuild;
crash safety; the live runner; lag; the CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from eventsourcing.persistence import Tracking
from prometheus_client import REGISTRY

from fgd_api.projections import Projections, ProjectionTimeoutError, ReadModelProjection
from fgd_api.projections import handlers as handlers_module
from fgd_api.projections.tables import TABLES
from fgd_core.application import views
from fgd_core.application.app import FGDApplication
from fgd_core.cli.projections import projections as projections_cli
from fgd_core.errors import NotFoundError, ValidationError
from fgd_core.events.envelope import decode_envelope
from fgd_core.events.schemas import known_event_types, validate_envelope
from tests.conftest import PG_URL
from tests.integration.test_application import run_full_sync


def run_failing_sync(app: FGDApplication, fabric_id: int) -> str:
    """Warnings, errors, a failed, a skipped and a processed file, then sync.failed."""
    sid = app.start_sync(fabric_id, "webhook", {"force_refresh": True}).sync_id
    app.begin_stage(sid, "validation")
    app.warn(sid, "FGD_1001", "config.yaml is odd", file="/raw/config.yaml")
    app.warn(sid, "FGD_1003", "no file")
    app.complete_stage(sid, "validation", {"ok": True})
    app.begin_stage(sid, "discovery")
    app.discover_files(
        sid,
        [
            ("raw/a.yaml", 10, "b1"),
            ("raw/b.yml", 20, "b2"),
            ("raw/c.yaml", 30, None),
            ("raw/README", 1, None),
        ],
    )
    app.complete_stage(sid, "discovery")
    app.begin_stage(sid, "file_ingestion")
    app.report_progress(sid, "raw/a.yaml")
    app.process_file(
        sid,
        "raw/a.yaml",
        documents_extracted=2,
        target_files=["managed/vpcs/x.yaml", "managed/vpcs/y.yaml"],
        processing_time=0.2,
        archived_to="archive/a.yaml",
    )
    app.fail_file(
        sid,
        "raw/b.yml",
        3,
        [
            {"code": "FGD_1001", "message": "bad yaml", "index": 1, "line": 4},
            {"code": "FGD_1002", "message": "unsupported", "index": 2},
        ],
    )
    app.skip_file(sid, "raw/README", "not yaml")
    app.record_error(sid, "FGD_4001", "github flaked", {"attempt": 1})
    app.fail_sync(sid, "FGD_3004", "gave up", {"why": "test"})
    return sid


def run_scenario(app: FGDApplication) -> dict[str, Any]:
    """Two fabrics and syncs ending every way there is, with directory reports and renames."""
    lab = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    prod = app.register_fabric(
        "prod", "/srv/git/prod.git", branch="release", sync_interval_minutes=15
    ).fabric_id
    app.record_directory(
        lab, "initialized", directories_created=["/gitops/raw"], files_created=[], commit=None
    )
    app.record_directory(
        prod,
        "validated",
        valid=False,
        issues=[{"issue": "missing_raw_dir"}],
        repairs_needed=["missing_raw_dir"],
        directory_stats={},
    )
    syncs = [run_full_sync(app, lab, files=3), run_failing_sync(app, lab)]
    cancelled = app.start_sync(lab, "scheduled").sync_id
    app.cancel_sync(cancelled, "operator said so")
    timed_out = app.start_sync(prod, "fabric_created").sync_id
    app.begin_stage(timed_out, "validation")
    app.time_out_sync(timed_out, 300.0)
    app.record_directory(prod, "repaired", repairs_made=[], remaining_issues=[], commit="abc")
    app.update_fabric(
        prod, name="production", gitops_directory="ops/gitops", auto_sync_on_change=True
    )
    running = app.start_sync(prod, "manual").sync_id
    app.begin_stage(running, "validation")
    syncs += [cancelled, timed_out, running]
    return {"fabrics": [lab, prod], "syncs": syncs}


def snapshot(p: Projections) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table in TABLES:
        order = ", ".join(f'"{c}"' for c in table.key)
        rows = p.view.fetchall(f"SELECT * FROM {p.view.dialect.table(table.name)} ORDER BY {order}")
        out[table.name] = [p.view.row(table, r) for r in rows]
    return out


def assert_matches_aggregates(p: Projections, app: FGDApplication, ids: dict[str, Any]) -> None:
    for sid in ids["syncs"]:
        sync = app.get_sync(sid)
        assert p.sync_status(sid) == views.sync_status(sync)
        assert p.state_transitions(sid) == views.state_transitions(sync)
        assert p.file_records(sid) == views.file_records(sync)
    for fabric_id in ids["fabrics"]:
        assert p.fabric(fabric_id) == views.fabric_view(app.get_fabric(fabric_id))
        expected = [views.history_item(s) for s in app.syncs_of(fabric_id)]
        assert p.sync_history(fabric_id, limit=100) == {"count": len(expected), "results": expected}
    assert p.fabrics() == [views.fabric_view(f) for f in app.list_fabrics()]


@pytest.fixture
def projections(app: FGDApplication) -> Iterator[Projections]:
    p = Projections(app)
    yield p
    p.stop()


def test_tables_and_indexes_have_the_spec_names(projections: Projections, backend: str) -> None:
    view = projections.view
    if backend == "sqlite":
        names = {r["name"] for r in view.fetchall("SELECT name FROM sqlite_master")}
    else:
        schema = view.dialect.schema  # type: ignore[attr-defined]
        names = {
            r["tablename"]
            for r in view.fetchall("SELECT tablename FROM pg_tables WHERE schemaname = ?", schema)
        }
        names |= {
            r["indexname"]
            for r in view.fetchall("SELECT indexname FROM pg_indexes WHERE schemaname = ?", schema)
        }
    assert {
        "netbox_hedgehog_fgd_sync_operation",
        "netbox_hedgehog_fgd_sync_state_transition",
        "netbox_hedgehog_fgd_file_record",
        "netbox_hedgehog_fgd_audit_log",
        "netbox_hedgehog_fgd_fabric",
        "fgd_projections_tracking",
        "fgd_sync_fabric_started_idx",
        "fgd_sync_state_idx",
        "fgd_sync_correlation_idx",
        "fgd_audit_timestamp_idx",
        "fgd_audit_user_timestamp_idx",
        "fgd_audit_fabric_timestamp_idx",
    } <= names


def test_every_query_equals_the_aggregate_views(
    app: FGDApplication, projections: Projections
) -> None:
    ids = run_scenario(app)
    position = projections.catch_up()
    assert position == app.recorder.max_notification_id()
    assert_matches_aggregates(projections, app, ids)
    status = projections.sync_status(ids["syncs"][1])
    assert status["state"] == "failed" and len(status["warnings"]) == 2
    assert [r["status"] for r in projections.file_records(ids["syncs"][1])] == [
        "processed",
        "failed",
        "discovered",
        "skipped",
    ]
    stamped = projections.state_transitions(ids["syncs"][0], with_timestamps=True)
    assert all(t["timestamp"].endswith("Z") for t in stamped)


def test_catching_up_in_small_batches_and_between_commands(app: FGDApplication) -> None:
    p = Projections(app, batch_size=1)
    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    sid = app.start_sync(fabric_id).sync_id
    p.catch_up()
    assert p.sync_status(sid) == views.sync_status(app.get_sync(sid))
    app.begin_stage(sid, "validation")
    app.complete_stage(sid, "validation")
    p.catch_up()
    assert p.sync_status(sid) == views.sync_status(app.get_sync(sid))
    assert p.fabric(fabric_id) == views.fabric_view(app.get_fabric(fabric_id))


def test_history_filters_and_pagination(app: FGDApplication, projections: Projections) -> None:
    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    sids = [run_full_sync(app, fabric_id, files=1) for _ in range(4)]
    failed = run_failing_sync(app, fabric_id)
    projections.catch_up()
    newest_first = [failed, *reversed(sids)]
    expected = [views.history_item(app.get_sync(s)) for s in newest_first]

    page = projections.sync_history(fabric_id, limit=2, offset=0)
    assert page == {"count": 5, "results": expected[:2]}
    assert projections.sync_history(fabric_id, limit=2, offset=4) == {
        "count": 5,
        "results": expected[4:],
    }
    assert projections.sync_history(fabric_id, limit=10, offset=10)["results"] == []
    assert projections.sync_history(fabric_id)["results"] == expected  # default limit 10

    assert projections.sync_history(fabric_id, status="failed") == {
        "count": 1,
        "results": [expected[0]],
    }
    assert projections.sync_history(fabric_id, status="completed")["count"] == 4

    third = app.get_sync(sids[2]).started_at
    since = projections.sync_history(fabric_id, start_date=third)
    assert [r["sync_id"] for r in since["results"]] == [failed, sids[3], sids[2]]
    until = projections.sync_history(fabric_id, end_date=third.isoformat())
    assert [r["sync_id"] for r in until["results"]] == [sids[2], sids[1], sids[0]]
    both = projections.sync_history(fabric_id, status="completed", start_date=third, end_date=third)
    assert [r["sync_id"] for r in both["results"]] == [sids[2]]

    with pytest.raises(NotFoundError):
        projections.sync_history(999)
    with pytest.raises(ValidationError):
        projections.sync_history(fabric_id, limit=-1)
    with pytest.raises(ValidationError):
        projections.sync_history(fabric_id, start_date="yesterday")


def test_unknown_ids_are_not_found(projections: Projections) -> None:
    for call in (projections.sync_status, projections.state_transitions, projections.file_records):
        with pytest.raises(NotFoundError):
            call("8c1b3e8e-0000-4000-8000-000000000000")
        with pytest.raises(NotFoundError):
            call("not-a-uuid")
    with pytest.raises(NotFoundError):
        projections.fabric(42)
    assert projections.fabrics() == []


def test_read_your_writes(app: FGDApplication, projections: Projections) -> None:
    positions: list[int] = []
    app.subscribe(lambda stored: positions.extend(pos for pos, _ in stored))
    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    sid = app.start_sync(fabric_id).sync_id
    assert projections.wait_for(positions[-1], timeout=2) >= positions[-1]
    assert projections.sync_status(sid)["state"] == "pending"

    app.cancel_sync(sid)
    projections.wait_for(positions[-1], timeout=2)
    assert projections.sync_status(sid) == views.sync_status(app.get_sync(sid))
    assert projections.wait_for(None) == positions[-1]

    with pytest.raises(ProjectionTimeoutError) as caught:
        projections.wait_for(positions[-1] + 1000, timeout=0.2)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.details["reached"] == positions[-1]


def test_read_your_writes_with_the_background_runner(
    app: FGDApplication, projections: Projections
) -> None:
    positions: list[int] = []
    app.subscribe(lambda stored: positions.extend(pos for pos, _ in stored))
    projections.start(poll_interval=0.1)
    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    sid = run_full_sync(app, fabric_id)
    projections.wait_for(positions[-1], timeout=5)
    assert projections.sync_status(sid) == views.sync_status(app.get_sync(sid))


def test_processing_the_same_notifications_twice_changes_nothing(
    app: FGDApplication, projections: Projections
) -> None:
    ids = run_scenario(app)
    projections.catch_up()
    before = snapshot(projections)
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    items = [(n.id, decode_envelope(n.state)) for n in notifications]

    assert projections.apply(items) == 0  # all at or before the position: ignored
    projection = ReadModelProjection(view=projections.view)
    for n in notifications[:5]:
        projection.process_event(n, Tracking("FGD", n.id))
    assert projections.catch_up() == notifications[-1].id
    assert snapshot(projections) == before

    # Even with the position forgotten (but the rows kept), re-applying is harmless.
    with projections.view.datastore.transaction(commit=True) as cursor:
        cursor.execute(
            projections.view.dialect.sql("DELETE FROM {tracking} WHERE application_name = ?"),
            ("FGD",),
        )
    assert projections.position() == 0
    projections.catch_up()
    assert snapshot(projections) == before
    assert_matches_aggregates(projections, app, ids)


def test_apply_fills_the_gap_before_what_it_is_handed(
    app: FGDApplication, projections: Projections
) -> None:
    received: list[tuple[int, dict[str, Any]]] = []
    app.subscribe(received.extend)
    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    sid = run_full_sync(app, fabric_id)
    # Handed only the last save: everything stored before it is applied first, in order.
    last = [item for item in received if item[0] == received[-1][0]]
    assert projections.apply(last) == len(received)
    assert projections.sync_status(sid) == views.sync_status(app.get_sync(sid))


def test_concurrent_writers_apply_each_event_once(
    app: FGDApplication, projections: Projections
) -> None:
    ids = run_scenario(app)
    small = Projections(app, batch_size=3)
    errors: list[BaseException] = []

    def catch_up() -> None:
        try:
            small.catch_up()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=catch_up) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_matches_aggregates(projections, app, ids)


def test_rebuild_yields_identical_rows(app: FGDApplication, projections: Projections) -> None:
    ids = run_scenario(app)
    position = projections.catch_up()
    before = snapshot(projections)
    assert projections.rebuild() == position
    assert snapshot(projections) == before
    assert_matches_aggregates(projections, app, ids)


def test_crash_mid_batch_neither_advances_tracking_nor_writes_rows(
    app: FGDApplication, projections: Projections, monkeypatch: pytest.MonkeyPatch
) -> None:
    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    projections.catch_up()
    done = projections.position()
    before = snapshot(projections)
    sid = run_full_sync(app, fabric_id, files=3)

    calls = 0
    original = handlers_module.HANDLERS["file.processed"]

    def explode(batch: Any, position: int, envelope: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        original(batch, position, envelope)

    monkeypatch.setitem(handlers_module.HANDLERS, "file.processed", explode)
    with pytest.raises(RuntimeError, match="power cut"):  # one batch, one transaction
        projections.view.advance(None, 500)
    assert projections.position() == done
    assert snapshot(projections) == before
    with pytest.raises(NotFoundError):
        projections.sync_status(sid)

    monkeypatch.setitem(handlers_module.HANDLERS, "file.processed", original)
    projections.catch_up()
    assert projections.sync_status(sid) == views.sync_status(app.get_sync(sid))
    assert projections.file_records(sid) == views.file_records(app.get_sync(sid))


def test_background_runner_picks_up_new_events(
    app: FGDApplication, projections: Projections
) -> None:
    """PostgreSQL: live via LISTEN/NOTIFY; SQLite: by polling. No catch_up() here."""
    projections.start(poll_interval=0.1)
    time.sleep(0.3)  # the runner is listening before the write
    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    sid = app.start_sync(fabric_id).sync_id
    target = app.recorder.max_notification_id()
    deadline = time.monotonic() + 1.0
    while projections.position() < target and time.monotonic() < deadline:
        time.sleep(0.01)
    assert projections.position() >= target
    assert projections.sync_status(sid)["state"] == "pending"
    assert projections.last_error is None
    projections.stop()
    assert not projections.running


def test_background_runner_survives_and_reports_a_bad_event(
    app: FGDApplication, projections: Projections, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: Any) -> None:
        raise RuntimeError("poison")

    monkeypatch.setitem(handlers_module.HANDLERS, "fabric.registered", explode)
    projections.start(poll_interval=0.05)
    app.register_fabric("lab", "/srv/git/lab.git")
    deadline = time.monotonic() + 3
    while projections.last_error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert isinstance(projections.last_error, RuntimeError)
    assert projections.running and projections.lag() > 0
    monkeypatch.setitem(
        handlers_module.HANDLERS, "fabric.registered", handlers_module.fabric_registered
    )
    projections.wait_for(app.recorder.max_notification_id(), timeout=5)
    assert projections.fabric(1)["name"] == "lab"


def test_lag_and_its_gauge(app: FGDApplication, projections: Projections) -> None:
    run_full_sync(app, app.register_fabric("lab", "/srv/git/lab.git").fabric_id)
    newest = app.recorder.max_notification_id()
    assert projections.lag() == newest
    assert REGISTRY.get_sample_value("fgd_projection_lag") == newest
    projections.catch_up(upto=5)
    assert projections.status() == {"position": 5, "max_notification_id": newest,
                                    "lag": newest - 5, "stuck": None, "skipped": []}
    projections.catch_up()
    assert projections.lag() == 0
    assert REGISTRY.get_sample_value("fgd_projection_lag") == 0


def audit_envelope(i: int, fabric_id: int, user: str, success: bool = True) -> dict[str, Any]:
    return {
        "event_id": f"00000000-0000-4000-8000-{i:012d}",
        "event_type": "audit.recorded",
        "timestamp": f"2025-08-02T10:30:{i:02d}.000001Z",
        "fabric_id": fabric_id,
        "correlation_id": f"req-{i}",
        "payload": {
            "user": user,
            "action": "sync.trigger",
            "ip_address": "192.0.2.7",
            "user_agent": "curl/8",
            "sync_id": "550e8400-e29b-41d4-a716-446655440000" if i % 2 else None,
            "details": {"n": i},
            "success": success,
            "error_message": "" if success else "denied",
        },
        "metadata": {"source": "fgd_api", "version": "1"},
    }


def test_audit_log_from_audit_recorded_events(projections: Projections) -> None:
    # The audit.recorded event type is being added to fgd_core concurrently; until its
    # schema exists the envelopes are handed to the projection directly.
    envelopes = [
        audit_envelope(1, 1, "alice"),
        audit_envelope(2, 2, "bob"),
        audit_envelope(3, 1, "bob", success=False),
        audit_envelope(4, 1, "alice"),
    ]
    if "audit.recorded" in known_event_types():
        for envelope in envelopes:
            validate_envelope(envelope)
    assert projections.apply(list(enumerate(envelopes, start=1))) == 4
    assert projections.position() == 4

    everything = projections.audit_log()
    assert everything["count"] == 4
    assert [r["id"] for r in everything["results"]] == [4, 3, 2, 1]  # newest first
    assert everything["results"][1] == {
        "id": 3,
        "timestamp": "2025-08-02T10:30:03.000001Z",
        "user": "bob",
        "fabric_id": 1,
        "action": "sync.trigger",
        "ip_address": "192.0.2.7",
        "user_agent": "curl/8",
        "sync_id": "550e8400-e29b-41d4-a716-446655440000",
        "details": {"n": 3},
        "success": False,
        "error_message": "denied",
    }
    assert everything["results"][0]["sync_id"] is None
    assert [r["id"] for r in projections.audit_log(fabric_id=1)["results"]] == [4, 3, 1]
    assert [r["id"] for r in projections.audit_log(user="bob")["results"]] == [3, 2]
    assert [r["id"] for r in projections.audit_log(fabric_id=1, user="bob")["results"]] == [3]
    page = projections.audit_log(limit=2, offset=1)
    assert page["count"] == 4 and [r["id"] for r in page["results"]] == [3, 2]
    # Applying the same events again changes nothing.
    assert projections.apply(list(enumerate(envelopes, start=1))) == 0
    assert projections.audit_log()["count"] == 4


def test_cli_status_and_rebuild(
    app_env: dict[str, str],
    database_url: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("HEDGEHOG_FGD_CONFIG", "HEDGEHOG_FGD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    if database_url:
        monkeypatch.setenv("HEDGEHOG_FGD_DATABASE_URL", database_url)
    else:
        monkeypatch.setenv("HEDGEHOG_FGD_SQLITE_PATH", app_env["SQLITE_DBNAME"])
    app = FGDApplication(env=app_env)
    try:
        sid = run_full_sync(app, app.register_fabric("lab", "/srv/git/lab.git").fabric_id)
        newest = app.recorder.max_notification_id()
        runner = CliRunner()
        result = runner.invoke(projections_cli, ["status"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {
            "position": 0,
            "max_notification_id": newest,
            "lag": newest,
            "stuck": None,
            "skipped": [],
        }
        result = runner.invoke(projections_cli, ["rebuild"])
        assert result.exit_code == 0, result.output
        rebuilt = json.loads(result.output)
        assert (rebuilt["position"], rebuilt["lag"]) == (newest, 0)
        assert Projections(app).sync_status(sid) == views.sync_status(app.get_sync(sid))
    finally:
        app.close()


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_rows_are_readable_with_psql(
    app: FGDApplication, projections: Projections
) -> None:
    sid = run_full_sync(app, app.register_fabric("lab", "/srv/git/lab.git").fabric_id)
    projections.catch_up()
    schema = projections.view.dialect.schema  # type: ignore[attr-defined]
    with psycopg.connect(PG_URL) as conn:
        row = conn.execute(
            f"SELECT state, stages_data->'stages_completed', pg_typeof(started_at)::text,"
            f' pg_typeof(sync_id)::text FROM "{schema}".netbox_hedgehog_fgd_sync_operation'
        ).fetchone()
    assert row is not None and row[0] == "completed" and len(row[1]) == 5
    assert row[2:] == ("timestamp with time zone", "uuid")
    assert projections.sync_status(sid)["state"] == "completed"


def test_audit_log_through_the_event_store(app: FGDApplication, projections: Projections) -> None:
    from fgd_core.application import audit_log

    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    sid = app.start_sync(fabric_id).sync_id
    position = audit_log.record_audit(
        app,
        user="alice",
        action="sync.trigger",
        fabric_id=fabric_id,
        ip_address="192.0.2.1",
        user_agent="curl/8",
        sync_id=sid,
        details={"force": True},
        success=True,
    )
    projections.wait_for(position, timeout=2)
    [entry] = projections.audit_log(fabric_id=fabric_id)["results"]
    assert entry["id"] == position
    assert {k: entry[k] for k in ("user", "action", "sync_id", "details", "success")} == {
        "user": "alice",
        "action": "sync.trigger",
        "sync_id": sid,
        "details": {"force": True},
        "success": True,
    }
    assert projections.audit_log(user="bob")["count"] == 0
