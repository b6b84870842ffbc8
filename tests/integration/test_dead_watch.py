"""A sync whose message the broker itself dead-lettered (its worker died on every delivery, so
no on_poison ran) is failed at once with the broker's reason, not left to the timeout — on a
real quorum queue's x-delivery-limit, RabbitMQ in a virtual host of the test's own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kombu import Connection, Producer

from fgd_core.application.app import FGDApplication
from fgd_workers.bus import EVENTS_EXCHANGE, connection_factory, declare_topology, work_queue
from fgd_workers.dead_watch import DeadLetterWatcher, broker_reason
from tests.integration.test_commands import (  # noqa: F401 — fixtures
    app,
    broker,
    dead_letters,
)


@pytest.fixture
def watcher(app: FGDApplication, broker: str) -> Iterator[DeadLetterWatcher]:  # noqa: F811
    watch = DeadLetterWatcher(app, connection_factory(broker), max_backoff=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=watch.run, args=(stop,), daemon=True)
    thread.start()
    assert watch.ready.wait(30)
    yield watch
    stop.set()
    thread.join(15)


def stored_state(app: FGDApplication, event_type: str) -> bytes:  # noqa: F811
    for n in app.recorder.select_notifications(start=1, limit=10_000):
        if f'"event_type":"{event_type}"'.encode() in n.state.replace(b" ", b""):
            return bytes(n.state)
    raise AssertionError(f"no {event_type} stored")


def test_a_message_its_workers_died_on_fails_the_sync_with_the_brokers_reason(
    app: FGDApplication, broker: str, watcher: DeadLetterWatcher  # noqa: F811
) -> None:
    fabric = app.register_fabric("lab", "https://github.com/example/fabric.git")
    sync = app.start_sync(fabric.fabric_id, "manual")
    with Connection(broker) as conn:
        channel = conn.channel()
        declare_topology(channel)
        queue = work_queue("test.discovery", ["sync.started"], delivery_limit=1)(channel)
        queue.declare()
        Producer(channel).publish(stored_state(app, "sync.started"), exchange=EVENTS_EXCHANGE,
                                  routing_key="sync.started", serializer=None,
                                  content_type="application/json", delivery_mode=2)
        # a worker takes it and dies before the ack, again and again: the broker gives up
        for _ in range(5):
            with Connection(broker) as worker_conn:
                message = queue(worker_conn.channel()).get(no_ack=False)
                if message is None:
                    break
            # the connection closes with the message unacked: it goes back (or dies)
        else:
            raise AssertionError("the broker never dead-lettered the message")

    deadline = time.monotonic() + 30
    while app.get_sync(sync.sync_id).is_active:
        assert time.monotonic() < deadline, "the watcher never failed the sync"
        time.sleep(0.1)
    failed = app.get_sync(sync.sync_id)
    assert failed.state == "failed"
    error = failed.errors[-1]
    assert error["code"] == "FGD_5001"
    assert "delivery_limit" in error["message"] and "test.discovery" in error["message"]
    assert app.get_fabric(fabric.fabric_id).running_sync_id is None  # the lock is released
    # people still find the dead letter in fgd.dead
    [dead] = dead_letters(broker, 1)
    assert dead.headers["x-death"][0]["reason"] == "delivery_limit"


def test_explained_or_foreign_dead_letters_are_left_alone(
    app: FGDApplication, broker: str  # noqa: F811
) -> None:
    watch = DeadLetterWatcher(app, connection_factory(broker))
    fabric = app.register_fabric("lab", "https://github.com/example/fabric.git")
    sync = app.start_sync(fabric.fabric_id, "manual")
    body = stored_state(app, "sync.started")
    death = {"x-death": [{"reason": "delivery_limit", "queue": "fgd.github", "count": 1}]}
    # explained by our worker (on_poison ran): x-fgd-reason
    assert watch.handle({**death, "x-fgd-reason": "boom"}, body) is None
    # not a dead letter of the broker's; not an envelope; not a sync's event
    assert watch.handle({}, body) is None
    assert watch.handle(death, b"not an envelope") is None
    assert watch.handle(death, stored_state(app, "fabric.registered")) is None
    assert app.get_sync(sync.sync_id).is_active
    # a real one: failed once; again (a second watcher, a redelivery): nothing more
    assert watch.handle(death, body) == sync.sync_id
    errors = app.get_sync(sync.sync_id).errors
    assert watch.handle(death, body) is None
    assert app.get_sync(sync.sync_id).errors == errors


def test_broker_reason_reads_x_death() -> None:
    assert broker_reason({"x-death": [{"reason": b"rejected", "queue": b"fgd.ingestion"}],
                          "x-delivery-count": 4}) == (
        "the broker dead-lettered it from fgd.ingestion (rejected after 5 deliveries): "
        "a worker died on it")
    assert broker_reason({"x-death": "nonsense"}) is None
    assert broker_reason({"x-death": [{"reason": "expired"}], "x-fgd-reason": "ours"}) is None
