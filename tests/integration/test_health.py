"""Health that sees everything (issue 13): the relay, each work queue, the scheduler, the
active syncs and the alert thresholds, against real PostgreSQL, RabbitMQ and worker
processes. 503 when a sync cannot make progress, naming what stops it."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kombu import Connection, Producer

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.config import load_settings
from fgd_workers.bus import connection_factory, declare_work_queue
from fgd_workers.consumer import QueueWorker
from fgd_workers.relay import Relay
from fgd_workers.scheduler import Scheduler
from tests.integration.test_relay import BROKER
from tests.integration.test_workers import QUEUES, Cluster, repo  # noqa: F401 — fixture

API = "/api/plugins/hedgehog"


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.1)


def build(tmp_path: Path, database_url: str | None, config: str = "",
          broker: bool = True) -> Container:
    environ = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"),
               "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": str(tmp_path)}
    # The queue names the test set (monkeypatch): the settings carry them to the health check.
    for var in ("HEDGEHOG_FGD_QUEUE_PREFIX", "HEDGEHOG_FGD_COMMANDS_QUEUE"):
        if os.environ.get(var):
            environ[var] = os.environ[var]
    if database_url:
        environ["HEDGEHOG_FGD_DATABASE_URL"] = database_url
    if broker:
        environ["HEDGEHOG_FGD_BROKER_URL"] = BROKER
    if config:
        (tmp_path / "fgd_config.yaml").write_text(config)
        environ["HEDGEHOG_FGD_CONFIG"] = str(tmp_path / "fgd_config.yaml")
    container = Container.build(load_settings(environ=environ))
    for probe in ("broker_health", "queue_stats"):
        if probe in container.extras:
            container.extras[probe].ttl = 0  # no caching in the tests
    return container


def health(client: TestClient) -> tuple[int, dict[str, Any]]:
    response = client.get(f"{API}/health/")
    return response.status_code, response.json()


def problems_of(body: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [p for p in body["problems"] if p["check"] == check]


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A queue prefix of this test's own, seen by the API's health check."""
    name = f"test-health-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("HEDGEHOG_FGD_QUEUE_PREFIX", name)
    monkeypatch.setenv("HEDGEHOG_FGD_COMMANDS_QUEUE", f"{name}.commands")
    yield name
    with Connection(BROKER) as conn:
        for kind in (*QUEUES, "commands"):
            conn.default_channel.queue_delete(f"{name}.{kind}")


