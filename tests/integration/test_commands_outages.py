"""Consumers while the event store is away. The command consumer behind a TCP proxy to the
real PostgreSQL that stops, then listens again: commands published during the outage are
answered once the database is back, none dead-lettered, each sync started once. And, made
deterministic with a store that fails on purpose: an outage is waited out in place — the
message is not requeued, so it keeps its delivery count and cannot become poison."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from fgd_core.adapters.persistence import postgres_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from fgd_workers.command_intake import CommandIntake
from tests.conftest import PG_URL
from tests.integration.test_commands import (  # noqa: F401 — fixtures
    app,
    broker,
    started,
)
from tests.integration.test_commands_batching import Bus, bus, consuming  # noqa: F401
from tests.tcpproxy import TCPProxy

# With a 1 s connect timeout, 5 deliveries of a command (the delivery limit) fail within
# about 7 s: an outage of 10 s would poison every command that does not wait for the store.
CONNECT_TIMEOUT = "1"
OUTAGE_SECONDS = 10.0


@pytest.fixture
def proxy() -> Iterator[TCPProxy]:
    p = TCPProxy(("127.0.0.1", 5432)).start()
    yield p
    p.stop()


def dead_count(broker_url: str) -> int:
    with Connection(broker_url) as conn:
        channel = conn.channel()
        try:
            return int(channel.queue_declare("fgd.dead", passive=True)[1])
        except Exception:  # noqa: BLE001 — never declared: nothing was dead-lettered
            return 0


def test_commands_wait_out_a_database_outage_and_are_answered_once(
    app: FGDApplication, pg_url: str, proxy: TCPProxy, bus: Bus, broker: str,  # noqa: F811
) -> None:
    fabrics = [int(app.register_fabric(f"f{i}", f"https://github.com/example/f{i}.git")
                   .fabric_id) for i in range(4)]
    key, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"], fabrics=fabrics)
    proxied_url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    assert proxied_url != pg_url and PG_URL in pg_url
    through_proxy = FGDApplication(env={**postgres_env(proxied_url),
                                        "POSTGRES_CONNECT_TIMEOUT": CONNECT_TIMEOUT})
    try:
        intake = CommandIntake(through_proxy)
        with consuming(intake, bus):
            proxy.stop()  # PostgreSQL is gone for the consumer
            cids = [bus.publish({"fabric_id": f}, token=key) for f in fabrics]
            time.sleep(OUTAGE_SECONDS)
            assert bus.replies == []  # nothing could be answered meanwhile
            proxy.start()
            replies = dict(bus.wait_replies(len(cids), timeout=60))
            bus.settle(1.0)
        assert sorted(replies) == sorted(cids) and len(bus.replies) == len(cids)
        assert all(r["status"] == "started" for r in replies.values()), replies
        assert len(started(app)) == len(fabrics)
        assert dead_count(broker) == 0
        assert bus.depth() == 0
    finally:
        through_proxy.close()


class Flaky(CommandIntake):
    """The intake, with the event store "unreachable" for its first ``outages`` calls."""

    def __init__(self, app: FGDApplication, outages: int) -> None:  # noqa: F811
        super().__init__(app)
        self.outages = outages
        self.deliveries: list[int] = []  # x-delivery-count of each command handled

    def _maybe_fail(self) -> None:
        from eventsourcing.persistence import OperationalError

        if self.outages:
            self.outages -= 1
            raise OperationalError("couldn't get a connection after 1.00 sec")

    def handle_batch(self, cmds: Any) -> Any:
        self._maybe_fail()
        self.deliveries += [int(c.headers.get("x-delivery-count") or 0) for c in cmds]
        return super().handle_batch(cmds)

    def handle(self, cmd: Any) -> Any:
        self._maybe_fail()
        self.deliveries.append(int(cmd.headers.get("x-delivery-count") or 0))
        return super().handle(cmd)


def test_an_unreachable_store_is_waited_for_in_place_not_counted_against_the_command(
    app: FGDApplication, bus: Bus, broker: str,  # noqa: F811
) -> None:
    fabric_id = int(app.register_fabric("lab", "https://github.com/example/f.git").fabric_id)
    key, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"], fabrics=[fabric_id])
    flaky = Flaky(app, outages=8)  # more failures than the delivery limit (5) allows
    with consuming(flaky, bus):
        cid = bus.publish({"fabric_id": fabric_id}, token=key)
        [(got, reply)] = bus.wait_replies(1, timeout=30)
        bus.settle(0.5)
    assert got == cid and reply["status"] == "started"
    assert flaky.outages == 0 and flaky.deliveries == [0]  # handled on its first delivery
    assert dead_count(broker) == 0 and bus.depth() == 0


def test_a_worker_waits_for_the_store_without_redelivery(broker: str) -> None:  # noqa: F811
    import threading

    from eventsourcing.persistence import InterfaceError
    from kombu import Producer

    from fgd_workers.bus import EVENTS_EXCHANGE, connection_factory, declare_topology
    from fgd_workers.consumer import QueueWorker
    from tests.integration.test_heartbeat import sync_started

    calls: list[int] = []

    def handler(envelope: dict[str, Any]) -> str:
        calls.append(1)
        if len(calls) <= 6:
            raise InterfaceError("the connection is lost")
        return "done"

    worker = QueueWorker("flaky", "test.flaky", ["sync.started"], handler,
                         connection_factory(broker), max_backoff=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    assert worker.ready.wait(30)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp, Connection(broker) as conn:
        channel = conn.channel()
        declare_topology(channel)
        Producer(channel).publish(sync_started(Path(tmp)), exchange=EVENTS_EXCHANGE,
                                  routing_key="sync.started", serializer=None)
        deadline = time.monotonic() + 30
        while len(calls) < 7:
            assert time.monotonic() < deadline, calls
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        thread.join(15)
        # stopped: an unacked message would be back in the queue
        assert channel.queue_declare("test.flaky", passive=True)[1] == 0
    assert len(calls) == 7  # six outages waited out, then handled once, and acked
    assert dead_count(broker) == 0


class Slow(CommandIntake):
    """The intake, pausing after each batch is recorded (before its replies and ack)."""

    def handle_batch(self, cmds: Any) -> Any:
        results = super().handle_batch(cmds)
        time.sleep(0.15)
        return results


def test_commands_survive_the_broker_cut_away_mid_stream(
    app: FGDApplication, broker: str, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    """The consumer's connection to RabbitMQ is reset while it works through a stream of
    commands (a TCP proxy in front of the real broker): it reconnects, and every command is
    answered — the ones recorded before the cut but not yet acked come back and are answered
    as the duplicates they are. Exactly one sync starts; nothing is dead-lettered."""
    fabric_id = int(app.register_fabric("lab", "https://github.com/example/f.git").fabric_id)
    key, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"], fabrics=[fabric_id])
    proxy = TCPProxy(("127.0.0.1", 5672)).start()
    proxied = broker.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    assert proxied != broker
    publisher = Bus(broker)  # publishes and collects replies directly, not through the proxy
    consumer_bus = Bus.__new__(Bus)
    consumer_bus.url, consumer_bus.queue = proxied, publisher.queue
    try:
        with consuming(Slow(app), consumer_bus, prefetch=8):
            cids = [publisher.publish({"fabric_id": fabric_id}, token=key) for _ in range(40)]
            deadline = time.monotonic() + 30
            while len(publisher.replies) < 10:
                assert time.monotonic() < deadline, publisher.replies
                with contextlib.suppress(TimeoutError):
                    publisher.conn.drain_events(timeout=0.05)
            # … into the next batch's pause: recorded, neither answered nor acked
            time.sleep(0.07)
            answered_before = len(publisher.replies)
            proxy.drop()  # mid-stream: connections reset, reconnecting works
            deadline = time.monotonic() + 60
            while {c for c, _ in publisher.replies} != set(cids):
                assert time.monotonic() < deadline, len(publisher.replies)
                with contextlib.suppress(TimeoutError):
                    publisher.conn.drain_events(timeout=0.2)
            publisher.settle(1.0)
        assert answered_before < len(cids)  # the cut came mid-stream …
        assert "reconnecting" in caplog.text  # … and the consumer felt it
        answers: dict[str, list[dict[str, Any]]] = {}
        for cid, reply in publisher.replies:
            answers.setdefault(cid, []).append(reply)
        firsts = [rs[0] for rs in answers.values()]
        assert sum(r.get("status") == "started" for r in firsts) == 1
        assert all(r.get("status") == "started" or r["error"]["code"] == "FGD_3001"
                   for rs in answers.values() for r in rs)
        # a command answered twice was recorded once: the second answer says duplicate
        assert all(all(r.get("duplicate") for r in rs[1:]) for rs in answers.values())
        assert len(started(app)) == 1
        assert dead_count(broker) == 0 and publisher.depth() == 0
    finally:
        proxy.stop()
        publisher.close()
