"""Relay benchmark on PostgreSQL + RabbitMQ. Prints rates and the ratios the issue targets:

  throughput   relay (read log, validate, publish, batched confirms, record position) /
               kombu publishing the same pre-built messages one by one with confirms  >= 1.0
  latency      event-to-bus at 200 events/s (writer saves one event every 5 ms for 10 s,
               relay live on LISTEN/NOTIFY, a consumer measures receive time - envelope
               timestamp)                                                              p99 <= 50 ms

Usage: python bench/bench_relay.py [--events 10000] [--rate 200] [--seconds 10]
(HEDGEHOG_FGD_DATABASE_URL / FGD_TEST_DATABASE_URL and HEDGEHOG_FGD_BROKER_URL select the
servers). Works in a schema and a queue of its own, both dropped after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import orjson
import psycopg
from kombu import Connection, Consumer, Producer, Queue

from fgd_core.adapters.observability import traceparent
from fgd_core.adapters.persistence import postgres_env
from fgd_core.application.app import FGDApplication
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.events.envelope import decode_envelope
from fgd_workers.bus import EVENTS_EXCHANGE, broker_url, connection_factory, declare_topology
from fgd_workers.relay import Relay

DB_URL = os.environ.get(
    "HEDGEHOG_FGD_DATABASE_URL",
    os.environ.get("FGD_TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test"),
)
ROUNDS = 2


def store_events(app: FGDApplication, total: int, per_sync: int = 1000) -> None:
    written = 0
    fabric = 0
    while written < total:
        fabric += 1
        sync = SyncOperation.start(fabric, "manual")
        for i in range(min(per_sync, total - written) - 1):
            sync.warn("FGD_1003", f"warning {i}", f"gitops/raw/file-{i}.yaml")
        written += len(sync.pending_events)
        app.save(sync)


def relay_throughput(app: FGDApplication, factory: Any, total: int, round_: int) -> float:
    relay = Relay(app, factory, name=f"bench-{round_}", batch_size=1000)
    start = time.perf_counter()
    published = relay.run_once()
    seconds = time.perf_counter() - start
    relay.close()
    assert published == total, (published, total)
    return published / seconds


def kombu_one_by_one(app: FGDApplication, url: str, total: int) -> float:
    messages = []
    for n in app.recorder.select_notifications(start=1, limit=total + 1):
        env = decode_envelope(n.state)
        headers = {"traceparent": traceparent(env["correlation_id"], env["event_id"]),
                   "fabric_id": env["fabric_id"], "correlation_id": env["correlation_id"]}
        messages.append((n.state, env["event_type"], env["event_id"], headers,
                         env["correlation_id"]))
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        start = time.perf_counter()
        for body, key, event_id, headers, correlation_id in messages:
            producer.publish(
                body, exchange=EVENTS_EXCHANGE, routing_key=key, message_id=event_id,
                correlation_id=correlation_id, headers=headers, delivery_mode=2,
                content_type="application/json", content_encoding="binary", retry=False,
            )
        seconds = time.perf_counter() - start
    return len(messages) / seconds


def latency(app: FGDApplication, url: str, queue: Queue, rate: int, seconds: float) -> list[float]:
    relay = Relay(app, connection_factory(url), name="bench-live")
    relay.run_once()  # catch up on the throughput events first: only live ones are measured
    with Connection(url) as conn:
        queue(conn.default_channel).purge()
    stop = threading.Event()
    relay_thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    relay_thread.start()

    sync = SyncOperation.start(10_000, "manual")
    app.save(sync)
    expected = int(rate * seconds)
    samples: list[float] = []

    def on_message(body: Any, message: Any) -> None:
        received = time.time()
        env = orjson.loads(message.body)
        if env["correlation_id"] == sync.correlation_id and env["event_type"] == "sync.warning":
            sent = datetime.fromisoformat(env["timestamp"]).timestamp()
            samples.append(received - sent)

    def writer() -> None:
        interval = 1.0 / rate
        begin = time.perf_counter()
        for i in range(expected):
            delay = begin + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sync.warn("FGD_1003", f"live {i}", "gitops/raw/live.yaml")
            app.save(sync)

    with Connection(url) as conn:
        consumer = Consumer(conn.channel(), queues=[queue], callbacks=[on_message], no_ack=True)
        consumer.qos(prefetch_count=1000)
        with consumer:
            write = threading.Thread(target=writer)
            write.start()
            deadline = time.monotonic() + seconds + 10
            while len(samples) < expected and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=0.5)
            write.join()
    stop.set()
    relay_thread.join(10)
    assert len(samples) == expected, (len(samples), expected)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    url = broker_url()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(DB_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in DB_URL else "?"
    app = FGDApplication(env=postgres_env(f"{DB_URL}{sep}schema={schema}"))
    # A queue must be bound: confirms of unroutable messages would be unrealistically cheap.
    queue = Queue(f"bench-relay-{uuid.uuid4().hex[:8]}", exchange=EVENTS_EXCHANGE,
                  routing_key="#", durable=True, auto_delete=False)
    with Connection(url) as conn:
        declare_topology(conn.default_channel)
        queue(conn.default_channel).declare()
    try:
        store_events(app, args.events)
        total = app.recorder.max_notification_id() or 0
        print(f"stored {total} events in schema {schema}")

        relay_rates, kombu_rates = [], []
        for round_ in range(ROUNDS):  # interleaved, best of each
            relay_rates.append(relay_throughput(app, connection_factory(url), total, round_))
            with Connection(url) as conn:
                queue(conn.default_channel).purge()
            kombu_rates.append(kombu_one_by_one(app, url, total))
            with Connection(url) as conn:
                queue(conn.default_channel).purge()
        ours, theirs = max(relay_rates), max(kombu_rates)
        print(f"relay throughput          {ours:10,.0f} events/s (confirms batched, position "
              "recorded)")
        print(f"kombu one-by-one confirms {theirs:10,.0f} events/s")
        print(f"ratio relay / kombu       {ours / theirs:10.2f}x   (target >= 1.0)")

        samples = latency(app, url, queue, args.rate, args.seconds)
        ms = sorted(s * 1000 for s in samples)
        p50 = statistics.median(ms)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"event-to-bus latency at {args.rate}/s over {args.seconds:.0f}s "
              f"({len(ms)} events): p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {ms[-1]:.1f} ms"
              "   (target p99 <= 50 ms)")
    finally:
        app.close()
        with Connection(url) as conn:
            queue(conn.default_channel).delete()
        with psycopg.connect(DB_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
