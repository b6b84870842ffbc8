"""A handler that runs longer than the broker's heartbeat timeout (a git fetch, a retry waiting
out a rate limit) keeps its connection: the message is handled once and acked. Without the
busy heartbeat the broker closes the connection and the message is handled twice — the
second test shows that this setup can tell the difference. Real RabbitMQ, 2 s heartbeats."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from kombu import Connection, Producer

from fgd_core.adapters.persistence import persistence_env
from fgd_core.application.app import FGDApplication
from fgd_workers.bus import EVENTS_EXCHANGE, connection_factory, declare_topology
from fgd_workers.consumer import QueueWorker
from tests.integration.test_commands import broker  # noqa: F401 — fixture

HEARTBEAT = 2.0
HANDLER_SECONDS = 4 * HEARTBEAT  # the broker gives up after about two missed heartbeats


def sync_started(tmp_path: Path) -> bytes:
    app = FGDApplication(env=persistence_env(None, tmp_path / "fgd.sqlite3"))
    try:
        fabric = app.register_fabric("lab", "https://github.com/example/fabric.git")
        app.start_sync(fabric.fabric_id, "manual")
        for n in app.recorder.select_notifications(start=1, limit=100):
            if b"sync.started" in n.state:
                return bytes(n.state)
    finally:
        app.close()
    raise AssertionError("no sync.started")


def run_slow_worker(broker_url: str, body: bytes, *, busy_heartbeat: bool) -> list[float]:
    calls: list[float] = []

    def slow(envelope: dict[str, Any]) -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(HANDLER_SECONDS)
        return "done"

    worker = QueueWorker("slow", "test.slow", ["sync.started"], slow,
                         connection_factory(broker_url, heartbeat=HEARTBEAT), max_backoff=0.2)
    if not busy_heartbeat:
        worker._busy = contextlib.nullcontext  # type: ignore[method-assign, assignment]
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    assert worker.ready.wait(30)
    with Connection(broker_url) as conn:
        channel = conn.channel()
        declare_topology(channel)
        Producer(channel).publish(body, exchange=EVENTS_EXCHANGE, routing_key="sync.started",
                                  serializer=None, content_type="application/json")
        deadline = time.monotonic() + HANDLER_SECONDS + 20
        while True:  # until the message is gone for good (acked) and nothing more comes
            _, ready, unacked = channel.queue_declare("test.slow", passive=True)
            if calls and ready == 0 and time.monotonic() - calls[-1] > HANDLER_SECONDS + 3:
                break
            assert time.monotonic() < deadline, f"still {ready} ready, calls {calls}"
            time.sleep(0.2)
    stop.set()
    thread.join(15)
    return calls


def test_a_long_handler_keeps_its_connection_and_runs_once(
    broker: str, tmp_path: Path  # noqa: F811
) -> None:
    calls = run_slow_worker(broker, sync_started(tmp_path), busy_heartbeat=True)
    assert len(calls) == 1


def test_without_the_busy_heartbeat_the_broker_drops_it_and_it_runs_twice(
    broker: str, tmp_path: Path  # noqa: F811
) -> None:
    calls = run_slow_worker(broker, sync_started(tmp_path), busy_heartbeat=False)
    assert len(calls) == 2
