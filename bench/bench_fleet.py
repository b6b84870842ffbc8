"""Fleet benchmark: many fabrics on one schedule, scheduler + relay + workers as processes.

Each fabric is a local bare repository of a few files (a README and one VPC in
``gitops/raw/``), registered with ``sync_interval_minutes: 1``: a real 5-minute interval
compressed five times, so ``--fabrics`` checks are due every 60 s (1,000 fabrics → 1,000
checks a minute, the target rate). The relay, discovery, github, ``--ingestion`` ingestion
workers and the scheduler run as separate ``fgd worker`` processes on PostgreSQL (a fresh
schema) and RabbitMQ (a virtual host of its own).

Phases:

1. **First syncs** (warm-up): every fabric is new, so the scheduler starts its first sync
   (owed: never synced); the workers carry them all to ``completed``. Throughput in
   syncs/s — run with ``--ingestion 1`` and ``--ingestion 2`` to compare.
2. **Rounds** (``--rounds`` × 60 s): at the start of each, ``--changed`` of the fabrics get
   a new raw file (a commit); the scheduler checks every fabric once in the round and
   syncs only the changed ones. Per round: checks and checks/s (from the scheduler's
   ``fgd_change_checks_total``), events written by the unchanged fabrics per no-op check
   (target 0) and by the changed ones per sync, the backlog at the end (fabrics whose
   last check is overdue, syncs still running), the scheduler's CPU per check, the peak
   PostgreSQL connections per process, the store's growth (→ per simulated day: one round
   is one 5-minute interval, 288 a day).

    .venv/bin/python bench/bench_fleet.py                       # 1,000 fabrics, 3 rounds
    .venv/bin/python bench/bench_fleet.py --fabrics 300 --rounds 2 --ingestion 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dulwich.index import commit_tree  # noqa: E402
from dulwich.object_store import iter_tree_contents  # noqa: E402
from dulwich.objects import Blob, Commit  # noqa: E402
from dulwich.repo import Repo  # noqa: E402
from kombu import Connection  # noqa: E402

from bench.bench_commands import make_vhost  # noqa: E402
from bench.cpu import proc_cpu  # noqa: E402
from fgd_core.adapters.persistence import postgres_env  # noqa: E402
from fgd_core.application.app import FGDApplication  # noqa: E402
from fgd_workers.bus import declare_work_queue  # noqa: E402
from fgd_workers.discovery import ROUTING_KEYS as DISCOVERY_KEYS  # noqa: E402
from fgd_workers.github import ROUTING_KEYS as GITHUB_KEYS  # noqa: E402
from fgd_workers.ingestion import ROUTING_KEYS as INGESTION_KEYS  # noqa: E402
from tests.pg_connections import connections_by_pid  # noqa: E402

DEFAULT_DB = os.environ.get("FGD_BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
DEFAULT_BROKER = os.environ.get("FGD_BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUES = {"discovery": DISCOVERY_KEYS, "ingestion": INGESTION_KEYS, "github": GITHUB_KEYS}
INTERVAL_SECONDS = 60  # sync_interval_minutes: 1 (a 5-minute interval, compressed 5 ×)
ROUNDS_PER_DAY = 24 * 60 // 5  # one round stands for one real 5-minute interval
FINAL = ("sync.completed", "sync.failed", "sync.cancelled", "sync.timeout")
VPC = """apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: {name}
spec:
  subnets:
    default:
      subnet: 10.{a}.{b}.0/24
      gateway: 10.{a}.{b}.1
      vlan: {vlan}
