"""Bus command intake benchmark (issue 6): commands validated, authorized, deduplicated and
answered, against a bare kombu consumer that only acks the same number of messages.

Both phases use the same broker, in a RabbitMQ virtual host of their own (when ``rabbitmqctl``
is available), and PostgreSQL in a fresh schema dropped at the end:

  bare     N messages (the same command bodies) pre-published to a quorum queue; one kombu
           consumer in this process (prefetch P) acks each; timed from the first delivery to
           the last                                                        messages/s
  intake   N ``sync.trigger`` commands (unique message_id, a valid token, reply_to) pre-published
           to ``fgd.commands``; then W processes of ``fgd worker commands`` (the deployable
           worker, C consumers each, prefetch P) parse, validate (JSON Schema), authenticate
           the token, authorize, record the command's receipt (its audit entry, with the
           outcome; one commit per batch of deliveries), reply and ack. The fabric is already
           syncing, so every answer is FGD_3001 naming the running sync (nothing to run).
           This process collects the replies; timed from the first reply to the last.
                                                                           commands/s
  ratio    intake / bare                                                   target >= 0.3

Then the same again for commands that each START a sync (``--starts`` of them, 0: skip):

  bare     the same bare consumer, on the start commands' bodies (repeated up to 10,000
           messages: the floor over a steady stretch)                    messages/s
  starts   S fabrics registered beforehand, one ``sync.trigger`` each, pre-published; the
           same W intake processes (``sync.max_concurrent_syncs`` raised above S by their
           config file, so that no start is refused: the syncs stay pending, no sync worker
           runs) accept each: a ``sync.started`` with the fabric's lock and a slot of a
           capacity shard, the receipt, in one commit per batch of deliveries; reply
           ``started``; ack. Timed from the first reply to the last.         commands/s
  ratio    starts / bare                                                   target >= 0.3

Each phase also prints the CPU it cost per message: this process, the machine as a whole
(/proc/stat: broker, database and workers included), PostgreSQL's and RabbitMQ's processes
and, for the intake, the workers.

Usage: python bench/bench_commands.py [--commands 10000] [--starts 4000] [--processes 2]
           [--concurrency 1] [--prefetch 512] [--database-url postgresql://…]
           [--broker-url amqp://…]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from kombu import Connection, Consumer, Producer, Queue

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from bench.cpu import machine_busy, proc_cpu, services_cpu  # noqa: E402
from fgd_core.adapters.persistence import postgres_env  # noqa: E402
from fgd_core.application.app import FGDApplication  # noqa: E402
from fgd_core.application.auth import create_token  # noqa: E402
from fgd_workers.commands import declare_intake  # noqa: E402

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


class Meter:
    """Wall time, this process's CPU, the services' (PostgreSQL, RabbitMQ) and the machine's
    busy CPU between start() and stop()."""

    def start(self) -> None:
        self.t0, self.p0, self.m0 = time.perf_counter(), time.process_time(), machine_busy()
        self.s0 = services_cpu()

    def stop(self, n: int) -> str:
        wall = time.perf_counter() - self.t0
        proc, busy = time.process_time() - self.p0, machine_busy() - self.m0
        services = ", ".join(f"{name} {(used - self.s0[name]) / n * 1e6:.0f}"
                             for name, used in services_cpu().items())
        return (f"this process {proc / n * 1e6:4.0f} us CPU/msg, machine {busy / n * 1e6:4.0f} "
                f"us CPU/msg ({busy / wall / (os.cpu_count() or 1) * 100:3.0f}% busy; "
                f"{services})")


def bodies(n: int, fabric_id: int) -> list[bytes]:
    return [json.dumps({"fabric_id": fabric_id, "trigger": "manual",
                        "correlation_id": f"bench-{i}"}).encode() for i in range(n)]


def start_bodies(fabric_ids: list[int]) -> list[bytes]:
    """One trigger per fabric: each command starts a sync."""
    return [json.dumps({"fabric_id": fabric_id, "trigger": "manual",
                        "correlation_id": f"bench-start-{fabric_id}"}).encode()
            for fabric_id in fabric_ids]


BARE_AT_LEAST = 10000  # messages: a shorter burst's rate is mostly noise (±30 % seen)


def bare_rate(broker: str, payloads: list[bytes], prefetch: int) -> tuple[float, str]:
    """The bare consumer's rate on ``payloads`` — repeated up to BARE_AT_LEAST messages,
    so that the floor is measured over a steady stretch, not a burst of a few hundred ms."""
    payloads = [payloads[i % len(payloads)] for i in range(max(len(payloads), BARE_AT_LEAST))]
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

        meter = Meter()
        meter.start()
        with Consumer(channel, queues=[queue], on_message=on_message, prefetch_count=prefetch):
            while not done.is_set():
                conn.drain_events(timeout=10)
        elapsed = time.perf_counter() - start[0]
        cpu = meter.stop(len(payloads))
        channel.queue_delete(name)
    return (len(payloads) - 1) / elapsed, cpu


def wait_depth(channel: object, name: str, n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, depth, _ = channel.queue_declare(name, passive=True)  # type: ignore[attr-defined]
        if depth >= n:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name}: {n} messages never arrived")


def intake_rate(broker: str, database_url: str, token: str, payloads: list[bytes],
                processes: int, concurrency: int, prefetch: int,
                extra_env: dict[str, str] | None = None,
                ) -> tuple[float, dict[str, int], str]:
    """Pre-publish the commands, start ``processes`` × ``fgd worker commands`` on the queue and
    collect every reply: (commands/s from the first reply to the last, reply codes, CPU)."""
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
        first, last = [0.0], [0.0]
        worker_cpu0: list[float] = []
        meter = Meter()

        def on_reply(message: object) -> None:
            body = json.loads(message.body)  # type: ignore[attr-defined]
            code = body["error"]["code"] if "error" in body else body.get("status", "?")
            codes[code] = codes.get(code, 0) + 1
            if not got[0]:  # the clock starts at the first answer
                first[0] = time.perf_counter()
                meter.start()
                worker_cpu0.extend(proc_cpu(w.pid) for w in workers)
            got[0] += 1
            last[0] = time.perf_counter()

        env = {**os.environ, "HEDGEHOG_FGD_DATABASE_URL": database_url,
               "HEDGEHOG_FGD_BROKER_URL": broker, "HEDGEHOG_FGD_COMMANDS_QUEUE": queue_name,
               **(extra_env or {})}
        logs = [tempfile.TemporaryFile() for _ in range(processes)]  # noqa: SIM115 — read at the end
        # BENCH_PROFILE_DIR=dir: each worker runs under cProfile, written to dir on exit.
        profile = os.environ.get("BENCH_PROFILE_DIR")

        def command(i: int) -> list[str]:
            wrap = (["-m", "cProfile", "-o", f"{profile}/commands-{queue_name}-{i}.prof"]
                    if profile else [])
            return [sys.executable, *wrap, "-m", "fgd_core.cli.worker_commands",
                    "--concurrency", str(concurrency), "--prefetch", str(prefetch)]

        workers = [subprocess.Popen(command(i), env=env, stdout=log, stderr=subprocess.STDOUT)
                   for i, log in enumerate(logs)]
        try:
            with Consumer(channel, queues=[replies], on_message=on_reply, no_ack=True):
                deadline = time.monotonic() + 180
                while got[0] < len(payloads) and time.monotonic() < deadline:
                    if any(w.poll() is not None for w in workers):
                        break
                    with contextlib.suppress(TimeoutError):
                        conn.drain_events(timeout=1)
                cpu = meter.stop(len(payloads))
                workers_cpu = sum(proc_cpu(w.pid) for w in workers) - sum(worker_cpu0)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
        channel.queue_delete(queue_name)
    if got[0] < len(payloads):
        for log in logs:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-3000:])
        raise RuntimeError(f"only {got[0]} of {len(payloads)} replies arrived")
    cpu += f", workers {workers_cpu / len(payloads) * 1e6:.0f} us CPU/cmd"
    return (len(payloads) - 1) / (last[0] - first[0]), codes, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--commands", type=int, default=10000)
    parser.add_argument("--starts", type=int, default=4000,
                        help="fabrics, one sync-starting command each (0: skip the phase)")
    parser.add_argument("--processes", type=int, default=2,
                        help="fgd worker commands processes")
    parser.add_argument("--concurrency", type=int, default=1, help="consumers per process")
    parser.add_argument("--prefetch", type=int, default=512,
                        help="both consumers' (the worker's default; it records batches of "
                        "half of it)")
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER)
    args = parser.parse_args()

    broker, vhost = make_vhost(args.broker_url)
    schema = f"bench_cmd_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    database_url = f"{args.database_url}?schema={schema}"
    app = FGDApplication(env={**postgres_env(database_url),
                              "AGGREGATE_CACHE_MAXSIZE": "64"})
    try:
        fabric = app.register_fabric("bench", "https://github.com/example/fabric.git")
        running = app.start_sync(fabric.fabric_id, "manual")  # every command: FGD_3001
        token, _ = create_token(app, "bench", permissions=["trigger_fgd_sync"],
                                fabrics=[fabric.fabric_id])
        payloads = bodies(args.commands, fabric.fabric_id)
        t0 = time.perf_counter()
        bare, bare_cpu = bare_rate(broker, payloads, args.prefetch)
        ours, codes, our_cpu = intake_rate(broker, database_url, token, payloads,
                                           args.processes, args.concurrency, args.prefetch)
        total = time.perf_counter() - t0
        receipts = sum(1 for n in app.recorder.select_notifications(start=1, limit=10**7)
                       if b'"bus_trigger_sync"' in n.state and b'"outcome"' in n.state)
        print(f"commands: {args.commands}  worker processes: {args.processes} × "
              f"{args.concurrency} consumers, prefetch {args.prefetch}  fabric syncing: "
              f"{running.sync_id}")
        print(f"bare kombu consumer (ack only):           {bare:10.0f} msg/s   {bare_cpu}")
        print(f"command intake (validate/auth/dedup/reply): {ours:8.0f} cmd/s   {our_cpu}")
        print(f"  replies: {codes}   receipts recorded: {receipts}")
        print(f"ratio intake/bare: {ours / bare:.2f}  (target >= 0.30)   phases took "
              f"{total:.1f} s")
        if args.starts:
            starts_phase(app, args, broker, database_url)
    finally:
        app.close()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        if vhost:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


def starts_phase(app: FGDApplication, args: argparse.Namespace, broker: str,
                 database_url: str) -> None:
    """Commands that each start a sync, one per fabric, against the bare consumer on the
    same bodies (measured again here, so both figures come from the same moment)."""
    t0 = time.perf_counter()
    fabric_ids = [app.register_fabric(f"bench-start-{i}",
                                      f"https://github.com/example/fabric-{i}.git").fabric_id
                  for i in range(args.starts)]
    token, _ = create_token(app, "bench-starts", permissions=["trigger_fgd_sync"])  # any fabric
    registered = time.perf_counter() - t0
    settle(database_url)
    before = started_count(app)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "fgd_config.yaml"  # room for every start: none is refused
        config.write_text(f"fgd:\n  sync:\n    max_concurrent_syncs: {args.starts + 10}\n")
        payloads = start_bodies(fabric_ids)
        t1 = time.perf_counter()
        bare, bare_cpu = bare_rate(broker, payloads, args.prefetch)
        ours, codes, our_cpu = intake_rate(broker, database_url, token, payloads,
                                           args.processes, args.concurrency, args.prefetch,
                                           extra_env={"HEDGEHOG_FGD_CONFIG": str(config)})
        total = time.perf_counter() - t1
    started = started_count(app) - before
    print(f"\nstarts: {args.starts} fabrics (registered in {registered:.1f} s), one command "
          f"each  worker processes: {args.processes} × {args.concurrency} consumers, "
          f"prefetch {args.prefetch}")
    print(f"bare kombu consumer (ack only):           {bare:10.0f} msg/s   {bare_cpu}")
    print(f"command intake, accepted starts:          {ours:10.0f} cmd/s   {our_cpu}")
    print(f"  replies: {codes}   syncs started: {started}")
    print(f"ratio starts/bare: {ours / bare:.2f}  (target >= 0.30)   phases took {total:.1f} s")
    if codes != {"started": args.starts} or started != args.starts:
        raise SystemExit("not every command started its sync")


def settle(database_url: str) -> None:
    """VACUUM ANALYZE the schema's tables: the thousands of registrations just made would
    otherwise have autovacuum analyze them inside the measured phase (PostgreSQL CPU that a
    burst of starts does not cause)."""
    base, _, query = database_url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                     [query]).fetchall():
            conn.execute(f'VACUUM ANALYZE "{query}"."{table}"')


def started_count(app: FGDApplication) -> int:
    return sum(1 for n in app.recorder.select_notifications(start=1, limit=10**7)
               if b'"sync.started"' in n.state)


if __name__ == "__main__":
    main()
