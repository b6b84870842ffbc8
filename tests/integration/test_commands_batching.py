"""Group commit of bus commands (``CommandConsumer`` + ``CommandIntake.handle_batch``) on real
RabbitMQ (a virtual host per test) and PostgreSQL (a schema per test).

Commands are published *before* the consumer starts, so the broker hands them over together
and the consumer handles them as one batch (asserted through a spy on ``handle_batch``).
No sync is run (no ``submit``): these tests are about intake — what is recorded, answered,
dead-lettered, acked.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Consumer, Producer, Queue

from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from fgd_workers.bus import connection_factory
from fgd_workers.commands import CommandConsumer, CommandIntake, declare_intake
from tests.integration.test_commands import (  # noqa: F401 — fixtures
    app,
    audits,
    broker,
    dead_letters,
    envelopes,
    started,
)


@pytest.fixture
def fabric_id(app: FGDApplication) -> int:  # noqa: F811
    return int(app.register_fabric("lab", "https://github.com/example/fabric.git").fabric_id)


@pytest.fixture
def token(app: FGDApplication, fabric_id: int) -> str:  # noqa: F811
    key, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"], fabrics=[fabric_id])
    return key


class Bus:
    """The intake queue, a publisher and a reply queue (plain kombu)."""

    def __init__(self, broker_url: str) -> None:
        self.url = broker_url
        self.queue = f"test-batch-{uuid.uuid4().hex[:10]}"
        self.conn = Connection(broker_url)
        self.channel = self.conn.channel()
        declare_intake(self.channel, self.queue)
        self.reply_queue = Queue(f"reply.{uuid.uuid4().hex}", exclusive=True,
                                 auto_delete=True)(self.channel)
        self.reply_queue.declare()
        self.replies: list[tuple[str, dict[str, Any]]] = []
        self.consumer = Consumer(self.channel, queues=[self.reply_queue], no_ack=True,
                                 on_message=self._on_reply)
        self.consumer.consume()

    def _on_reply(self, message: Any) -> None:
        self.replies.append((message.properties["correlation_id"], json.loads(message.body)))

    def publish(self, body: dict[str, Any], *, token: str, message_id: str | None = None,
                correlation_id: str | None = None) -> str:
        cid = correlation_id or str(uuid.uuid4())
        Producer(self.channel).publish(
            json.dumps(body).encode(), exchange="fgd.commands", routing_key="sync.trigger",
            headers={"authorization": f"Token {token}"},
            message_id=message_id or str(uuid.uuid4()), correlation_id=cid,
            reply_to=self.reply_queue.name, content_type="application/json",
            content_encoding="utf-8", serializer=None, delivery_mode=2,
        )
        return cid

    def wait_depth(self, n: int) -> None:
        deadline = time.monotonic() + 30
        while self.channel.queue_declare(self.queue, passive=True)[1] < n:
            assert time.monotonic() < deadline, f"{n} messages never reached {self.queue}"
            time.sleep(0.02)

    def wait_replies(self, n: int, timeout: float = 30.0) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while len(self.replies) < n:
            assert time.monotonic() < deadline, f"{len(self.replies)} replies, expected {n}"
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=0.2)
        return self.replies

    def settle(self, seconds: float = 0.5) -> None:
        """Collect whatever else arrives within ``seconds`` (no reply may be missing or extra)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=0.1)

    def depth(self) -> int:
        """Messages left in the intake queue (unacked ones count once the consumer is gone)."""
        return int(self.channel.queue_declare(self.queue, passive=True)[1])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.queue_delete(self.queue)
        self.conn.release()


@pytest.fixture
def bus(broker: str) -> Iterator[Bus]:  # noqa: F811
    b = Bus(broker)
    yield b
    b.close()


class Spy(CommandIntake):
    """The intake, recording the batches it is handed and each command handled alone."""

    def __init__(self, app: FGDApplication) -> None:  # noqa: F811
        super().__init__(app)
        self.batches: list[list[str]] = []
        self.alone: list[tuple[str, int]] = []  # (message_id, x-delivery-count)

    def handle_batch(self, cmds: Any) -> Any:
        self.batches.append([c.message_id for c in cmds])
        return super().handle_batch(cmds)

    def handle(self, cmd: Any) -> Any:
        self.alone.append((cmd.message_id, int(cmd.headers.get("x-delivery-count") or 0)))
        return super().handle(cmd)


@contextlib.contextmanager
def consuming(intake: CommandIntake, bus: Bus, **kwargs: Any) -> Iterator[CommandConsumer]:
    consumer = CommandConsumer(intake, connection_factory(bus.url), queue_name=bus.queue,
                               max_backoff=0.2, **kwargs)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    assert consumer.ready.wait(30)
    try:
        yield consumer
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive()


