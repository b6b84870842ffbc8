"""The relay against a real RabbitMQ and real PostgreSQL (and SQLite): every stored event
reaches the bus at least once, in log order, with the contract's properties and headers.

Each test binds a queue of its own (unique name, deleted afterwards) to ``fgd.events``.
Broker loss is simulated with a TCP proxy that can be cut: the real RabbitMQ is shared.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kombu import Connection, Queue

from fgd_core.application.app import FGDApplication
from fgd_core.domain.sync_operation import SyncOperation
from fgd_workers.bus import (
    DEAD_LETTER_EXCHANGE,
    DEAD_QUEUE,
    EVENTS_EXCHANGE,
    connection_factory,
    declare_topology,
    declare_work_queue,
)
from fgd_workers.relay import INVALID_ROUTING_KEY, Relay
from tests.tcpproxy import TCPProxy, free_port

BROKER = os.environ.get("FGD_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
ROOT = Path(__file__).resolve().parents[2]



# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def amqp() -> Iterator[Connection]:
    with Connection(BROKER) as conn:
        declare_topology(conn.default_channel)
        yield conn


class Bound:
    """A test queue bound to an exchange; ``take(n)`` waits for n messages."""

    def __init__(self, conn: Connection, exchange: Any = EVENTS_EXCHANGE, key: str = "#"):
        self.conn = conn
        self.queue = Queue(f"test-relay-{uuid.uuid4().hex[:10]}", exchange=exchange,
                           routing_key=key, durable=False, auto_delete=False)
        self.queue(conn.default_channel).declare()

    def take(self, n: int, timeout: float = 10.0) -> list[Any]:
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        bound = self.queue(self.conn.default_channel)
        while len(got) < n and time.monotonic() < deadline:
            message = bound.get(no_ack=True)
            if message is None:
                time.sleep(0.005)
            else:
                got.append(message)
        return got

    def rest(self, settle: float = 0.3) -> list[Any]:
        time.sleep(settle)
        return self.take(10**9, timeout=0.05)

    def delete(self) -> None:
        self.queue(self.conn.default_channel).delete()


@pytest.fixture
def bound(amqp: Connection) -> Iterator[Bound]:
    queue = Bound(amqp)
    yield queue
    queue.delete()


def record_sync(app: FGDApplication, warnings: int = 5, fabric_id: int = 1) -> SyncOperation:
    sync = SyncOperation.start(fabric_id, "manual")
    for i in range(warnings):
        sync.warn("FGD_1003", f"warning {i}", f"gitops/raw/{i}.yaml")
    app.save(sync)
    return sync


def stored(app: FGDApplication) -> list[Any]:
    return list(app.recorder.select_notifications(start=1, limit=10**6))


def event_ids(messages: list[Any]) -> list[str]:
    return [m.properties["message_id"] for m in messages]


def started(relay: Relay) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


# --- the contract -----------------------------------------------------------------------------


def test_every_event_reaches_the_bus_in_order(app: FGDApplication, bound: Bound) -> None:
    first, second = record_sync(app, 5), record_sync(app, 3, fabric_id=2)
    log = stored(app)
    relay = Relay(app, connection_factory(BROKER))
    try:
        assert relay.run_once() == len(log) == 10
        assert relay.run_once() == 0
        assert relay.position == log[-1].id
    finally:
        relay.close()

    messages = bound.take(len(log))
    assert bound.rest() == []
    assert [m.body for m in messages] == [n.state for n in log]  # log order, bytes as stored
    traces: dict[str, set[str]] = {}
    for message, notification in zip(messages, log, strict=True):
        envelope = message.decode()
        props, headers = message.properties, message.headers
        assert message.delivery_info["routing_key"] == envelope["event_type"]
        assert message.delivery_info["exchange"] == "fgd.events"
        assert props["message_id"] == envelope["event_id"]
        assert props["delivery_mode"] == 2
        assert message.content_type == "application/json"
        assert headers["fabric_id"] == envelope["fabric_id"]
        assert headers["correlation_id"] == envelope["correlation_id"]
        match = TRACEPARENT.match(headers["traceparent"])
        assert match, headers["traceparent"]
        assert match[1] != "0" * 32 and match[2] != "0" * 16
        traces.setdefault(envelope["correlation_id"], set()).add(match[1])
        assert notification.originator_id in (first.id, second.id)
    # One sync is one trace; two syncs are two traces.
    assert set(traces) == {first.correlation_id, second.correlation_id}
    assert all(len(ids) == 1 for ids in traces.values())
    assert len(set.union(*traces.values())) == 2
    assert messages[0].delivery_info["routing_key"] == "sync.started"
    assert {m.delivery_info["routing_key"] for m in messages} == {"sync.started", "sync.warning"}


def test_repository_credentials_of_older_stores_never_reach_the_bus(
    app: FGDApplication, bound: Bound
) -> None:
    """A fabric saved by an older version with ``user:secret@`` in its URL (refused at save
    today): the relay publishes its events with the URL redacted; the store keeps them."""
    from fgd_core.domain.fabric import Fabric

    fabric = Fabric(fabric_id=1, correlation_id="c", name="old", branch="main",
                    repository="https://user:s3cretpw@github.com/acme/r.git",
                    gitops_directory="gitops", sync_enabled=True, auto_sync_on_change=False,
                    sync_interval_minutes=60)
    fabric._updated(correlation_id="c", changes={"repository": "https://u:s3cretpw@h/r"})
    app.save(fabric)
    relay = Relay(app, connection_factory(BROKER))
    try:
        assert relay.run_once() == 2
    finally:
        relay.close()
    messages = bound.take(2)
    assert [m.delivery_info["routing_key"] for m in messages] == [
        "fabric.registered", "fabric.updated"]
    assert all(b"s3cretpw" not in m.body for m in messages)
    assert messages[0].decode()["payload"]["repository"].endswith("@github.com/acme/r.git")
    assert all(b"s3cretpw" in n.state for n in stored(app))  # as stored, for replay
    assert app.get_fabric(1).repository == "https://u:s3cretpw@h/r"


def test_position_survives_a_new_relay(app: FGDApplication, bound: Bound) -> None:
    record_sync(app, 2)
    first = Relay(app, connection_factory(BROKER))
    assert first.run_once() == 3
    first.close()
    record_sync(app, 1)
    second = Relay(app, connection_factory(BROKER))
    assert second.run_once() == 2  # only what came after the recorded position
    second.close()
    assert len(bound.take(5)) == 5
    assert bound.rest() == []


def test_invalid_stored_event_is_dead_lettered(pg_app: FGDApplication, amqp: Connection,
                                              bound: Bound) -> None:
    record_sync(pg_app, 1)
    recorder: Any = pg_app.recorder
    bad_id = uuid.uuid4()
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(
            f'INSERT INTO "{recorder.datastore.schema}"."{recorder.events_table_name}"'
            " (originator_id, originator_version, topic, state) VALUES (%s, 1, 'x:Y', %s)",
            (bad_id, b'{"event_type": "not valid"}'),
        )
    record_sync(pg_app, 1)
    dead = Bound(amqp, DEAD_LETTER_EXCHANGE, INVALID_ROUTING_KEY)
    relay = Relay(pg_app, connection_factory(BROKER))
    try:
        assert relay.run_once() == 4  # the invalid one is not counted as published
        good = bound.take(4)
        assert len(good) == 4 and bound.rest() == []
        assert all(m.decode()["event_type"] in ("sync.started", "sync.warning") for m in good)
        [letter] = dead.take(1)
        assert letter.body == b'{"event_type": "not valid"}'
        assert "x-fgd-reason" in letter.headers
        message_id = letter.properties["message_id"]
    finally:
        relay.close()
        dead.delete()
        _remove_from_dead_queue(amqp, message_id)


def _remove_from_dead_queue(amqp: Connection, message_id: str) -> None:
    """Take our letter out of the shared fgd.dead; leave anyone else's there."""
    queue = DEAD_QUEUE(amqp.default_channel)
    for _ in range(1000):
        message = queue.get(no_ack=False)
        if message is None:
            return
        if message.properties.get("message_id") == message_id:
            message.ack()
            return
        message.reject(requeue=True)


