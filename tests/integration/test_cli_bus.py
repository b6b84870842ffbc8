"""``fgd bus trigger`` / ``fgd bus events`` against RabbitMQ (a virtual host of the test's own)
and the command consumer on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
import uuid

from click.testing import CliRunner

from fgd_core.application.app import FGDApplication
from fgd_core.cli.main import main
from fgd_workers.bus import connection_factory
from fgd_workers.relay import Relay
from tests.integration.test_client import (  # noqa: F401 — fixtures
    fabric_id,
    intake,
    keys,
    wait_for_queue,
)
from tests.integration.test_commands import (  # noqa: F401 — fixtures
    app,
    broker,
    dead_letters,
    started,
)


def run(broker_url: str, *args: str, token: str | None = None) -> object:
    env = {"HEDGEHOG_FGD_BROKER_URL": broker_url, "HEDGEHOG_FGD_TOKEN": token or ""}
    return CliRunner().invoke(main, ["bus", *args], env=env, catch_exceptions=False)


def test_trigger_prints_the_reply_and_fails_with_the_error_body(
    app: FGDApplication, fabric_id: int, keys: dict[str, str], broker: str,  # noqa: F811
    intake: None,  # noqa: F811
) -> None:
    done = run(broker, "trigger", str(fabric_id), "--correlation-id", "ops-1",
               token=keys["trigger"])
    assert done.exit_code == 0, done.output
    reply = json.loads(done.stdout)
    assert reply["status"] == "started"
    assert app.get_sync(reply["sync_id"]).correlation_id == "ops-1"

    busy = run(broker, "trigger", str(fabric_id), token=keys["trigger"])
    assert busy.exit_code == 1
    body = json.loads(busy.stderr)
    assert body["error"]["code"] == "FGD_3001"
    assert body["error"]["details"]["sync_id"] == reply["sync_id"]
    assert keys["trigger"] not in busy.output and keys["trigger"] not in done.output


def test_trigger_without_a_token_or_refused_says_so(
    app: FGDApplication, fabric_id: int, keys: dict[str, str], broker: str,  # noqa: F811
    intake: None,  # noqa: F811
) -> None:
    missing = run(broker, "trigger", str(fabric_id))
    assert missing.exit_code == 2 and "HEDGEHOG_FGD_TOKEN" in missing.output
    # Answered at once (not after --timeout: that would exit 2), and still dead-lettered.
    refused = run(broker, "trigger", str(fabric_id), "--timeout", "60", token=keys["viewer"])
    assert refused.exit_code == 1, refused.output
    error = json.loads(refused.stderr)["error"]
    assert error["code"] == "FGD_1003" and error["details"]["reason"] == "forbidden"
    assert "trigger_fgd_sync" in error["message"]
    invalid = run(broker, "trigger", str(fabric_id), "--timeout", "60", token="0" * 40)
    assert invalid.exit_code == 1
    assert json.loads(invalid.stderr)["error"]["details"]["reason"] == "unauthenticated"
    dead = dead_letters(broker, 2)
    assert sorted(d.headers["x-fgd-reason-code"] for d in dead) == ["forbidden",
                                                                   "unauthenticated"]
    assert started(app) == []


def test_events_prints_one_fabrics_events_as_json_lines(
    app: FGDApplication, fabric_id: int, broker: str  # noqa: F811
) -> None:
    queue = f"test-cli-events-{uuid.uuid4().hex[:8]}"
    result: list[object] = []

    def follow() -> None:
        result.append(run(broker, "events", "--type", "sync.*", "--fabric", str(fabric_id),
                          "--queue", queue, "--count", "2", "--idle", "20"))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    wait_for_queue(broker, queue)
    sync = app.start_sync(fabric_id, "manual", correlation_id="cli")
    app.cancel_sync(sync.sync_id)
    relay = Relay(app, connection_factory(broker))
    try:
        deadline = time.monotonic() + 20
        while thread.is_alive() and time.monotonic() < deadline:
            relay.run_once()  # until the follower has its two events
            time.sleep(0.2)
    finally:
        relay.close()
    thread.join(10)
    [done] = result
    assert done.exit_code == 0, done.output  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # type: ignore[attr-defined]
    assert [e["event_type"] for e in lines] == ["sync.started", "sync.cancelled"]
    assert {e["correlation_id"] for e in lines} == {"cli"}


def test_a_broker_url_that_is_not_amqp_is_the_configuration_error(tmp_path: object) -> None:
    """Checked as every fgd process checks it: the spec's error body (FGD_1003) naming the
    variable, never the URL (it may carry a password)."""
    done = CliRunner().invoke(main, ["bus", "events", "--count", "1"], env={
        "HEDGEHOG_FGD_BROKER_URL": "http://user:s3cret@127.0.0.1:5672/"},
        catch_exceptions=False)
    assert done.exit_code == 1
    body = json.loads(done.stderr)
    assert body["error"]["code"] == "FGD_1003"
    assert body["error"]["details"]["key"] == "HEDGEHOG_FGD_BROKER_URL"
    assert "s3cret" not in done.output