def receipts(app: FGDApplication) -> list[dict[str, Any]]:  # noqa: F811
    """The details of each receipt: an accepted command's audit entry, with its outcome."""
    return [a["details"] for a in audits(app, "bus_trigger_sync") if "outcome" in a["details"]]


def audits_by_correlation_id(app: FGDApplication, action: str) -> dict[str, Any]:  # noqa: F811
    return {e["correlation_id"]: e["payload"] for e in envelopes(app)
            if e["event_type"] == "audit.recorded" and e["payload"]["action"] == action}


# -- tests ----------------------------------------------------------------------------------


def test_a_duplicate_inside_a_batch_starts_one_sync_and_both_are_answered(
    app: FGDApplication, fabric_id: int, token: str, bus: Bus  # noqa: F811
) -> None:
    message_id = str(uuid.uuid4())
    cid = str(uuid.uuid4())
    for _ in range(2):
        bus.publish({"fabric_id": fabric_id, "correlation_id": cid}, token=token,
                    message_id=message_id, correlation_id=cid)
    other = bus.publish({"fabric_id": fabric_id}, token=token)
    bus.wait_depth(3)
    spy = Spy(app)
    with consuming(spy, bus):
        replies = bus.wait_replies(3)
        bus.settle()
    assert spy.batches and len(spy.batches[0]) == 3, spy.batches  # one batch of all three
    mine = [r for c, r in replies if c == cid]
    assert len(mine) == 2 and len(replies) == 3
    first, second = mine
    assert first["status"] == second["status"] == "started"
    assert first["sync_id"] == second["sync_id"]
    assert "duplicate" not in first and second["duplicate"] is True
    # the third command, after both, finds the fabric syncing
    [(_, busy)] = [(c, r) for c, r in replies if c == other]
    assert busy["error"]["code"] == "FGD_3001"
    assert busy["error"]["details"]["sync_id"] == first["sync_id"]
    assert [e["payload"]["sync_id"] for e in started(app)] == [first["sync_id"]]
    recorded = [r["message_id"] for r in receipts(app)]
    assert len(recorded) == 2 and recorded.count(message_id) == 1  # one per message_id
    entries = audits(app, "bus_trigger_sync")
    assert len(entries) == 3  # every command audited: started, duplicate, FGD_3001
    assert [a["details"].get("status") for a in entries].count("duplicate") == 1
    assert bus.depth() == 0


def test_two_commands_for_one_fabric_in_a_batch_one_starts_the_other_gets_fgd_3001(
    app: FGDApplication, fabric_id: int, token: str, bus: Bus  # noqa: F811
) -> None:
    second_fabric = int(app.register_fabric(
        "lab2", "https://github.com/example/other.git").fabric_id)
    key, _ = create_token(app, "ci2", permissions=["trigger_fgd_sync"],
                          fabrics=[fabric_id, second_fabric])
    a = bus.publish({"fabric_id": fabric_id}, token=key)
    b = bus.publish({"fabric_id": fabric_id}, token=key)
    c = bus.publish({"fabric_id": second_fabric}, token=key)
    bus.wait_depth(3)
    spy = Spy(app)
    with consuming(spy, bus):
        replies = dict(bus.wait_replies(3))
        bus.settle()
    assert len(spy.batches) == 1 and len(spy.batches[0]) == 3, spy.batches
    assert spy.alone == []
    assert replies[a]["status"] == "started"
    assert replies[b]["error"]["code"] == "FGD_3001"
    assert replies[b]["error"]["details"]["sync_id"] == replies[a]["sync_id"]
    assert replies[b]["error"]["correlation_id"] == b
    assert replies[c]["status"] == "started"
    syncs = started(app)
    assert sorted(e["payload"]["sync_id"] for e in syncs) == sorted(
        [replies[a]["sync_id"], replies[c]["sync_id"]])
    assert app.get_fabric(fabric_id).running_sync_id == replies[a]["sync_id"]
    assert app.get_fabric(second_fabric).running_sync_id == replies[c]["sync_id"]
    assert len(receipts(app)) == 3
    by_cid = audits_by_correlation_id(app, "bus_trigger_sync")
    assert by_cid[a]["success"] and by_cid[c]["success"]
    assert not by_cid[b]["success"] and by_cid[b]["details"]["code"] == "FGD_3001"


