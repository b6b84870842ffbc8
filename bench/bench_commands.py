"""Bus command intake benchmark (issue 6): commands validated, authorized, deduplicated and
answered, against a bare kombu consumer that only acks the same number of messages.

Both phases run in this process, on the same broker, in a RabbitMQ virtual host of their own
(when ``rabbitmqctl`` is available), on PostgreSQL in a fresh schema dropped at the end:

  bare     N messages (the same command bodies) pre-published to a quorum queue; one kombu
           consumer (prefetch P) acks each                                 messages/s
  intake   N ``sync.trigger`` commands (unique message_id, a valid token, reply_to) pre-published
           to ``fgd.commands``; the command consumer (C consumers, prefetch P) parses, validates
           (JSON Schema), authenticates the token, authorizes, records a CommandReceipt with
           the outcome in one save, audits, replies and acks. The fabric is already syncing,
           so every answer is FGD_3001 naming the running sync (a fast answer: nothing to
           run). Timed from the first delivery until every reply has arrived.  commands/s
  ratio    intake / bare                                                   target >= 0.3

Usage: python bench/bench_commands.py [--commands 3000] [--concurrency 4] [--prefetch 16]
                                      [--database-url postgresql://…] [--broker-url amqp://…]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
from kombu import Connection, Consumer, Producer, Queue

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from fgd_core.application import FGDApplication  # noqa: E402
from fgd_core.auth import create_token  # noqa: E402
from fgd_core.persistence import postgres_env  # noqa: E402
from fgd_workers.bus import connection_factory  # noqa: E402
from fgd_workers.commands import CommandIntake, consumers, declare_intake  # noqa: E402

DEFAULT_DB = os.environ.get("FGD_BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
DEFAULT_BROKER = os.environ.get("FGD_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def make_vhost(base: str) -> tuple[str, str | None]:
    if shutil.which("rabbitmqctl") is None:
        return base, None
    vhost = f"fgd-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                    ".*"], check=True, capture_output=True)
    return base[: base.index("/", base.index("//") + 2)] + "/" + vhost, vhost


def bodies(n: int, fabric_id: int) -> list[bytes]:
    return [json.dumps({"fabric_id": fabric_id, "trigger": "manual",
                        "correlation_id": f"bench-{i}"}).encode() for i in range(n)]


def bare_rate(broker: str, payloads: list[bytes], prefetch: int) -> float:
    name = f"bench.bare.{uuid.uuid4().hex[:8]}"
    with Connection(broker) as conn:
        channel = conn.channel()
        queue = Queue(name, durable=True, queue_arguments={"x-queue-type": "quorum"})(channel)
        queue.declare()
        producer = Producer(channel)
        for i, body in enumerate(payloads):
            producer.publish(body, routing_key=name, message_id=str(uuid.uuid4()),
                             correlation_id=f"bench-{i}", content_type="application/json",
                             serializer=None, delivery_mode=2)
        wait_depth(channel, name, len(payloads))
        done = threading.Event()
        count = [0]
        start = [0.0]

        def on_message(message: object) -> None:
            if not count[0]:
                start[0] = time.perf_counter()
            message.ack()  # type: ignore[attr-defined]
            count[0] += 1
            if count[0] == len(payloads):
                done.set()

        with Consumer(channel, queues=[queue], on_message=on_message, prefetch_count=prefetch):
            while not done.is_set():
                conn.drain_events(timeout=10)
        elapsed = time.perf_counter() - start[0]
        channel.queue_delete(name)
    return (len(payloads) - 1) / elapsed


def wait_depth(channel: object, name: str, n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, depth, _ = channel.queue_declare(name, passive=True)  # type: ignore[attr-defined]
        if depth >= n:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name}: {n} messages never arrived")


def intake_rate(broker: str, app: FGDApplication, token: str, payloads: list[bytes],
                concurrency: int, prefetch: int) -> tuple[float, dict[str, int]]:
    queue_name = f"bench.commands.{uuid.uuid4().hex[:8]}"
    with Connection(broker) as conn:
        channel = conn.channel()
        declare_intake(channel, queue_name)
        reply_to = f"bench.reply.{uuid.uuid4().hex[:8]}"
        replies = Queue(reply_to, exclusive=True, auto_delete=True)(channel)
        replies.declare()
        producer = Producer(channel)
        for i, body in enumerate(payloads):
            producer.publish(body, exchange="fgd.commands", routing_key="sync.trigger",
                             headers={"authorization": f"Token {token}"},
                             message_id=str(uuid.uuid4()), correlation_id=f"bench-{i}",
                             reply_to=reply_to, content_type="application/json",
                             serializer=None, delivery_mode=2)
        wait_depth(channel, queue_name, len(payloads))
        codes: dict[str, int] = {}
        got = [0]
        first = [0.0]

        def on_reply(message: object) -> None:
            body = json.loads(message.body)  # type: ignore[attr-defined]
            code = body["error"]["code"] if "error" in body else body.get("status", "?")
            codes[code] = codes.get(code, 0) + 1
            got[0] += 1

        intake = CommandIntake(app)
        workers = consumers(intake, connection_factory(broker), concurrency,
                            queue_name=queue_name, prefetch=prefetch)
        # The clock starts at the first delivery a consumer handles (alone or in a batch).
        def clocked(original: object) -> object:
            def timed(self: CommandIntake, arg: object) -> object:
                if not first[0]:
                    first[0] = time.perf_counter()
                return original(self, arg)  # type: ignore[operator]

            return timed

        intake.handle = clocked(CommandIntake.handle).__get__(intake)  # type: ignore[attr-defined, method-assign]
        intake.handle_batch = clocked(  # type: ignore[method-assign]
            CommandIntake.handle_batch).__get__(intake)  # type: ignore[attr-defined]
        stop = threading.Event()
        threads = [threading.Thread(target=w.run, args=(stop,), daemon=True) for w in workers]
        with Consumer(channel, queues=[replies], on_message=on_reply, no_ack=True):
            for t in threads:
                t.start()
            deadline = time.monotonic() + 120
            while got[0] < len(payloads) and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=1)
            elapsed = time.perf_counter() - first[0]
        stop.set()
        for t in threads:
            t.join(10)
        channel.queue_delete(queue_name)
    if got[0] < len(payloads):
        raise RuntimeError(f"only {got[0]} of {len(payloads)} replies arrived")
    return (len(payloads) - 1) / elapsed, codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=16)
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER)
    args = parser.parse_args()

    broker, vhost = make_vhost(args.broker_url)
    schema = f"bench_cmd_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    app = FGDApplication(env={**postgres_env(f"{args.database_url}?schema={schema}"),
                              "AGGREGATE_CACHE_MAXSIZE": "64"})
    try:
        fabric = app.register_fabric("bench", "https://github.com/example/fabric.git")
        running = app.start_sync(fabric.fabric_id, "manual")  # every command: FGD_3001
        token, _ = create_token(app, "bench", permissions=["trigger_fgd_sync"],
                                fabrics=[fabric.fabric_id])
        payloads = bodies(args.commands, fabric.fabric_id)
        t0 = time.perf_counter()
        bare = bare_rate(broker, payloads, args.prefetch)
        ours, codes = intake_rate(broker, app, token, payloads, args.concurrency, args.prefetch)
        total = time.perf_counter() - t0
        receipts = sum(1 for n in app.recorder.select_notifications(start=1, limit=10**7)
                       if b'"command.received"' in n.state)
        print(f"commands: {args.commands}  consumers: {args.concurrency}  prefetch: "
              f"{args.prefetch}  fabric syncing: {running.sync_id}")
        print(f"bare kombu consumer (ack only):           {bare:10.0f} msg/s")
        print(f"command intake (validate/auth/dedup/reply): {ours:8.0f} cmd/s   replies: {codes}"
              f"   receipts recorded: {receipts}")
        print(f"ratio intake/bare: {ours / bare:.2f}  (target >= 0.30)   phases took "
              f"{total:.1f} s")
    finally:
        app.close()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        if vhost:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


if __name__ == "__main__":
    main()
