"""Bus commands (``fgd.commands``) end to end: the command consumer as a separate OS process
(``python -m fgd_core.cli.worker_commands --embedded``) on real PostgreSQL (a schema per test),
real RabbitMQ (a virtual host per test, so ``fgd.commands``/``fgd.dead`` are the test's own)
and real git repositories; publishers are plain kombu in another OS process or in the test —
never the project's client — following asyncapi.yaml.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from kombu import Connection, Exchange, Producer, Queue

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from fgd_core.config import load_settings
from fgd_core.domain.sync_operation import FINAL_STATES
from fgd_core.events.envelope import decode_envelope
from tests.gitserver import GitHTTPServer, init_bare, seed_repo
from tests.integration.test_webhooks import SECRET, StubReadModel, push_payload, sign, vpc

ROOT = Path(__file__).resolve().parents[2]
BASE_BROKER = os.environ.get("FGD_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")

PUBLISHER = textwrap.dedent(
    """
    # A third-party publisher: plain kombu, the contract in asyncapi.yaml, nothing of FGD.
    import json, socket, sys, uuid
    from kombu import Connection, Consumer, Producer, Queue

    url, token, fabric_id, correlation_id, message_id = sys.argv[1:6]
    with Connection(url) as conn:
        channel = conn.channel()
        replies = Queue("reply." + uuid.uuid4().hex, exclusive=True, auto_delete=True)(channel)
        replies.declare()
        got = []
        consumer = Consumer(channel, queues=[replies], no_ack=True,
                            on_message=lambda m: got.append(m))
        consumer.consume()
        Producer(channel).publish(
            json.dumps({"fabric_id": int(fabric_id), "trigger": "manual",
                        "options": {"validate_only": False}, "correlation_id": correlation_id}),
            exchange="fgd.commands", routing_key="sync.trigger",
            headers={"authorization": "Token " + token},
            message_id=message_id, correlation_id=correlation_id, reply_to=replies.name,
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            serializer=None)
        while not got:
            conn.drain_events(timeout=30)
        reply = got[0]
        assert reply.properties["correlation_id"] == correlation_id, reply.properties
        print(json.dumps(json.loads(reply.body)))
    """
)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def broker() -> Iterator[str]:
    """A RabbitMQ virtual host of this test's own (exchanges and fgd.dead included)."""
    if shutil.which("rabbitmqctl") is None:  # pragma: no cover — shared vhost, unique queue
        yield BASE_BROKER
        return
    vhost = f"fgd-cmd-{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                    ".*"], check=True, capture_output=True)
    yield BASE_BROKER[: BASE_BROKER.index("/", BASE_BROKER.index("//") + 2)] + "/" + vhost
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


@pytest.fixture
def app(pg_app: FGDApplication) -> FGDApplication:
    """These tests run on PostgreSQL only."""
    return pg_app


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHTTPServer]:
    with GitHTTPServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def remote(server: GitHTTPServer) -> str:
    bare = init_bare(server.root / "hedgehog" / "fabric.git")
    seed_repo(bare, {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1)})
    return server.url("hedgehog/fabric.git")


@pytest.fixture
def fabric_id(app: FGDApplication, remote: str) -> int:
    fabric = app.register_fabric("lab", remote, auto_sync_on_change=True)
    return int(fabric.fabric_id)


@pytest.fixture
def tokens(app: FGDApplication, fabric_id: int) -> dict[str, str]:
    trigger, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"], fabrics=[fabric_id])
    viewer, _ = create_token(app, "viewer", permissions=["view_fgd_sync"])
    return {"trigger": trigger, "viewer": viewer}


class Consumer:
    def __init__(self, tmp: Path, broker: str, pg_url: str) -> None:
        self.queue = f"test-commands-{uuid.uuid4().hex[:10]}"
        self.broker = broker
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HOME": str(tmp),
            "HEDGEHOG_FGD_DATABASE_URL": pg_url,
            "HEDGEHOG_FGD_SQLITE_PATH": str(tmp / "unused.sqlite3"),
            "HEDGEHOG_FGD_BROKER_URL": broker,
            "HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET": SECRET,
        }
        self.log_path = tmp / f"{self.queue}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fgd_core.cli.worker_commands", "--queue", self.queue,
             "--embedded", "--concurrency", "2"],
            env=env, cwd=tmp, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while "commands worker started" not in self.log():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        with Connection(self.broker) as conn:
            conn.default_channel.queue_delete(self.queue)


@pytest.fixture
def consumer(tmp_path: Path, broker: str, pg_url: str, app: FGDApplication) -> Iterator[Consumer]:
    c = Consumer(tmp_path, broker, pg_url)
    yield c
    c.close()