def test_a_refused_command_in_a_batch_is_dead_lettered_and_audited_the_others_processed(
    app: FGDApplication, fabric_id: int, token: str, bus: Bus  # noqa: F811
) -> None:
    good1 = bus.publish({"fabric_id": fabric_id}, token=token)
    bad = bus.publish({"fabric_id": fabric_id}, token="0" * 40)
    good2 = bus.publish({"fabric_id": fabric_id}, token=token)
    bus.wait_depth(3)
    spy = Spy(app)
    with consuming(spy, bus):
        replies = dict(bus.wait_replies(3))
        [letter] = dead_letters(bus.url, 1)
        bus.settle()
    assert len(spy.batches) == 1 and len(spy.batches[0]) == 3, spy.batches
    assert set(replies) == {good1, bad, good2}  # the refused one is answered with its reason
    assert replies[bad]["error"]["details"]["reason"] == "unauthenticated"
    assert replies[good1]["status"] == "started"
    assert replies[good2]["error"]["code"] == "FGD_3001"
    assert letter.properties["correlation_id"] == bad
    assert "invalid API token" in letter.headers["x-fgd-reason"]
    assert letter.headers["x-fgd-reason-code"] == "unauthenticated"
    assert letter.headers["authorization"] == "[REDACTED]"
    denied = [a for a in audits(app) if not a["success"] and a["details"].get("reason")]
    assert len(denied) == 1 and denied[0]["details"]["reason"] == "unauthenticated"
    assert not audits_by_correlation_id(app, "bus_trigger_sync")[bad]["success"]
    assert "0" * 40 not in json.dumps(audits(app))
    assert len(started(app)) == 1 and len(receipts(app)) == 2
    assert bus.depth() == 0


def test_a_crash_mid_batch_acks_nothing_and_redelivery_processes_each_exactly_once(
    app: FGDApplication, fabric_id: int, token: str, bus: Bus  # noqa: F811
) -> None:
    cids = [bus.publish({"fabric_id": fabric_id}, token=token) for _ in range(4)]
    bus.wait_depth(4)
    spy = Spy(app)
    prepare = spy._prepare
    calls = [0]

    def crashing(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] == 3:  # the third command of the batch: nothing saved yet
            raise RuntimeError("worker crashed mid-batch")
        return prepare(*args)

    spy._prepare = crashing  # type: ignore[method-assign, assignment]
    with consuming(spy, bus):
        replies = dict(bus.wait_replies(4))
        bus.settle()
    assert len(spy.batches) == 1 and len(spy.batches[0]) == 4, spy.batches
    # nothing was acked: all four came back (x-delivery-count 1) and were handled one by one
    assert sorted(n for _, n in spy.alone) == [1, 1, 1, 1], spy.alone
    assert set(replies) == set(cids) and len(bus.replies) == 4  # each answered once
    assert [r.get("status") for r in replies.values()].count("started") == 1
    assert all("duplicate" not in r for r in replies.values())
    assert len(started(app)) == 1
    assert len(receipts(app)) == 4 and len(audits(app, "bus_trigger_sync")) == 4
    assert bus.depth() == 0


def test_a_crash_after_the_batch_commit_is_answered_as_duplicates_on_redelivery(
    app: FGDApplication, fabric_id: int, token: str, bus: Bus  # noqa: F811
) -> None:
    cids = [bus.publish({"fabric_id": fabric_id}, token=token) for _ in range(3)]
    bus.wait_depth(3)
    spy = Spy(app)
    crashed = [False]

    with consuming(spy, bus) as consumer:
        finish = consumer._finish

        def crashing(*args: Any, **kwargs: Any) -> Any:
            if not crashed[0]:  # the batch is committed; no reply, no ack yet
                crashed[0] = True
                raise ConnectionError("connection lost before the acks")
            return finish(*args, **kwargs)

        consumer._finish = crashing  # type: ignore[method-assign, assignment]
        replies = bus.wait_replies(3)
        bus.settle()
    assert crashed[0]
    assert len(spy.batches[0]) == 3
    # every command redelivered (nothing acked) and answered once, as the duplicate it is
    assert sorted(n for _, n in spy.alone) == [1, 1, 1], spy.alone
    assert sorted(c for c, _ in replies) == sorted(cids)
    assert all(r.get("duplicate") is True for _, r in replies)
    assert len(started(app)) == 1 and len(receipts(app)) == 3
    assert bus.depth() == 0


def test_batching_is_off_with_a_delivery_limit_of_one(
    app: FGDApplication, fabric_id: int, token: str, bus: Bus  # noqa: F811
) -> None:
    """With one delivery allowed a failed batch could not be requeued: each command alone."""
    bus.channel.queue_delete(bus.queue)
    declare_intake(bus.channel, bus.queue, delivery_limit=1)
    for _ in range(3):
        bus.publish({"fabric_id": fabric_id}, token=token)
    bus.wait_depth(3)
    spy = Spy(app)
    with consuming(spy, bus, delivery_limit=1):
        bus.wait_replies(3)
    assert spy.batches == [] and len(spy.alone) == 3
