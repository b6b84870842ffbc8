"""The bus edges (issue 10, finding 1): a command whose properties, headers or body fields hold
text the store cannot keep is refused with reason code ``unstorable_input`` (documented in
asyncapi.yaml) and audited with a sanitized copy; a webhook delivery whose kept fields (ref,
after, repository name) hold such text is ``invalid_delivery``. On SQLite and PostgreSQL
through ``CommandIntake``, and end to end through RabbitMQ on PostgreSQL, where the read model
must keep up and ``fgd_envelopes`` read the whole log afterwards."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import orjson
import psycopg
from kombu import Connection, Producer

from fgd_api.read_model import build_read_model
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from fgd_core.events.envelope import decode_envelope
from fgd_workers.command_intake import Command, CommandIntake
from tests.conftest import PG_URL
from tests.integration.test_commands import (  # noqa: F401 — fixtures
    Consumer,
    broker,
    dead_letters,
)

SECRET = "bus-edge-secret"


def states(app: FGDApplication) -> list[bytes]:
    return [n.state for n in app.recorder.select_notifications(start=1, limit=10**6)]


def signed_webhook(payload: dict[str, Any], delivery: str) -> bytes:
    raw = orjson.dumps(payload)
    signature = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return orjson.dumps({"event": "push", "delivery_id": delivery, "signature": signature,
                         "body": raw.decode()})


def hostile_commands(fabric_id: int, auth: dict[str, str]) -> dict[str, tuple[Command, str]]:
    body = json.dumps({"fabric_id": fabric_id}).encode()
    push = {"ref": "refs/heads/main", "after": "a" * 40,
            "repository": {"full_name": "acme/fabric",
                           "clone_url": "https://github.com/acme/fabric.git"}}
    return {
        "message_id NUL": (Command("sync.trigger", body, auth, "m\x00x"), "unstorable_input"),
        "message_id too long": (Command("sync.trigger", body, auth, "m" * 256),
                                "unstorable_input"),
        "correlation_id ESC": (Command("sync.trigger", body, auth, "m-2", correlation_id="c\x1b"),
                               "unstorable_input"),
        "app_id surrogate": (Command("sync.trigger", body, auth, "m-3", app_id="a\ud800"),
                             "unstorable_input"),
        "reply_to NUL": (Command("sync.trigger", body, auth, "m-4", reply_to="r\x00"),
                         "unstorable_input"),
        "header NUL": (Command("sync.trigger", body, {**auth, "x-trace": "t\x00"}, "m-5"),
                       "unstorable_input"),
        "routing key NUL": (Command("sync.trigger\x00", body, auth, "m-6"), "unstorable_input"),
        "webhook event NUL": (
            Command("webhook.github", b'{"event": "pu\\u0000sh", "delivery_id": "d-0", '
                    b'"signature": "sha256=00", "body": "{}"}', {}, "m-8"), "unstorable_input"),
        # orjson refuses a lone surrogate while parsing: refused before any field is read
        "body surrogate": (
            Command("sync.trigger", b'{"fabric_id": %d, "correlation_id": "\\udc00"}' % fabric_id,
                    auth, "m-12"), "not_json"),
        "webhook ref NUL": (Command("webhook.github", signed_webhook(
            {**push, "ref": "refs/heads/ma\x00in"}, "d-1"), {}, "m-9"), "invalid_delivery"),
        "webhook after ESC": (Command("webhook.github", signed_webhook(
            {**push, "after": "\x1b[31m"}, "d-2"), {}, "m-10"), "invalid_delivery"),
        "webhook repository NUL": (Command("webhook.github", signed_webhook(
            {**push, "repository": {"full_name": "a\x00b"}}, "d-3"), {}, "m-11"),
            "invalid_delivery"),
    }


def test_hostile_properties_headers_and_fields_are_refused_and_audited_sanitized(
    app: FGDApplication,
) -> None:
    fabric_id = int(app.register_fabric("lab", "https://github.com/acme/fabric.git",
                                        auto_sync_on_change=True).fabric_id)
    key, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"])
    intake = CommandIntake(app, SECRET)
    for name, (cmd, kind) in hostile_commands(fabric_id, {"authorization": f"Token {key}"}
                                              ).items():
        before = len(states(app))
        result = intake.handle(cmd)
        assert (result.kind, result.reply) == (kind, None), (name, result)
        new = states(app)[before:]
        assert [decode_envelope(s)["event_type"] for s in new] == ["audit.recorded"], name
        assert b"\\u0000" not in new[0] and key not in new[0].decode(), name
        assert result.dead is not None and "\x00" not in result.dead
    # the batched path refuses the same way
    batch = [cmd for cmd, kind in hostile_commands(fabric_id, {"authorization": f"Token {key}"}
                                                   ).values() if cmd.routing_key == "sync.trigger"]
    assert {r.kind for r in intake.handle_batch(batch)} == {"unstorable_input", "not_json"}
    # and the store stays whole: a projection over every event, then a valid command
    with build_read_model(app) as read_model:
        read_model.wait_for(app.last_position(), timeout=15)
        assert read_model.lag() == 0
    ok = intake.handle(Command("sync.trigger", json.dumps({"fabric_id": fabric_id}).encode(),
                               {"authorization": f"Token {key}"}, "fine-1"))
    assert ok.kind == "started", ok


def test_through_rabbitmq_a_nul_message_id_is_dead_lettered_and_the_read_model_keeps_up(
    pg_app: FGDApplication, pg_url: str, pg_schema: str, broker: str, tmp_path: Path,  # noqa: F811
) -> None:
    app = pg_app
    fabric_id = int(app.register_fabric("lab", "https://github.com/acme/fabric.git").fabric_id)
    key, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"])
    consumer = Consumer(tmp_path, broker, pg_url)
    try:
        with Connection(broker) as conn:
            Producer(conn.default_channel).publish(
                json.dumps({"fabric_id": fabric_id}).encode(), exchange="fgd.commands",
                routing_key="sync.trigger", headers={"authorization": f"Token {key}"},
                message_id="netbox\x00-42", correlation_id="cid-nul-1",
                content_type="application/json", serializer=None, delivery_mode=2)
        [letter] = dead_letters(broker, 1)
    finally:
        consumer.close()
    assert letter.headers["x-fgd-reason-code"] == "unstorable_input"
    assert "message_id" in letter.headers["x-fgd-reason"]
    [audit] = [decode_envelope(s)["payload"] for s in states(app)
               if decode_envelope(s)["event_type"] == "audit.recorded"]
    assert audit["details"]["message_id"] == "netbox\\x00-42" and not audit["success"]
    with build_read_model(app) as read_model:
        read_model.wait_for(app.last_position(), timeout=15)
        assert read_model.lag() == 0
    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(f'SELECT envelope FROM "{pg_schema}".fgd_envelopes').fetchall()
    assert len(rows) == len(states(app))