# -- helpers ----------------------------------------------------------------------------------


class Publisher:
    """Plain kombu, in the test process: publishes commands, collects replies."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self.conn = Connection(broker)
        self.channel = self.conn.channel()
        self.replies_queue = Queue(f"reply.{uuid.uuid4().hex}", exclusive=True,
                                   auto_delete=True)(self.channel)
        self.replies_queue.declare()
        self.replies: dict[str, Any] = {}
        from kombu import Consumer as KConsumer

        self.consumer = KConsumer(self.channel, queues=[self.replies_queue], no_ack=True,
                                  on_message=self._on_reply)
        self.consumer.consume()

    def _on_reply(self, message: Any) -> None:
        self.replies.setdefault(message.properties["correlation_id"], []).append(
            json.loads(message.body))

    def publish(self, routing_key: str, body: bytes | dict[str, Any], *, token: str | None = None,
                message_id: str | None = "new", correlation_id: str | None = None,
                reply: bool = True) -> str:
        cid = correlation_id or str(uuid.uuid4())
        headers = {"authorization": f"Token {token}"} if token else {}
        props: dict[str, Any] = {"correlation_id": cid}
        if message_id is not None:
            props["message_id"] = str(uuid.uuid4()) if message_id == "new" else message_id
        if reply:
            props["reply_to"] = self.replies_queue.name
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        Producer(self.channel).publish(
            data, exchange="fgd.commands", routing_key=routing_key, headers=headers,
            content_type="application/json", content_encoding="utf-8", serializer=None,
            delivery_mode=2, **props,
        )
        return cid

    def wait_reply(self, cid: str, count: int = 1, timeout: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.replies.get(cid, [])) < count:
            assert time.monotonic() < deadline, f"no reply for {cid}"
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=0.5)
        return self.replies[cid]

    def close(self) -> None:
        self.conn.release()


@pytest.fixture
def publisher(broker: str, consumer: Consumer) -> Iterator[Publisher]:
    p = Publisher(broker)
    yield p
    p.close()


def dead_letters(broker: str, count: int, timeout: float = 30.0) -> list[Any]:
    """Read (and ack) ``count`` messages from ``fgd.dead``."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    with Connection(broker) as conn:
        queue = Queue("fgd.dead", Exchange("fgd.dlx", type="topic", durable=True),
                      routing_key="#", durable=True,
                      queue_arguments={"x-queue-type": "quorum"})(conn.default_channel)
        while len(got) < count and time.monotonic() < deadline:
            message = queue.get(no_ack=True)
            if message is None:
                time.sleep(0.1)
                continue
            got.append(message)
    assert len(got) == count, f"{len(got)} dead letters, expected {count}"
    return got


def envelopes(app: FGDApplication) -> list[dict[str, Any]]:
    return [decode_envelope(n.state)
            for n in app.recorder.select_notifications(start=1, limit=1_000_000)]


def audits(app: FGDApplication, action: str | None = None) -> list[dict[str, Any]]:
    return [e["payload"] for e in envelopes(app) if e["event_type"] == "audit.recorded"
            and (action is None or e["payload"]["action"] == action)]


def started(app: FGDApplication) -> list[dict[str, Any]]:
    return [e for e in envelopes(app) if e["event_type"] == "sync.started"]