def test_a_dead_relay_makes_health_503_and_workers_make_it_healthy(
    tmp_path: Path, pg_url: str, repo: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    cluster = Cluster(tmp_path, pg_url)
    monkeypatch.setenv("HEDGEHOG_FGD_QUEUE_PREFIX", cluster.prefix)
    monkeypatch.setenv("HEDGEHOG_FGD_COMMANDS_QUEUE", f"{cluster.prefix}.commands")
    container = build(tmp_path, pg_url)
    app = container.app
    try:
        with TestClient(create_app(container)) as client:
            # A relay ran once (its position is recorded), then is gone.
            fabric = app.register_fabric("lab", str(repo))
            Relay(app, connection_factory(BROKER)).run_once()
            workers = [cluster.start(kind) for kind in ("discovery", "ingestion", "github")]
            for proc in workers:
                cluster.wait_ready(proc)
            sync = app.start_sync(fabric.fabric_id, "manual")

            def relay_blamed() -> dict[str, Any] | None:
                code, body = health(client)
                return body if code == 503 and problems_of(body, "relay") else None

            body = wait_for(relay_blamed, "503 naming the relay")
            assert body["status"] == "degraded"
            assert body["checks"]["relay"]["status"] == "not_running"
            assert body["checks"]["relay"]["running"] is False
            assert body["checks"]["relay"]["behind"] >= 1
            assert "relay relay is not running" in problems_of(body, "relay")[0]["message"]
            assert body["checks"]["syncs"]["active"] == body["checks"]["active_syncs"] == 1

            relay = cluster.start("relay")
            cluster.wait_ready(relay)
            wait_for(lambda: app.get_sync(sync.sync_id).state == "completed",
                     f"sync completed\n{cluster.logs()}", timeout=60)

            def healthy() -> dict[str, Any] | None:
                code, body = health(client)
                return body if code == 200 else None

            body = wait_for(healthy, "200 once the relay runs")
            relay_check = body["checks"]["relay"]
            assert relay_check["status"] == "ok" and relay_check["running"] is True
            assert relay_check["behind"] == 0
            queues = body["checks"]["queues"]
            for kind in QUEUES:
                assert queues[f"{cluster.prefix}.{kind}"]["consumers"] >= 1, queues
            assert body["checks"]["active_syncs"] == 0
            metrics = client.get("/metrics").text
            assert "fgd_active_syncs 0.0" in metrics

            # The worker logs are JSON lines, as the API's, with a line per file at INFO.
            ingestion = Path(workers[1].log_path).read_text()  # type: ignore[attr-defined]
            lines = [json.loads(line) for line in ingestion.splitlines() if line.strip()]
            assert all({"time", "level", "logger", "message"} <= set(entry)
                       for entry in lines)
            per_file = [e for e in lines if e.get("file_path") and e["level"] == "info"]
            assert {e["file_path"] for e in per_file} == set(
                app.get_sync(sync.sync_id).files), ingestion[-2000:]
            assert all(e["correlation_id"] == sync.correlation_id for e in per_file)
    finally:
        cluster.close()
        container.close()


def test_a_queue_with_messages_and_no_consumer_is_unhealthy_naming_it(
    tmp_path: Path, prefix: str,
) -> None:
    container = build(tmp_path, None, config=(
        "fgd:\n  monitoring: {alert_thresholds: {queue_depth: 1}}\n"))
    try:
        with Connection(BROKER) as conn, TestClient(create_app(container)) as client:
            channel = conn.default_channel
            for kind, keys in QUEUES.items():
                declare_work_queue(channel, f"{prefix}.{kind}", keys)
            code, body = health(client)
            assert code == 200, body  # empty queues, nobody consuming: nothing waits
            ingestion = f"{prefix}.ingestion"
            producer = Producer(channel)
            for n in range(3):
                producer.publish(b"{}", exchange="", routing_key=ingestion,
                                 message_id=str(n), delivery_mode=2)

            def unhealthy() -> dict[str, Any] | None:
                code, body = health(client)
                return body if code == 503 else None

            body = wait_for(unhealthy, "503 naming the queue")
            [problem] = problems_of(body, "queues")
            assert problem["queue"] == ingestion and problem["severity"] == "unhealthy"
            assert "no consumer" in problem["message"]
            assert body["checks"]["queues"][ingestion] == {
                "status": "no_consumer", "messages": 3, "consumers": 0}

            # A consumer holding one message (prefetch 1, unacked): the other two wait in
            # a queue deeper than queue_depth — slow, not stuck: a warning.
            with Connection(BROKER) as other:
                held: list[Any] = []
                holder = other.channel()
                holder.basic_qos(0, 1, False)
                holder.basic_consume(queue=ingestion, callback=held.append)
                other.drain_events(timeout=10)
                assert len(held) == 1

                def deep() -> dict[str, Any] | None:
                    code, body = health(client)
                    entry = body["checks"]["queues"][ingestion]
                    return body if code == 200 and entry["status"] == "deep" else None

                body = wait_for(deep, "a deep queue warning")
                assert body["status"] == "warning"
                assert body["checks"]["queues"][ingestion] == {
                    "status": "deep", "messages": 2, "consumers": 1}
                text = client.get("/metrics").text
                assert 'fgd_alert_breached{threshold="queue_depth"} 1.0' in text
                assert 'fgd_alert_threshold{threshold="queue_depth"} 1.0' in text
    finally:
        container.close()


def test_active_syncs_are_exact_and_thresholds_act(tmp_path: Path, database_url: str | None,
                                                   repo: Path) -> None:  # noqa: F811
    """Embedded (no broker): no relay or queues reported. A sync older than
    sync_duration_seconds and a failure rate above error_rate_percent are warnings (200),
    on the health endpoint and in the fgd_alert_* gauges; fgd_active_syncs is counted from
    the read model, whatever the gauge held."""
    container = build(tmp_path, database_url, broker=False, config=(
        "fgd:\n  monitoring:\n    alert_thresholds: {sync_duration_seconds: 1,"
        " error_rate_percent: 40}\n"))
    app = container.app
    from fgd_core.adapters.metrics import fgd_active_syncs

    try:
        with TestClient(create_app(container)) as client:
            code, body = health(client)
            assert code == 200 and "relay" not in body["checks"] and "queues" not in body[
                "checks"]
            assert body["checks"]["scheduler"]["status"] == "not_seen"  # a warning
            assert body["status"] == "warning"
            fabric = app.register_fabric("lab", str(repo))
            other = app.register_fabric("lab2", str(repo), gitops_directory="other")
            fgd_active_syncs.set(7)  # drifted: the scrape recounts
            one = app.start_sync(fabric.fabric_id, "manual")
            two = app.start_sync(other.fabric_id, "manual")
            wait_for(lambda: "fgd_active_syncs 2.0" in client.get("/metrics").text,
                     "two active syncs")

            def too_long() -> dict[str, Any] | None:
                code, body = health(client)
                return body if code == 200 and body["checks"]["syncs"].get(
                    "over_duration") == sorted([one.sync_id, two.sync_id]) else None

            body = wait_for(too_long, "syncs over sync_duration_seconds")
            assert body["status"] == "warning"
            assert any("sync_duration_seconds" in p["message"]
                       for p in problems_of(body, "syncs"))
            text = client.get("/metrics").text
            assert 'fgd_alert_breached{threshold="sync_duration_seconds"} 1.0' in text
            assert 'fgd_alert_breached{threshold="error_rate_percent"} 0.0' in text

            app.fail_sync(one.sync_id, "FGD_5001", "broken on purpose")
            app.cancel_sync(two.sync_id)

            def rate() -> dict[str, Any] | None:
                code, body = health(client)
                syncs = body["checks"]["syncs"]
                return body if syncs["active"] == 0 and syncs["ended_last_hour"] == 2 else None

            body = wait_for(rate, "both syncs ended")
            assert body["checks"]["syncs"]["error_rate_percent"] == 50.0
            assert body["checks"]["active_syncs"] == 0
            assert any("error_rate_percent" in p["message"] for p in problems_of(body, "syncs"))
            text = client.get("/metrics").text
            assert "fgd_active_syncs 0.0" in text
            assert 'fgd_alert_breached{threshold="error_rate_percent"} 1.0' in text
            assert 'fgd_alert_value{threshold="error_rate_percent"} 50.0' in text
            assert 'fgd_alert_breached{threshold="sync_duration_seconds"} 0.0' in text

            # A scheduler tick is its last run.
            Scheduler(app, container.settings.fgd.sync, interval=1).run_once()
            code, body = health(client)
            assert body["checks"]["scheduler"]["status"] == "ok"
            assert body["checks"]["scheduler"]["name"] == "scheduler"
    finally:
        container.close()


def test_a_redelivered_message_is_logged_at_info(tmp_path: Path, prefix: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fgd_workers")
    calls: list[str] = []

    def handler(envelope: dict[str, Any]) -> str:
        calls.append(envelope["event_id"])
        if len(calls) == 1:
            raise RuntimeError("first delivery fails")
        return "done"

    from tests.integration.test_heartbeat import sync_started

    body = sync_started(tmp_path)
    queue = f"{prefix}.discovery"
    worker = QueueWorker("discovery", queue, QUEUES["discovery"], handler,
                         connection_factory(BROKER))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert worker.ready.wait(20)
        with Connection(BROKER) as conn:
            Producer(conn.default_channel).publish(
                body, exchange="", routing_key=queue, delivery_mode=2,
                content_type="application/json", content_encoding="binary")
        wait_for(lambda: len(calls) == 2, "the message handled again")
    finally:
        stop.set()
        thread.join(10)
    redelivered = [r for r in caplog.records if "redelivered" in r.getMessage()]
    assert len(redelivered) == 1 and redelivered[0].levelno == logging.INFO
    assert "sync.started redelivered (delivery 2)" in redelivered[0].getMessage()


def test_a_read_model_that_stops_moving_is_a_stall(tmp_path: Path, database_url: str | None,
                                                   repo: Path) -> None:  # noqa: F811
    """No fault row, just a read model that no longer follows the log (its runner gone):
    behind and not moving for relay_lag_seconds → 503 naming the projections."""
    container = build(tmp_path, database_url, broker=False, config=(
        "fgd:\n  monitoring: {alert_thresholds: {relay_lag_seconds: 1}}\n"))
    try:
        with TestClient(create_app(container)) as client:
            code, body = health(client)
            assert code == 200, body
            container.read_model.stop()
            container.app.register_fabric("lab", str(repo))

            def stalled() -> dict[str, Any] | None:
                code, body = health(client)
                return body if code == 503 else None

            body = wait_for(stalled, "503 for a stalled read model")
            projections = body["checks"]["projections"]
            assert projections["status"] == "stalled" and projections["lag"] >= 1
            [problem] = problems_of(body, "projections")
            assert "has not moved" in problem["message"]
            container.read_model.start()
            wait_for(lambda: health(client)[0] == 200, "200 once it follows again")
    finally:
        container.close()
