"""The scheduler (``fgd worker scheduler``) and the workers' metrics endpoint.

``Scheduler.tick(now)`` is driven with an injected clock on both real backends (SQLite file,
PostgreSQL schema); RabbitMQ (the per-run vhost) only where the broker is what is tested.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

from fgd_core.adapters.metrics import fgd_active_syncs, fgd_queue_depth
from fgd_core.adapters.persistence import postgres_env
from fgd_core.application.app import FGDApplication
from fgd_core.config import SyncConfig
from fgd_core.domain.webhook import WebhookDelivery
from fgd_workers.bus import declare_work_queue
from fgd_workers.metrics_server import (
    DEAD_LETTERS,
    MetricsServer,
    SyncEventMetrics,
    subscribe_event_metrics,
)
from fgd_workers.scheduler import Scheduler
from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("FGD_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def config(**overrides: Any) -> SyncConfig:
    return SyncConfig(**{"timeout_seconds": 300, "max_concurrent_syncs": 10, **overrides})


def scheduler(app: FGDApplication, **overrides: Any) -> Scheduler:
    return Scheduler(app, config(**overrides), name=f"sched-{uuid.uuid4().hex[:8]}")


def now() -> datetime:
    return datetime.now(UTC)


def syncs(app: FGDApplication, fabric_id: int) -> list[Any]:
    return list(app.syncs_of(fabric_id))


def coalesce(app: FGDApplication, *fabric_ids: int) -> None:
    """A push delivery that found the fabrics already syncing (what the webhook intake
    records in that case)."""
    delivery = uuid.uuid4().hex
    app.save(WebhookDelivery(
        delivery_id=delivery, correlation_id=f"github-{delivery}", github_event="push",
        repository="org/lab", ref="refs/heads/main", after="0" * 40, triggered=[],
        coalesced=list(fabric_ids), ignored=None,
    ))


# --- scheduled syncs ------------------------------------------------------------------------


def test_scheduled_sync_starts_when_due_and_not_before(app: FGDApplication) -> None:
    lab = app.register_fabric("lab", "/srv/git/lab.git", sync_interval_minutes=60)
    off = app.register_fabric("off", "/srv/git/off.git", sync_enabled=False)
    # Stored timestamps are real, the tick's clock is injected: a long timeout keeps
    # "60 minutes later" from also timing out the syncs started in between.
    sched = scheduler(app, timeout_seconds=86_400)
    t0 = now()

    # never synced (the library registered it without its first sync): due at once, as
    # the first sync registration would have started
    first = sched.tick(t0)
    assert [(s["fabric_id"], s["trigger"]) for s in first.started] == [(lab.fabric_id,
                                                                        "fabric_created")]
    sync = app.get_sync(first.started[0]["sync_id"])
    assert sync.trigger == "fabric_created" and sync.is_active
    assert sched.tick(t0).started == []  # running, and not due anyway
    app.cancel_sync(sync.sync_id)

    for minutes in (1, 30, 59):  # interval counts from the last sync's start
        assert sched.tick(t0 + timedelta(minutes=minutes)).started == []
    due = sched.tick(t0 + timedelta(minutes=61))
    assert [(s["fabric_id"], s["trigger"]) for s in due.started] == [(lab.fabric_id,
                                                                      "scheduled")]
    assert sched.tick(t0 + timedelta(minutes=61)).started == []  # running now

    assert len(syncs(app, lab.fabric_id)) == 2
    for days in (1, 30):  # a disabled fabric never
        sched.tick(t0 + timedelta(days=days))
    assert syncs(app, off.fabric_id) == []


def test_a_syncing_fabric_is_skipped_not_queued(app: FGDApplication) -> None:
    lab = app.register_fabric("lab", "/srv/git/lab.git", sync_interval_minutes=1)
    manual = app.start_sync(lab.fabric_id, "manual")
    sched = scheduler(app, timeout_seconds=3600)
    t0 = now()

    for minutes in (2, 3, 4):  # due, but syncing: skipped every time
        report = sched.tick(t0 + timedelta(minutes=minutes))
        assert report.started == []
        assert report.skipped == [
            {"fabric_id": lab.fabric_id, "trigger": "scheduled", "reason": "already syncing"}
        ]
    assert [s.sync_id for s in syncs(app, lab.fabric_id)] == [manual.sync_id]

    app.cancel_sync(manual.sync_id)
    after = sched.tick(t0 + timedelta(minutes=5))
    assert len(after.started) == 1  # one sync, not one per skipped tick
    assert sched.tick(t0 + timedelta(minutes=5, seconds=30)).started == []
    assert len(syncs(app, lab.fabric_id)) == 2


def test_start_race_with_another_writer_is_a_skip(app: FGDApplication) -> None:
    """FGD_3001 from start_sync (someone started a sync after the scheduler looked) is the
    normal skip, not an error."""
    lab = app.register_fabric("lab", "/srv/git/lab.git")
    sched = scheduler(app)
    real_list = app.list_fabrics
    fabrics_before = real_list()
    other = app.start_sync(lab.fabric_id, "manual")
    app.list_fabrics = lambda: fabrics_before  # type: ignore[method-assign]
    try:
        report = sched.tick(now())
    finally:
        del app.list_fabrics
    assert report.started == []
    assert report.skipped == [
        # (as the scheduler saw it, the fabric never synced: its first sync was due)
        {"fabric_id": lab.fabric_id, "trigger": "fabric_created", "reason": "already syncing"}
    ]
    assert [s.sync_id for s in syncs(app, lab.fabric_id)] == [other.sync_id]


def test_a_client_cannot_take_the_correlation_id_of_a_scheduled_start(
    app: FGDApplication,
) -> None:
    """Clients name their own correlation ids; had the scheduler's been predictable, a
    client sending the id of the next tick first would turn that start into a 409."""
    lab = app.register_fabric("lab", "/srv/git/lab.git")
    client = app.register_fabric("client", "/srv/git/client.git")
    sched = scheduler(app)
    t0 = now()
    # lab never synced: the scheduler's start is its fabric_created sync
    predictable = f"{sched.name}-fabric_created-{lab.fabric_id}-{t0:%Y%m%dT%H%M%S}"
    taken = app.start_sync(client.fabric_id, "manual", correlation_id=predictable)

    report = sched.tick(t0)
    [started] = report.started_for(lab.fabric_id)
    assert report.skipped == []
    cid = app.get_sync(started["sync_id"]).correlation_id
    assert cid.startswith(predictable + "-") and cid != predictable
    assert app.get_sync(taken.sync_id).correlation_id == predictable
    # the rest is random: two starts of the same fabric at the same second differ
    app.cancel_sync(started["sync_id"])
    again = sched.tick(t0 + timedelta(days=1))
    [second] = again.started_for(lab.fabric_id)
    assert app.get_sync(second["sync_id"]).correlation_id != cid


# --- timeout ---------------------------------------------------------------------------------


def test_a_stuck_sync_is_timed_out_with_3002_and_the_fabric_syncs_again(
    app: FGDApplication,
) -> None:
    lab = app.register_fabric("lab", "/srv/git/lab.git", sync_interval_minutes=10)
    stuck = app.start_sync(lab.fabric_id, "manual")
    app.begin_stage(stuck.sync_id, "validation")  # "processing", and its worker died
    assert app.get_sync(stuck.sync_id).state == "processing"
    sched = scheduler(app, timeout_seconds=60)
    t0 = now()

    assert sched.tick(t0 + timedelta(seconds=30)).timed_out == []
    report = sched.tick(t0 + timedelta(seconds=61))
    assert [(t["fabric_id"], t["sync_id"]) for t in report.timed_out] == [
        (lab.fabric_id, stuck.sync_id)
    ]
    assert report.started == []  # interval (10 min) counts from the stuck sync's start
    sync = app.get_sync(stuck.sync_id)
    assert sync.state == "timed_out"
    assert sync.errors[-1]["code"] == "FGD_3002"
    assert sync.errors[-1]["details"] == {"timeout_seconds": 60}
    assert app.get_fabric(lab.fabric_id).running_sync_id is None
    assert report.active_syncs == 0

    again = sched.tick(t0 + timedelta(minutes=11))  # the fabric syncs again
    assert [s["fabric_id"] for s in again.started] == [lab.fabric_id]
    assert sched.tick(now()).timed_out == []  # the new one is young


def test_a_sync_that_ended_meanwhile_is_not_timed_out(app: FGDApplication) -> None:
    lab = app.register_fabric("lab", "/srv/git/lab.git")
    sync = app.start_sync(lab.fabric_id, "manual")
    sched = scheduler(app, timeout_seconds=60)
    fabrics_before = app.list_fabrics()
    app.cancel_sync(sync.sync_id)
    app.list_fabrics = lambda: fabrics_before  # type: ignore[method-assign]
    try:
        report = sched.tick(now() + timedelta(seconds=120))
    finally:
        del app.list_fabrics
    assert report.timed_out == []
    assert app.get_sync(sync.sync_id).state == "cancelled"


# --- max_concurrent_syncs -------------------------------------------------------------------


def test_max_concurrent_syncs_is_respected(app: FGDApplication) -> None:
    ids = [app.register_fabric(f"f{i}", f"/srv/git/f{i}.git").fabric_id for i in range(5)]
    manual = app.start_sync(ids[0], "manual")  # counts too
    sched = scheduler(app, max_concurrent_syncs=3)
    t0 = now()

    first = sched.tick(t0)
    assert len(first.started) == 2 and len(first.deferred) == 2
    assert first.active_syncs == 3 and first.queue_depth == 2
    assert sched.tick(t0).started == []  # still at the limit

    app.cancel_sync(manual.sync_id)
    second = sched.tick(t0 + timedelta(seconds=5))
    assert len(second.started) == 1 and len(second.deferred) == 1
    for started in [*first.started, *second.started]:
        app.cancel_sync(started["sync_id"])
    third = sched.tick(t0 + timedelta(seconds=10))
    assert len(third.started) == 1 and third.deferred == []
    # every fabric due got exactly one sync from the scheduler — its first, so a
    # fabric_created one (ids[0] synced manually just now)
    scheduled = [s for i in ids for s in syncs(app, i) if s.trigger != "manual"]
    assert {s.trigger for s in scheduled} == {"fabric_created"}
    assert sorted(s.fabric_id for s in scheduled) == ids[1:]
    assert fgd_active_syncs._value.get() == third.active_syncs == 1


# --- webhook coalescing ---------------------------------------------------------------------


def test_coalesced_webhooks_get_exactly_one_follow_up_after_the_run(
    app: FGDApplication,
) -> None:
    lab = app.register_fabric("lab", "/srv/git/lab.git", auto_sync_on_change=True)
    other = app.register_fabric("other", "/srv/git/other.git")
    running = app.start_sync(lab.fabric_id, "webhook")
    app.start_sync(other.fabric_id, "manual")
    coalesce(app, lab.fabric_id)
    coalesce(app, lab.fabric_id)  # a second push during the same run
    sched = scheduler(app)
    t0 = now()

    assert sched.tick(t0).started == []  # wait for the running sync
    app.cancel_sync(running.sync_id)
    report = sched.tick(t0 + timedelta(seconds=5))
    assert [(s["fabric_id"], s["trigger"]) for s in report.started] == [
        (lab.fabric_id, "webhook")
    ]
    follow_up = report.started[0]["sync_id"]
    assert sched.tick(t0 + timedelta(seconds=10)).started == []
    app.cancel_sync(follow_up)
    assert sched.tick(t0 + timedelta(seconds=15)).started == []  # settled
    assert scheduler(app).tick(t0 + timedelta(seconds=20)).started == []  # after a restart
    assert [s.trigger for s in syncs(app, lab.fabric_id)] == ["webhook", "webhook"]

    # A push coalesced into the follow-up owes one more, after it.
    again = app.start_sync(lab.fabric_id, "webhook")
    coalesce(app, lab.fabric_id)
    app.cancel_sync(again.sync_id)
    fresh = scheduler(app)  # re-reads the deliveries from the log
    assert len(fresh.tick(t0 + timedelta(seconds=25)).started) == 1
    assert len(syncs(app, lab.fabric_id)) == 4


def test_a_sync_started_after_the_push_settles_the_follow_up(app: FGDApplication) -> None:
    lab = app.register_fabric("lab", "/srv/git/lab.git")
    running = app.start_sync(lab.fabric_id, "webhook")
    coalesce(app, lab.fabric_id)
    app.cancel_sync(running.sync_id)
    manual = app.start_sync(lab.fabric_id, "manual")  # fetches after the push
    app.cancel_sync(manual.sync_id)
    assert scheduler(app).tick(now()).started == []


def test_a_disabled_fabric_gets_no_follow_up(app: FGDApplication) -> None:
    lab = app.register_fabric("lab", "/srv/git/lab.git")
    running = app.start_sync(lab.fabric_id, "webhook")
    coalesce(app, lab.fabric_id)
    app.update_fabric(lab.fabric_id, sync_enabled=False)
    app.cancel_sync(running.sync_id)
    assert scheduler(app).tick(now()).started == []


def test_follow_ups_count_against_the_limit(app: FGDApplication) -> None:
    a = app.register_fabric("a", "/srv/git/a.git")
    b = app.register_fabric("b", "/srv/git/b.git")
    run_a = app.start_sync(a.fabric_id, "webhook")
    run_b = app.start_sync(b.fabric_id, "manual")
    coalesce(app, a.fabric_id)
    app.cancel_sync(run_a.sync_id)
    sched = scheduler(app, max_concurrent_syncs=1)
    report = sched.tick(now())
    assert report.started == [] and report.deferred == [
        {"fabric_id": a.fabric_id, "trigger": "webhook"}
    ]
    app.cancel_sync(run_b.sync_id)
    report = sched.tick(now())
    assert [(s["fabric_id"], s["trigger"]) for s in report.started] == [
        (a.fabric_id, "webhook")
    ]


# --- one active scheduler -------------------------------------------------------------------


def test_two_schedulers_only_one_acts(app: FGDApplication, app_env: dict[str, str]) -> None:
    for i in range(3):
        app.register_fabric(f"f{i}", f"/srv/git/f{i}.git", sync_interval_minutes=1)
    second_app = FGDApplication(env=app_env)
    one = Scheduler(app, config(), name="shared")
    two = Scheduler(second_app, config(), name="shared")
    try:
        t0 = now()
        acting = one.run_once(t0)
        assert acting.active and len(acting.started) == 3
        standby = two.run_once(t0 + timedelta(minutes=5))
        assert not standby.active and standby.started == [] and standby.timed_out == []
        assert one.run_once(t0).active  # the holder keeps it
        one.close()  # the active one goes away: the other takes over
        taken = two.run_once(t0)
        assert taken.active
        assert not one.run_once(t0).active
    finally:
        one.close()
        two.close()
        second_app.close()


def test_two_scheduler_loops_at_once_start_each_sync_once(
    app: FGDApplication, app_env: dict[str, str]
) -> None:
    import threading

    ids = [app.register_fabric(f"f{i}", f"/srv/git/f{i}.git").fabric_id for i in range(4)]
    apps = [FGDApplication(env=app_env) for _ in range(2)]
    stop = threading.Event()
    loops = [Scheduler(a, config(), name="loop", interval=0.05) for a in apps]
    threads = [threading.Thread(target=s.run, args=(stop,)) for s in loops]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(not syncs(app, i) for i in ids):
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for a in apps:
            a.close()
    assert [len(syncs(app, i)) for i in ids] == [1, 1, 1, 1]


# --- metrics ---------------------------------------------------------------------------------


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 — 127.0.0.1
        assert response.status == 200
        return response.read().decode()


@pytest.fixture
def metrics_server() -> Iterator[MetricsServer]:
    server = MetricsServer(0)
    yield server
    server.close()


def test_metrics_endpoint_serves_the_spec_metrics(
    app: FGDApplication, metrics_server: MetricsServer
) -> None:
    assert metrics_server.host == "127.0.0.1"
    lab = app.register_fabric("lab", "/srv/git/lab.git")
    unsubscribe = subscribe_event_metrics(app)
    try:
        sync = app.start_sync(lab.fabric_id, "manual")
        app.begin_stage(sync.sync_id, "validation")
        app.complete_stage(sync.sync_id, "validation")
        app.begin_stage(sync.sync_id, "discovery")
        app.discover_files(sync.sync_id, [("gitops/raw/a.yaml", 10, None)])
        app.complete_stage(sync.sync_id, "discovery")
        app.begin_stage(sync.sync_id, "file_ingestion")
        app.skip_file(sync.sync_id, "gitops/raw/a.yaml", "empty")
        app.time_out_sync(sync.sync_id, 1)
    finally:
        unsubscribe()
    report = scheduler(app).tick(now() + timedelta(hours=2))
    assert report.active_syncs == 1

    text = scrape(metrics_server.url)
    fabric = str(lab.fabric_id)
    for name in ("fgd_sync_total", "fgd_files_processed_total", "fgd_sync_duration_seconds",
                 "fgd_file_processing_duration_seconds", "fgd_active_syncs", "fgd_queue_depth",
                 "fgd_dead_letter_messages"):
        assert f"# TYPE {name} " in text, name
    assert (f'fgd_files_processed_total{{fabric_id="{fabric}",file_type="yaml",'
            'status="skipped"} ') in text
    assert (f'fgd_sync_total{{fabric_id="{fabric}",status="timed_out",trigger="manual"}}'
            in text) or (f'fgd_sync_total{{fabric_id="{fabric}",trigger="manual",'
                         'status="timed_out"}' in text)
    assert 'le="600.0"' in text  # the spec's sync duration buckets
    assert "fgd_active_syncs 1.0" in text


def test_worker_event_metrics_leave_the_active_gauge_to_the_scheduler() -> None:
    fgd_active_syncs.set(7)
    metrics = SyncEventMetrics(lambda sync_id: "webhook")
    base = {"fabric_id": 3, "correlation_id": "c"}
    metrics([
        (1, {**base, "event_type": "sync.started",
             "payload": {"sync_id": "s1", "trigger": "webhook"}}),
        (2, {**base, "event_type": "file.processed",
             "payload": {"sync_id": "s1", "file_path": "raw/x.yml", "processing_time": 0.2}}),
        (3, {**base, "event_type": "sync.completed",
             "payload": {"sync_id": "s2", "final_state": "completed",
                         "duration_seconds": 4.0}}),
        (4, {**base, "event_type": "sync.failed", "payload": {}}),  # malformed: ignored
    ])
    assert fgd_active_syncs._value.get() == 7
    from fgd_core.adapters.metrics import fgd_files_processed_total, fgd_sync_total

    assert fgd_sync_total.labels("3", "webhook", "completed")._value.get() >= 1
    assert fgd_files_processed_total.labels("3", "yml", "processed")._value.get() >= 1


def test_queue_depth_and_dead_letters_come_from_the_broker(app: FGDApplication) -> None:
    from fgd_workers.bus import connection_factory

    prefix = f"test-sched-{uuid.uuid4().hex[:8]}"
    # With publisher confirms: a message published without one, on a connection closed at
    # once, may not be in the queue yet when the scheduler asks — or ever (the count then
    # stays 2 and the test saw 3 instead of 4). The 3 messages are the precondition.
    with Connection(BROKER, transport_options={"confirm_publish": True}) as conn:
        channel = conn.default_channel
        queue = declare_work_queue(channel, f"{prefix}.discovery", ["test.never"])
        producer = conn.Producer(channel)
        for i in range(3):
            producer.publish({"n": i}, routing_key=f"{prefix}.discovery", exchange="")
        deadline = time.monotonic() + 30
        while channel.queue_declare(f"{prefix}.discovery", passive=True)[1] < 3:
            assert time.monotonic() < deadline, "the 3 confirmed messages are not counted"
            time.sleep(0.05)
    try:
        for i in range(2):
            app.register_fabric(f"f{i}", f"/srv/git/f{i}.git")
        sched = Scheduler(app, config(max_concurrent_syncs=1), name=f"q-{prefix}",
                          connection_factory=connection_factory(BROKER), queue_prefix=prefix)
        deadline = time.monotonic() + 30
        while True:
            report = sched.tick(now())
            if report.queue_depth >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # 3 sync.started messages waiting for discovery + 1 held back by the limit
        assert report.queue_depth == 4
        assert fgd_queue_depth._value.get() == 4
        assert isinstance(report.dead_letters, int)
        assert DEAD_LETTERS._value.get() == report.dead_letters
        sched.close()
    finally:
        with Connection(BROKER) as conn:
            queue(conn.default_channel).delete()


# --- the process ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_scheduler_processes_one_acts_and_serves_metrics(pg_schema: str, tmp_path: Path) -> None:
    database_url = f"{PG_URL}?schema={pg_schema}"
    app = FGDApplication(env=postgres_env(database_url))
    lab = app.register_fabric("lab", "/srv/git/lab.git")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEDGEHOG_FGD_DATABASE_URL": database_url,
           "HEDGEHOG_FGD_BROKER_URL": BROKER,
           "HEDGEHOG_FGD_QUEUE_PREFIX": f"test-sched-{uuid.uuid4().hex[:8]}"}
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for i, args in enumerate((["--metrics-port", str(port)], [])):
            logs.append(tmp_path / f"scheduler-{i}.log")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "fgd_core.cli.worker", "scheduler", "--tick", "0.2", *args],
                env=env, cwd=tmp_path, stdout=logs[-1].open("wb"), stderr=subprocess.STDOUT,
            ))
            if i == 0:  # the first one holds the lock before the second starts
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not syncs(app, lab.fabric_id):
                    assert procs[0].poll() is None, logs[0].read_text()
                    time.sleep(0.1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "another scheduler is active" not in (
            logs[1].read_text()
        ):
            assert procs[1].poll() is None, logs[1].read_text()
            time.sleep(0.1)
        assert "another scheduler is active" in logs[1].read_text()
        assert len(syncs(app, lab.fabric_id)) == 1

        text = scrape(f"http://127.0.0.1:{port}/metrics")
        for name in ("fgd_active_syncs", "fgd_queue_depth", "fgd_sync_total",
                     "fgd_files_processed_total", "fgd_dead_letter_messages"):
            assert f"# TYPE {name} " in text, name
        assert "fgd_active_syncs 1.0" in text

        procs[0].send_signal(signal.SIGTERM)  # the standby takes over
        assert procs[0].wait(20) == 0, logs[0].read_text()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "now the active scheduler" not in (
            logs[1].read_text()
        ):
            time.sleep(0.1)
        assert "now the active scheduler" in logs[1].read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        app.close()
