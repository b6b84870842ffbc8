"""A repeated correlation id on the bus (issue 10, finding 2): ``sync.trigger`` commands on
real RabbitMQ (a virtual host per test) and PostgreSQL (a schema per test), consumed by the
real ``CommandConsumer``: two in one batch and one later start one sync and are answered with
it (``duplicate``), like a repeated ``message_id``; other options, or another fabric's sync,
get FGD_1003."""

from __future__ import annotations

from fgd_core.application.app import FGDApplication
from fgd_workers.commands import CommandIntake
from tests.integration.test_commands import app, audits, broker  # noqa: F401 — fixtures
from tests.integration.test_commands_batching import (  # noqa: F401 — fixtures
    Bus,
    Spy,
    bus,
    consuming,
    fabric_id,
    receipts,
    token,
)
from tests.integration.test_correlation_ids import stored


def test_a_repeated_correlation_id_on_the_bus_in_one_batch_and_later_starts_one_sync(
    app: FGDApplication, fabric_id: int, token: str, bus: Bus  # noqa: F811
) -> None:
    body = {"fabric_id": fabric_id, "correlation_id": "netbox-42"}
    first = bus.publish(body, token=token)  # each its own message_id
    second = bus.publish(body, token=token)
    foreign = bus.publish({"fabric_id": fabric_id, "correlation_id": "netbox-42",
                           "options": {"validate_only": True}}, token=token)
    bus.wait_depth(3)
    spy = Spy(app)
    with consuming(spy, bus):
        replies = dict(bus.wait_replies(3))
        bus.settle()
        assert spy.batches and len(spy.batches[0]) == 3, spy.batches  # one batch
        sync_id = replies[first]["sync_id"]
        assert replies[first] == {"sync_id": sync_id, "status": "started"}
        assert replies[second] == {"sync_id": sync_id, "status": "started", "duplicate": True}
        assert replies[foreign]["error"]["code"] == "FGD_1003"
        # later, alone, after the sync ended: still the same answer
        app.cancel_sync(sync_id)
        later = bus.publish(body, token=token)
        replies = dict(bus.wait_replies(4))
    assert replies[later] == {"sync_id": sync_id, "status": "started", "duplicate": True}
    assert [e["payload"]["sync_id"] for e in stored(app, "sync.started")] == [sync_id]
    outcomes = [r["outcome"] for r in receipts(app)]
    assert len(outcomes) == 4  # one receipt per message_id, the refusal included
    assert sum(o.get("duplicate", False) for o in outcomes) == 2


def test_a_bus_trigger_repeating_an_http_correlation_id_of_another_fabric_is_refused(
    app: FGDApplication, fabric_id: int, token: str, bus: Bus  # noqa: F811
) -> None:
    other = app.register_fabric("elsewhere", "https://github.com/example/else.git").fabric_id
    theirs = app.start_sync(other, correlation_id="shared").sync_id
    cid = bus.publish({"fabric_id": fabric_id, "correlation_id": "shared"}, token=token)
    with consuming(CommandIntake(app), bus):
        [(_, reply)] = bus.wait_replies(1)
    assert reply["error"]["code"] == "FGD_1003", reply
    assert reply["error"]["correlation_id"] == "shared"
    assert theirs not in str(reply)
    assert [e["payload"]["sync_id"] for e in stored(app, "sync.started")] == [theirs]
    assert app.get_fabric(fabric_id).running_sync_id is None
    assert cid