"""


# --- repositories (dulwich: a thousand `git` CLI runs would take minutes) --------------------


def _commit(repo: Repo, files: dict[str, bytes], message: str) -> None:
    store = repo.object_store
    entries: dict[bytes, tuple[bytes, int]] = {}
    head = repo.refs.as_dict().get(b"refs/heads/main")  # ruff: no `in` + `[]` pair
    if head is not None:
        for entry in iter_tree_contents(store, store[head].tree):  # type: ignore[attr-defined]
            entries[entry.path] = (entry.sha, entry.mode)
    for path, data in files.items():
        blob = Blob.from_string(data)
        store.add_object(blob)
        entries[path.encode()] = (blob.id, 0o100644)
    commit = Commit()
    commit.tree = commit_tree(store, [(p, s, m) for p, (s, m) in entries.items()])
    commit.parents = [head] if head is not None else []
    commit.author = commit.committer = b"Fleet Bench <bench@example.com>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message.encode()
    store.add_object(commit)
    repo.refs[b"refs/heads/main"] = commit.id


def vpc(name: str, n: int) -> bytes:
    return VPC.format(name=name, a=n // 256 % 256, b=n % 256, vlan=1000 + n % 2000).encode()


def make_repos(root: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = root / f"fabric-{i}.git"
        path.mkdir(parents=True)
        repo = Repo.init_bare(str(path))
        repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
        _commit(repo, {"README.md": b"fleet bench fabric\n",
                       "gitops/raw/vpcs.yaml": vpc(f"v{i}", 1)}, "seed")
        repo.close()
        paths.append(path)
    return paths


def add_raw_file(path: Path, round_no: int) -> None:
    repo = Repo(str(path))
    try:
        _commit(repo, {f"gitops/raw/round-{round_no}.yaml": vpc(f"r{round_no}", 2 + round_no)},
                f"round {round_no}")
    finally:
        repo.close()


# --- measuring -------------------------------------------------------------------------------


def scrape(port: int) -> dict[str, float]:
    """The scheduler's metrics: change-check counters and the last-checked gauges."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r'(fgd_change_checks_total|fgd_change_check_seconds_(?:sum|count)|'
                     r'fgd_fabric_last_checked_timestamp_seconds)(\{[^}]*\})? (\S+)', line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def checks_total(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("fgd_change_checks_total{"))


class Store:
    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn, self.schema = conn, schema

    def position(self) -> int:
        row = self.conn.execute(f'SELECT coalesce(max(position), 0) FROM "{self.schema}"'
                                ".fgd_envelopes").fetchone()
        return int(row[0]) if row else 0

    def events_by_fabric(self, after: int, upto: int) -> Counter[int]:
        rows = self.conn.execute(
            f"SELECT (envelope->>'fabric_id')::int, count(*) FROM \"{self.schema}\".fgd_envelopes"
            " WHERE position > %s AND position <= %s GROUP BY 1", (after, upto)).fetchall()
        return Counter({int(r[0] or 0): int(r[1]) for r in rows})

    def count(self, types: tuple[str, ...], after: int = 0) -> int:
        row = self.conn.execute(
            f"SELECT count(*) FROM \"{self.schema}\".fgd_envelopes WHERE position > %s"
            " AND envelope->>'event_type' = ANY(%s)", (after, list(types))).fetchone()
        return int(row[0]) if row else 0

    def size(self) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
            " AND c.relkind IN ('r', 'm')", (self.schema,)).fetchone()
        return int(row[0]) if row else 0


