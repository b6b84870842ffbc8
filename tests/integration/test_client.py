"""``fgd_core.adapters.bus_client.FGDClient`` against the real thing: RabbitMQ (a virtual host per
test),
the command consumer on PostgreSQL (a schema per test) and the relay publishing the event
store onto ``fgd.events``. (The contract tests in test_commands.py use plain kombu instead.)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kombu import Connection, Producer

from fgd_core.adapters.bus_client import CommandError, FGDClient
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from fgd_workers.bus import connection_factory
from fgd_workers.commands import CommandIntake, declare_intake
from fgd_workers.relay import Relay
from tests.integration.test_commands import (  # noqa: F401 — fixtures
    app,
    broker,
    dead_letters,
    envelopes,
    started,
)
from tests.integration.test_commands_batching import Bus, consuming
from tests.integration.test_webhooks import SECRET, push_payload, sign

REMOTE = "https://github.com/hedgehog/fabric.git"


@pytest.fixture
def fabric_id(app: FGDApplication) -> int:  # noqa: F811
    return int(app.register_fabric("lab", REMOTE, auto_sync_on_change=True).fabric_id)


@pytest.fixture
def keys(app: FGDApplication, fabric_id: int) -> dict[str, str]:  # noqa: F811
    trigger, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"], fabrics=[fabric_id])
    viewer, _ = create_token(app, "viewer", permissions=["view_fgd_sync"])
    return {"trigger": trigger, "viewer": viewer}


@pytest.fixture
def intake(app: FGDApplication, broker: str) -> Iterator[None]:  # noqa: F811
    """The command consumer on the default intake queue ``fgd.commands.intake`` (the
    client publishes to the exchange; the queue routes it here)."""
    bus = Bus(broker)
    bus.channel.queue_delete(bus.queue)
    bus.queue = "fgd.commands.intake"
    declare_intake(bus.channel)
    with consuming(CommandIntake(app, SECRET), bus):
        yield
    bus.close()


def wait_for_queue(broker_url: str, queue: str, timeout: float = 15) -> None:
    """Until ``queue`` exists: an events() iteration has declared and bound it."""
    deadline = time.monotonic() + timeout
    with Connection(broker_url) as conn:
        while True:
            try:
                conn.channel().queue_declare(queue, passive=True)
                return
            except Exception:  # noqa: BLE001 — not there yet (the channel is closed)
                assert time.monotonic() < deadline, f"{queue} was never declared"
                time.sleep(0.05)


def test_trigger_sync_starts_one_and_answers_busy_and_duplicates(
    app: FGDApplication, fabric_id: int, keys: dict[str, str], broker: str,  # noqa: F811
    intake: None,
) -> None:
    with FGDClient(broker, token=keys["trigger"]) as fgd:
        reply = fgd.trigger_sync(fabric_id, correlation_id="netbox-7", message_id="m-1")
        assert reply["status"] == "started"
        sync = app.get_sync(reply["sync_id"])
        assert sync.correlation_id == "netbox-7" and sync.trigger == "manual"

        again = fgd.trigger_sync(fabric_id, correlation_id="netbox-7", message_id="m-1")
        assert again == {**reply, "duplicate": True}

        with pytest.raises(CommandError) as busy:
            fgd.trigger_sync(fabric_id)
        assert busy.value.code == "FGD_3001"
        assert busy.value.details["sync_id"] == reply["sync_id"]

        published = fgd.trigger_sync(fabric_id, wait=False)
        assert published["status"] == "published"
        assert {"message_id", "correlation_id"} <= set(published)
    assert len(started(app)) == 1


def test_a_refused_command_is_answered_and_dead_lettered_with_the_token_redacted(
    app: FGDApplication, fabric_id: int, keys: dict[str, str], broker: str,  # noqa: F811
    intake: None,
) -> None:
    with FGDClient(broker, token=keys["viewer"]) as fgd, pytest.raises(CommandError) as refused:
        fgd.trigger_sync(fabric_id, timeout=60)
    assert refused.value.code == "FGD_1003"
    assert refused.value.details["reason"] == "forbidden"
    [dead] = dead_letters(broker, 1)
    assert dead.headers["x-fgd-reason-code"] == "forbidden"
    assert dead.headers["authorization"] == "[REDACTED]"
    assert keys["viewer"] not in json.dumps(dead.headers)
    assert started(app) == []


def test_deliver_webhook_relays_a_signed_delivery_once(
    app: FGDApplication, fabric_id: int, broker: str, intake: None  # noqa: F811
) -> None:
    raw = json.dumps(push_payload(REMOTE)).encode()
    delivery = str(uuid.uuid4())
    with FGDClient(broker) as fgd:  # a delivery needs no token: its signature is the check
        reply = fgd.deliver_webhook("push", delivery, sign(raw), raw)
        assert reply["status"] == "accepted" and reply["delivery"] == delivery, reply
        [triggered] = reply["triggered"]
        assert triggered["fabric_id"] == fabric_id
        assert fgd.deliver_webhook("push", delivery, sign(raw), raw.decode())["status"] == (
            "duplicate")
        with pytest.raises(CommandError) as refused:
            fgd.deliver_webhook("push", str(uuid.uuid4()), sign(raw, "wrong"), raw, timeout=60)
        assert refused.value.details["reason"] == "signature"
    [dead] = dead_letters(broker, 1)
    assert dead.headers["x-fgd-reason-code"] == "signature"
    assert [e["payload"]["sync_id"] for e in started(app)] == [triggered["sync_id"]]


def test_events_yields_the_wanted_types_of_one_fabric_once_each_and_skips_junk(
    app: FGDApplication, fabric_id: int, broker: str  # noqa: F811
) -> None:
    other = int(app.register_fabric("other", "https://github.com/hedgehog/other.git").fabric_id)
    queue = f"test-client-events-{uuid.uuid4().hex[:8]}"
    got: list[dict[str, Any]] = []

    def follow() -> None:
        with FGDClient(broker) as fgd:
            got.extend(fgd.events(["sync.*"], fabric_id=fabric_id, queue=queue, timeout=2))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    wait_for_queue(broker, queue)
    with Connection(broker) as conn:
        channel = conn.channel()
        mine = app.start_sync(fabric_id, "manual", correlation_id="mine")
        app.start_sync(other, "manual", correlation_id="theirs")
        app.cancel_sync(mine.sync_id)
        relay = Relay(app, connection_factory(broker))
        try:
            assert relay.run_once() > 0
        finally:
            relay.close()
        first = next(e for e in envelopes(app) if e["event_type"] == "sync.started"
                     and e["fabric_id"] == fabric_id)
        producer = Producer(channel)
        # a repeat of an event already published (same event_id) and a body that is no
        # envelope: neither is yielded
        producer.publish(orjson.dumps(first), exchange="fgd.events", routing_key="sync.started",
                         message_id=first["event_id"], serializer=None,
                         content_type="application/json")
        producer.publish(b"not an envelope", exchange="fgd.events", routing_key="sync.started",
                         serializer=None, content_type="application/json")
    thread.join(30)
    assert not thread.is_alive()
    expected = [e for e in envelopes(app)
                if e["event_type"].startswith("sync.") and e["fabric_id"] == fabric_id]
    assert [e["event_id"] for e in got] == [e["event_id"] for e in expected]
    assert got and all(e["fabric_id"] == fabric_id for e in got)
    assert {e["correlation_id"] for e in got} == {"mine"}
    assert [e["event_type"] for e in got] == ["sync.started", "sync.cancelled"]
    with Connection(broker) as conn:
        conn.channel().queue_delete(queue)


def test_events_made_before_a_trigger_sees_that_syncs_events(
    app: FGDApplication, fabric_id: int, keys: dict[str, str], broker: str,  # noqa: F811
    intake: None,
) -> None:
    """The documented flow: ask for the events, trigger, then iterate — nothing is missed,
    because the queue exists from the events() call on."""
    with FGDClient(broker, token=keys["trigger"]) as fgd:
        started_events = fgd.events(["sync.started"], fabric_id=fabric_id, timeout=5)
        reply = fgd.trigger_sync(fabric_id, correlation_id="flow-1")
        relay = Relay(app, connection_factory(broker))
        try:
            assert relay.run_once() > 0
        finally:
            relay.close()
        first = next(started_events)
        started_events.close()
    assert first["payload"]["sync_id"] == reply["sync_id"]
    assert first["correlation_id"] == "flow-1"