# --- crashes, concurrency, outages ------------------------------------------------------------

KILLED_RELAY = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fgd_core.application.app import FGDApplication
    from fgd_core.adapters.persistence import postgres_env
    from fgd_workers.bus import connection_factory
    from fgd_workers.relay import Relay

    url, broker, marker = sys.argv[1:4]
    app = FGDApplication(env=postgres_env(url))
    relay = Relay(app, connection_factory(broker), batch_size=100_000)

    def store(position):  # published and confirmed: die before recording the position
        Path(marker).write_text(str(position))
        time.sleep(60)

    relay._acquire()
    relay.coordinator.store = store
    relay.run_once()
    """
)


def test_relay_killed_before_recording_republishes(
    pg_app: FGDApplication, pg_url: str, bound: Bound, tmp_path: Path
) -> None:
    for fabric in (1, 2, 3):
        record_sync(pg_app, 20, fabric_id=fabric)
    log = stored(pg_app)
    marker = tmp_path / "confirmed"
    script = tmp_path / "killed_relay.py"
    script.write_text(KILLED_RELAY)
    proc = subprocess.Popen(
        [sys.executable, str(script), pg_url, BROKER, str(marker)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, "the relay process died on its own"
            time.sleep(0.02)
        assert marker.exists()
        first = bound.take(len(log))  # confirmed by the broker …
        assert len(first) == len(log)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # … and the position was never recorded
        proc.wait(10)

    record_sync(pg_app, 2, fabric_id=4)  # and the store moves on meanwhile
    log = stored(pg_app)
    relay = Relay(pg_app, connection_factory(BROKER))
    deadline = time.monotonic() + 10
    republished = 0
    while republished == 0 and time.monotonic() < deadline:  # the dead session's lock goes
        republished = relay.run_once()
        time.sleep(0.05)
    relay.close()
    assert republished == len(log)
    second = bound.take(len(log))
    assert bound.rest() == []
    seen = event_ids(first) + event_ids(second)
    assert set(seen) == {orjson.loads(n.state)["event_id"] for n in log}  # nothing lost
    assert event_ids(second) == [m.decode()["event_id"] for m in second]


def test_two_relays_only_one_publishes(app: FGDApplication, bound: Bound) -> None:
    record_sync(app, 50)
    relays = [Relay(app, connection_factory(BROKER), lock_poll_interval=0.1) for _ in range(2)]
    runs = [started(r) for r in relays]
    try:
        expected = 51
        for _ in range(5):
            record_sync(app, 9)
            expected += 10
            time.sleep(0.05)
        messages = bound.take(expected)
        messages += bound.rest(0.5)
        ids = event_ids(messages)
        assert len(ids) == expected and len(set(ids)) == expected  # no duplicates
        active = [r for r in relays if r.position is not None]
        assert len(active) == 1

        # Failover: stop the active relay; the waiting one takes over from the position.
        index = relays.index(active[0])
        runs[index][1].set()
        runs[index][0].join(10)
        record_sync(app, 4)
        after = bound.take(5)
        assert len(after) == 5 and bound.rest(0.3) == []
        assert not set(event_ids(after)) & set(ids)
    finally:
        for thread, stop in runs:
            stop.set()
            thread.join(10)


def test_broker_unavailable_then_reachable(pg_app: FGDApplication, bound: Bound) -> None:
    port = free_port()
    url = BROKER.replace("127.0.0.1:5672", f"127.0.0.1:{port}")
    record_sync(pg_app, 9)
    relay = Relay(pg_app, connection_factory(url, connect_timeout=1), max_backoff=0.5)
    thread, stop = started(relay)
    proxy = TCPProxy(("127.0.0.1", 5672), port)
    try:
        time.sleep(1.0)  # nothing listens on the port: the relay retries
        assert thread.is_alive() and bound.rest(0) == []
        proxy.start()
        assert len(bound.take(10)) == 10

        # Cut the broker connection mid-flight; the relay reconnects and carries on.
        proxy.drop()
        record_sync(pg_app, 4)
        again = bound.take(5, timeout=15)
        assert len(again) == 5
        assert [m.delivery_info["routing_key"] for m in again][0] == "sync.started"
    finally:
        stop.set()
        thread.join(10)
        proxy.stop()
    assert not thread.is_alive()


def test_listen_notify_wakes_the_relay(pg_app: FGDApplication, bound: Bound) -> None:
    record_sync(pg_app, 0)
    # Polling every 30 s: only NOTIFY can get an event out within a second.
    relay = Relay(pg_app, connection_factory(BROKER), poll_interval=30)
    thread, stop = started(relay)
    try:
        assert len(bound.take(1)) == 1
        for _ in range(3):
            time.sleep(0.2)  # the relay is idle, waiting
            saved = time.monotonic()
            record_sync(pg_app, 0)
            assert len(bound.take(1, timeout=1.0)) == 1
            assert time.monotonic() - saved < 1.0
    finally:
        stop.set()
        thread.join(10)


def test_cli_relay_runs_until_sigterm(pg_app: FGDApplication, pg_url: str, bound: Bound) -> None:
    record_sync(pg_app, 3)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HEDGEHOG_FGD_DATABASE_URL": pg_url,
           "HEDGEHOG_FGD_BROKER_URL": BROKER}
    proc = subprocess.Popen([sys.executable, "-m", "fgd_core.cli.worker", "relay"], cwd=ROOT,
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert len(bound.take(4, timeout=15)) == 4
        record_sync(pg_app, 1)
        assert len(bound.take(2, timeout=5)) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "guest:guest" not in err  # the password is never logged


def test_work_queue_topology(amqp: Connection) -> None:
    name = f"test-work-{uuid.uuid4().hex[:10]}"
    queue = declare_work_queue(amqp.default_channel, name, ["file.discovered", "sync.*"],
                               delivery_limit=3)
    try:
        assert queue.queue_arguments["x-queue-type"] == "quorum"
        assert queue.queue_arguments["x-dead-letter-exchange"] == "fgd.dlx"
        assert queue.queue_arguments["x-delivery-limit"] == 3
        # Redeclaring with the same arguments is idempotent (every process declares on start).
        declare_work_queue(amqp.default_channel, name, ["file.discovered", "sync.*"],
                           delivery_limit=3)
        with amqp.Producer() as producer:
            producer.publish(b"{}", exchange=EVENTS_EXCHANGE, routing_key="sync.started")
            producer.publish(b"{}", exchange=EVENTS_EXCHANGE, routing_key="file.processed")
        deadline = time.monotonic() + 5
        got = []
        while len(got) < 1 and time.monotonic() < deadline:
            message = queue.get(no_ack=True)
            if message:
                got.append(message)
            time.sleep(0.01)
        time.sleep(0.2)
        assert [m.delivery_info["routing_key"] for m in got] == ["sync.started"]
        assert queue.get(no_ack=True) is None  # file.processed is not bound
    finally:
        queue.delete()