class Processes:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "fgd_core.cli.worker", *args], env=self.env, cwd=self.tmp,
            stdout=log, stderr=subprocess.STDOUT)

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.tmp / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited {proc.returncode}:\n{tail}")

    def connections(self, conn: psycopg.Connection[Any], peak: dict[str, int]) -> int:
        counts = connections_by_pid(conn, [p.pid for p in self.procs.values()])
        for name, proc in self.procs.items():
            peak[name] = max(peak.get(name, 0), counts[proc.pid])
        return sum(counts.values())

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fabrics", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changed", type=float, default=0.03,
                        help="share of the fabrics given a new raw file each round")
    parser.add_argument("--ingestion", type=int, default=1, help="ingestion worker processes")
    parser.add_argument("--tick", type=float, default=2.0, help="scheduler tick (seconds)")
    parser.add_argument("--max-concurrent", type=int, default=50,
                        help="sync.max_concurrent_syncs")
    parser.add_argument("--warmup-timeout", type=float, default=1800)
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fgd-fleet-"))
    broker, vhost = make_vhost(args.broker_url)
    schema = f"bench_fleet_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.database_url, autocommit=True)
    admin.execute(f'CREATE SCHEMA "{schema}"')
    database_url = f"{args.database_url}?schema={schema}"
    prefix = f"fleet-{uuid.uuid4().hex[:6]}"
    procs: Processes | None = None
    app = FGDApplication(env=postgres_env(database_url))
    try:
        t0 = time.perf_counter()
        repos = make_repos(tmp / "repos", args.fabrics)
        ids = [app.register_fabric(f"f{i}", str(p), sync_interval_minutes=1).fabric_id
               for i, p in enumerate(repos)]
        print(f"{args.fabrics} fabrics (bare repositories + registration) in "
              f"{time.perf_counter() - t0:.1f} s; {args.ingestion} ingestion process(es), "
              f"scheduler tick {args.tick} s, max_concurrent_syncs {args.max_concurrent}")
        (tmp / "fgd_config.yaml").write_text(
            f"fgd:\n  sync:\n    max_concurrent_syncs: {args.max_concurrent}\n"
            "    timeout_seconds: 600\n")
        with Connection(broker) as conn:
            for kind, keys in QUEUES.items():
                declare_work_queue(conn.default_channel, f"{prefix}.{kind}", keys)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HEDGEHOG_FGD_DATABASE_URL": database_url,
               "HEDGEHOG_FGD_BROKER_URL": broker, "HEDGEHOG_FGD_QUEUE_PREFIX": prefix,
               "HEDGEHOG_FGD_CONFIG": str(tmp / "fgd_config.yaml")}
        procs = Processes(tmp, env)
        port = free_port()
        procs.start("relay", "relay")
        procs.start("discovery", "discovery", "--cache-dir", str(tmp / "cache-d"))
        procs.start("github", "github", "--cache-dir", str(tmp / "cache-g"))
        for i in range(args.ingestion):
            procs.start(f"ingestion-{i}", "ingestion", "--cache-dir", str(tmp / f"cache-i{i}"))
        procs.start("scheduler", "scheduler", "--tick", str(args.tick), "--metrics-port",
                    str(port), "--cache-dir", str(tmp / "cache-s"))
        store = Store(admin, schema)
        peak: dict[str, int] = {}

        # 1. first syncs
        t0 = time.perf_counter()
        ended = 0
        while ended < args.fabrics:
            procs.check()
            procs.connections(admin, peak)
            ended = store.count(FINAL)
            if time.perf_counter() - t0 > args.warmup_timeout:
                raise RuntimeError(f"first syncs: only {ended} of {args.fabrics} ended")
            time.sleep(1.0)
        warm = time.perf_counter() - t0
        completed = store.count(("sync.completed",))
        print(f"first syncs: {args.fabrics} in {warm:.1f} s = {args.fabrics / warm:.1f} syncs/s "
              f"({completed} completed) with {args.ingestion} ingestion process(es)")

        # 2. rounds
        changed_n = max(1, round(args.fabrics * args.changed))
        sched_pid = procs.procs["scheduler"].pid
        for round_no in range(1, args.rounds + 1):
            changed = set(ids[(round_no * 7919 + k * 13) % len(ids)] for k in range(changed_n))
            pos0, size0, cpu0 = store.position(), store.size(), proc_cpu(sched_pid)
            m0 = scrape(port)
            t0 = time.perf_counter()
            for fabric_id in changed:
                add_raw_file(repos[ids.index(fabric_id)], round_no)
            conn_peak = 0
            while time.perf_counter() - t0 < INTERVAL_SECONDS:
                procs.check()
                conn_peak = max(conn_peak, procs.connections(admin, peak))
                time.sleep(1.0)
            wall = time.perf_counter() - t0
            m1, pos1, size1 = scrape(port), store.position(), store.size()
            cpu = proc_cpu(sched_pid) - cpu0
            checks = checks_total(m1) - checks_total(m0)
            by_result = {k.split('"')[1]: m1[k] - m0.get(k, 0.0) for k in m1
                         if k.startswith("fgd_change_checks_total{")}
            events = store.events_by_fabric(pos0, pos1)
            # Events without a fabric (the shared SyncCapacity's slots) come with syncs.
            quiet_events = sum(n for f, n in events.items() if f and f not in changed)
            synced_events = sum(n for f, n in events.items() if not f or f in changed)
            started = store.count(("sync.started",), pos0)
            now = time.time()
            last = {k: v for k, v in m1.items()
                    if k.startswith("fgd_fabric_last_checked_timestamp_seconds")}
            overdue = args.fabrics - sum(
                1 for v in last.values() if now - v <= INTERVAL_SECONDS + 2 * args.tick)
            running = store.count(("sync.started",)) - store.count(FINAL)
            secs = m1.get("fgd_change_check_seconds_sum", 0) - m0.get(
                "fgd_change_check_seconds_sum", 0)
            print(f"round {round_no}: {len(changed)} fabrics changed; {checks:.0f} checks in "
                  f"{wall:.0f} s = {checks / wall:.1f} checks/s {by_result}")
            print(f"  events: {quiet_events} from the {args.fabrics - len(changed)} unchanged "
                  f"fabrics = {quiet_events / max(1, checks - len(changed)):.2f} per no-op "
                  f"check; {synced_events} from {started} syncs = "
                  f"{synced_events / max(1, started):.1f} per sync")
            print(f"  backlog at the end: {overdue} fabrics overdue for a check, {running} "
                  f"syncs running")
            print(f"  scheduler: {cpu:.1f} s CPU = {cpu / max(1, checks) * 1e3:.2f} ms per check "
                  f"(check itself {secs / max(1, checks) * 1e3:.2f} ms wall) → one core "
                  f"≈ {checks / max(cpu, 1e-9) * 60:,.0f} checks/min")
            print(f"  store: +{(size1 - size0) / 1e6:.2f} MB, +{pos1 - pos0} events this round "
                  f"→ per simulated day {(size1 - size0) * ROUNDS_PER_DAY / 1e9:.2f} GB, "
                  f"{(pos1 - pos0) * ROUNDS_PER_DAY:,} events; PostgreSQL connections "
                  f"peak {conn_peak}")
        print(f"peak PostgreSQL connections per process: {peak}")
        print(f"store total: {store.size() / 1e6:.1f} MB, {store.position()} events")
    finally:
        if procs is not None:
            procs.stop()
        app.close()
        with contextlib.suppress(Exception):
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
        if vhost:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