def wait_final(app: FGDApplication, sync_id: str, consumer: Consumer, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync = app.get_sync(sync_id)
        if sync.state in FINAL_STATES:
            return sync
        time.sleep(0.1)
    raise AssertionError(f"sync {sync_id} is {app.get_sync(sync_id).state}\n{consumer.log()}")


# -- sync.trigger -----------------------------------------------------------------------------


def test_plain_kombu_process_triggers_a_sync_that_completes_and_gets_the_reply(
    app: FGDApplication, fabric_id: int, tokens: dict[str, str], consumer: Consumer,
    tmp_path: Path,
) -> None:
    script = tmp_path / "publisher.py"
    script.write_text(PUBLISHER)
    cid = f"netbox-{uuid.uuid4()}"
    done = subprocess.run(
        [sys.executable, str(script), consumer.broker, tokens["trigger"], str(fabric_id), cid,
         str(uuid.uuid4())],
        capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": ""},
    )
    assert done.returncode == 0, done.stderr.decode() + consumer.log()
    reply = json.loads(done.stdout)
    assert reply["status"] == "started"
    sync = wait_final(app, reply["sync_id"], consumer)
    assert sync.state == "completed", consumer.log()
    assert sync.correlation_id == cid
    [event] = started(app)
    assert event["correlation_id"] == cid and event["payload"]["sync_id"] == reply["sync_id"]
    [entry] = audits(app, "bus_trigger_sync")
    assert entry["success"] and entry["user"] == "ci" and entry["sync_id"] == reply["sync_id"]
    assert "Token" not in json.dumps(entry)


def test_the_same_command_twice_starts_one_sync_and_gets_the_same_answer(
    app: FGDApplication, fabric_id: int, tokens: dict[str, str], publisher: Publisher,
    consumer: Consumer,
) -> None:
    message_id = str(uuid.uuid4())
    cid = str(uuid.uuid4())
    body = {"fabric_id": fabric_id, "correlation_id": cid}
    for _ in range(2):
        publisher.publish("sync.trigger", body, token=tokens["trigger"], message_id=message_id,
                          correlation_id=cid)
    # The two deliveries may go to the two consumers: the one whose save lost answers
    # "duplicate" as soon as it reads the receipt, possibly before the winner has published
    # its own reply — so the replies' order says nothing about who won.
    replies = publisher.wait_reply(cid, count=2)
    first, second = sorted(replies, key=lambda r: bool(r.get("duplicate")))
    assert first["status"] == second["status"] == "started"
    assert first["sync_id"] == second["sync_id"]
    assert second.get("duplicate") is True and "duplicate" not in first
    wait_final(app, first["sync_id"], consumer)
    assert len(started(app)) == 1
    receipts = [a for a in audits(app, "bus_trigger_sync") if "outcome" in a["details"]]
    assert len(receipts) == 1 and receipts[0]["details"]["message_id"] == message_id
    assert receipts[0]["details"]["outcome"] == {"status": "started", "sync_id": first["sync_id"]}

    # a new command while a sync runs is answered with FGD_3001 naming it
    running = app.start_sync(fabric_id, "manual").sync_id
    cid2 = publisher.publish("sync.trigger", {"fabric_id": fabric_id}, token=tokens["trigger"])
    [busy] = publisher.wait_reply(cid2)
    assert busy["error"]["code"] == "FGD_3001"
    assert busy["error"]["correlation_id"] == cid2
    assert busy["error"]["details"]["sync_id"] == running


REFUSED = {
    # name: (routing key, body, token key, message id, reason fragment, reason code)
    "no token": ("sync.trigger", "valid", None, "new", "missing API token", "unauthenticated"),
    "bad token": ("sync.trigger", "valid", "bogus", "new", "invalid API token",
                  "unauthenticated"),
    "no permission": ("sync.trigger", "valid", "viewer", "new", "permission denied",
                      "forbidden"),
    "schema": ("sync.trigger", {"fabric_id": "one", "trigger": "manual"}, "trigger", "new",
               "does not match schemas/commands/sync.trigger.json", "schema"),
    "extra field": ("sync.trigger", "extra", "trigger", "new", "sync.trigger.json", "schema"),
    "not json": ("sync.trigger", b"{not json", "trigger", "new", "body is not JSON",
                 "not_json"),
    "unknown command": ("sync.explode", "valid", "trigger", "new", "unknown command",
                        "unknown_command"),
    "no message id": ("sync.trigger", "valid", "trigger", None, "message_id",
                      "missing_message_id"),
}


def test_refused_commands_are_dead_lettered_with_their_reason_and_audited(
    app: FGDApplication, fabric_id: int, tokens: dict[str, str], publisher: Publisher,
    consumer: Consumer,
) -> None:
    keys = {**tokens, "bogus": "0" * 40}
    sent: dict[str, str] = {}
    for name, (rk, body, token, mid, _, _) in REFUSED.items():
        if body == "valid":
            body = {"fabric_id": fabric_id, "trigger": "manual"}
        elif body == "extra":
            body = {"fabric_id": fabric_id, "force": True}
        cid = publisher.publish(rk, body, token=keys[token] if token else None, message_id=mid)
        sent[cid] = name
    letters = dead_letters(publisher.broker, len(REFUSED))
    dead = {m.properties.get("correlation_id"): m for m in letters}
    assert set(dead) == set(sent), consumer.log()
    for cid, message in dead.items():
        rk, _, token, _, fragment, code = REFUSED[sent[cid]]
        headers = message.headers
        assert fragment in headers["x-fgd-reason"], (sent[cid], headers)
        assert headers["x-fgd-reason-code"] == code
        assert message.delivery_info["routing_key"] == rk
        if token:
            assert headers["authorization"] == "[REDACTED]"  # never a key in fgd.dead
    assert started(app) == []  # nothing started
    denied = [a for a in audits(app) if not a["success"]]
    assert len(denied) == len(REFUSED)
    assert {a["details"]["reason"] for a in denied} == {v[5] for v in REFUSED.values()}
    assert {a["user"] for a in denied if a["details"]["reason"] == "forbidden"} == {"viewer"}
    assert all("0" * 40 not in json.dumps(a) for a in denied)
    for cid, name in sent.items():  # each answered at once with its reason code
        [answer] = publisher.wait_reply(cid)
        assert answer["error"]["code"] == "FGD_1003", (name, answer)
        assert answer["error"]["details"]["reason"] == REFUSED[name][5]
        assert answer["error"]["correlation_id"] == cid
    # the consumer survived all of it
    cid = publisher.publish("sync.trigger", {"fabric_id": fabric_id}, token=tokens["trigger"])
    [ok] = publisher.wait_reply(cid)
    assert ok["status"] == "started"
    wait_final(app, ok["sync_id"], consumer)


# -- webhook.github ---------------------------------------------------------------------------


def webhook_command(payload: dict[str, Any], delivery: str, secret: str = SECRET,
                    base64_body: bool = False) -> dict[str, Any]:
    raw = json.dumps(payload).encode()
    command: dict[str, Any] = {"event": "push", "delivery_id": delivery,
                               "signature": sign(raw, secret)}
    if base64_body:
        import base64

        command["body_base64"] = base64.b64encode(raw).decode()
    else:
        command["body"] = raw.decode()
    return command


def test_webhook_with_a_correct_and_a_wrong_signature(
    app: FGDApplication, fabric_id: int, remote: str, publisher: Publisher, consumer: Consumer,
) -> None:
    good = str(uuid.uuid4())
    cid = publisher.publish("webhook.github", webhook_command(push_payload(remote), good,
                                                              base64_body=True))
    [reply] = publisher.wait_reply(cid)
    assert reply["status"] == "accepted" and reply["delivery"] == good
    [triggered] = reply["triggered"]
    assert triggered["fabric_id"] == fabric_id
    assert wait_final(app, triggered["sync_id"], consumer).state == "completed", consumer.log()

    bad = str(uuid.uuid4())
    cid = publisher.publish("webhook.github",
                            webhook_command(push_payload(remote), bad, secret="wrong"))
    [message] = dead_letters(publisher.broker, 1)
    assert message.headers["x-fgd-reason"] == "invalid X-Hub-Signature-256"
    assert message.properties["correlation_id"] == cid
    assert len(started(app)) == 1
    entries = audits(app, "github_webhook")
    assert [(a["success"], a["details"]["delivery"]) for a in entries] == [(True, good),
                                                                          (False, bad)]
    assert cid not in publisher.replies


def test_a_delivery_counts_once_whether_http_or_the_bus_saw_it_first(
    app: FGDApplication, fabric_id: int, remote: str, publisher: Publisher, consumer: Consumer,
    pg_url: str, tmp_path: Path,
) -> None:
    environ = {"HEDGEHOG_FGD_DATABASE_URL": pg_url, "HOME": str(tmp_path),
               "HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "api.sqlite3"),
               "HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET": SECRET}
    read_model = StubReadModel()
    container = Container.build(load_settings(environ=environ), read_model=read_model)
    read_model.app = container.app
    try:
        with TestClient(create_app(container)) as client:
            # HTTP first, then the bus: nothing new
            first = str(uuid.uuid4())
            raw = json.dumps(push_payload(remote)).encode()
            response = client.post(
                "/api/plugins/hedgehog/webhooks/github/", content=raw,
                headers={"Content-Type": "application/json", "X-GitHub-Event": "push",
                         "X-GitHub-Delivery": first, "X-Hub-Signature-256": sign(raw)})
            assert response.status_code == 202, response.text
            [triggered] = response.json()["triggered"]
            assert wait_final(app, triggered["sync_id"], consumer).state == "completed"
            cid = publisher.publish("webhook.github",
                                    webhook_command(push_payload(remote), first))
            assert publisher.wait_reply(cid) == [{"status": "duplicate", "delivery": first}]
            assert len(started(app)) == 1

            # the bus first, then HTTP: nothing new
            second = str(uuid.uuid4())
            cid = publisher.publish("webhook.github",
                                    webhook_command(push_payload(remote), second))
            [reply] = publisher.wait_reply(cid)
            assert reply["status"] == "accepted" and len(reply["triggered"]) == 1
            wait_final(app, reply["triggered"][0]["sync_id"], consumer)
            response = client.post(
                "/api/plugins/hedgehog/webhooks/github/", content=raw,
                headers={"Content-Type": "application/json", "X-GitHub-Event": "push",
                         "X-GitHub-Delivery": second, "X-Hub-Signature-256": sign(raw)})
            assert response.status_code == 200
            assert response.json() == {"status": "duplicate", "delivery": second}
            assert len(started(app)) == 2
            deliveries = [e for e in envelopes(app) if e["event_type"] == "webhook.received"]
            assert sorted(e["payload"]["delivery_id"] for e in deliveries) == sorted(
                [first, second])
    finally:
        container.close()


def test_a_receipt_is_the_commands_audit_entry_at_an_id_from_its_message_id(
    app: FGDApplication, fabric_id: int, tokens: dict[str, str]
) -> None:
    """One event per accepted command: its audit entry, stored under receipt_uuid(message_id),
    validated and replayed like any other, holding the outcome (and never the token)."""
    from fgd_core.domain.auth import AuditEntry
    from fgd_core.domain.command import receipt_uuid, recorded_outcome
    from fgd_workers.commands import Command, CommandIntake

    intake = CommandIntake(app)
    header = {"authorization": f"Token {tokens['trigger']}"}
    cmd = Command("sync.trigger", orjson.dumps({"fabric_id": fabric_id}), header, "m-1", "cid-1")
    result = intake.handle(cmd)
    assert result.reply is not None and result.reply["status"] == "started"
    before = len(envelopes(app))
    again = intake.handle(cmd)
    assert again.reply == {**result.reply, "duplicate": True}
    receipt: Any = app.repository.get(receipt_uuid("m-1"))
    assert isinstance(receipt, AuditEntry) and receipt.action == "bus_trigger_sync"
    assert recorded_outcome(receipt) == {"status": "started", "sync_id": result.reply["sync_id"]}
    assert receipt.success and receipt.sync_id == result.reply["sync_id"]
    # the duplicate was audited as such (a plain entry), and started nothing
    [duplicate] = envelopes(app)[before:]
    assert duplicate["event_type"] == "audit.recorded"
    assert duplicate["payload"]["details"]["status"] == "duplicate"
    assert len(started(app)) == 1
    assert tokens["trigger"] not in json.dumps(envelopes(app))


def test_a_token_pasted_into_a_message_id_is_not_stored_and_still_deduplicates(
    app: FGDApplication, fabric_id: int, tokens: dict[str, str]
) -> None:
    from fgd_workers.commands import Command, CommandIntake

    intake = CommandIntake(app)
    key = tokens["trigger"]
    header = {"authorization": f"Token {key}"}
    cmd = Command("sync.trigger", orjson.dumps({"fabric_id": fabric_id}), header,
                  f"oops Token {key}", "cid-2")
    first, second = intake.handle(cmd), intake.handle(cmd)
    assert first.reply is not None and first.reply["status"] == "started"
    assert second.reply == {**first.reply, "duplicate": True}
    assert len(started(app)) == 1
    stored = json.dumps(envelopes(app))
    assert key not in stored and "oops Token [REDACTED]" in stored


def test_a_legacy_command_receipt_replays_and_still_answers_its_duplicate(
    app: FGDApplication, fabric_id: int, tokens: dict[str, str]
) -> None:
    """Stores written by earlier versions hold a ``command.received`` receipt per accepted
    command: it decodes and replays, and a redelivery of its command is answered with its
    outcome (same id for the same message_id), starting nothing."""
    from fgd_core.application.replay import history
    from fgd_core.domain.command import CommandReceipt
    from fgd_workers.commands import Command, CommandIntake

    prepared = app.prepare_sync(fabric_id, "manual", None, "cid-old")
    old = CommandReceipt(message_id="m-old", correlation_id="cid-old", command="sync.trigger",
                         user="ci", outcome={"status": "started",
                                             "sync_id": prepared.sync.sync_id},
                         fabric_id=fabric_id)
    app.save(old, *prepared.objects)
    assert [r.event_type for r in history(app)][-3:].count("command.received") == 1
    app.cancel_sync(prepared.sync.sync_id)  # the fabric is free again
    cmd = Command("sync.trigger", orjson.dumps({"fabric_id": fabric_id}),
                  {"authorization": f"Token {tokens['trigger']}"}, "m-old", "cid-old")
    result = CommandIntake(app).handle(cmd)
    assert result.reply == {"sync_id": prepared.sync.sync_id, "status": "started",
                            "duplicate": True}
    assert len(started(app)) == 1
