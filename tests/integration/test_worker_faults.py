"""Faults in the distributed sync: workers killed with SIGKILL at random points, the broker
gone mid-sync, poison messages. Real PostgreSQL (a schema per test), real RabbitMQ (this
run's vhost, a unique queue prefix per test), real git bare repositories, workers as OS
processes. Every distributed sync is compared with the embedded SyncRunner on a twin
repository that received the same raw files.

The randomness is seeded; the seed is printed (``-s``) and in the failure messages. Set
``FGD_FAULT_SEED`` to replay one.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
from kombu import Connection, Exchange, Queue

from fgd_core.adapters.persistence import sqlite_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.config import load_settings
from fgd_workers.bus import DEAD_QUEUE, EVENTS_EXCHANGE
from tests.gitserver import git, init_bare, seed_repo
from tests.integration.test_workers import BROKER, FINAL, ROOT, Cluster, sync_commits
from tests.tcpproxy import TCPProxy

KINDS = ("relay", "discovery", "ingestion", "github")
FILE_END = ("file.processed", "file.failed", "file.skipped")

VPC = """\
apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: {name}
  namespace: default
spec:
  ipv4Namespace: default
  vlanNamespace: default
  subnets:
    default:
      subnet: 10.{a}.{b}.0/24
      gateway: 10.{a}.{b}.1
      vlan: {vlan}
"""


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("FGD_FAULT_SEED") or random.randrange(2**31))
    print(f"\nfault seed: {value} (FGD_FAULT_SEED={value} replays it)")
    return value


@pytest.fixture
def app(pg_app: FGDApplication) -> FGDApplication:
    """These tests run on PostgreSQL only."""
    return pg_app


class FaultCluster(Cluster):
    """``Cluster`` whose workers may reach the broker through another URL (a proxy), with a
    tap queue bound to ``#`` that sees everything the relay publishes."""

    def __init__(
        self, tmp: Path, database_url: str, broker: str | None = None, server: str = BROKER
    ) -> None:
        self.lock = threading.Lock()
        super().__init__(tmp, database_url, server)
        self.broker = broker or server
        self.tap = Queue(
            f"{self.prefix}.tap",
            exchange=EVENTS_EXCHANGE,
            routing_key="#",
            durable=True,
            auto_delete=False,
        )
        with Connection(self.server) as conn:
            self.tap(conn.default_channel).declare()
        self.seen: set[str] = set()

    def start(self, kind: str, *args: str, delay: float = 0.0) -> Any:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HEDGEHOG_FGD_DATABASE_URL": self.database_url,
            "HEDGEHOG_FGD_BROKER_URL": self.broker,
            "HEDGEHOG_FGD_QUEUE_PREFIX": self.prefix,
            "HEDGEHOG_FGD_TEST_HANDLER_DELAY": str(delay),
        }
        with self.lock:
            log = (self.tmp / f"{kind}-{len(self.procs)}.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "fgd_core.cli.worker", kind, *args],
                env=env,
                cwd=self.tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            proc.log_path = log.name  # type: ignore[attr-defined]
            self.procs.append(proc)
        return proc

    def bus_ids(self) -> set[str]:
        """Event ids (``message_id``) that reached the tap queue so far."""
        with Connection(self.server) as conn:
            queue = self.tap(conn.default_channel)
            while (message := queue.get(no_ack=True)) is not None:
                self.seen.add(message.properties["message_id"])
        return self.seen

    def close(self) -> None:
        super().close()
        with Connection(self.server) as conn:
            conn.default_channel.queue_delete(self.tap.name)


def proxied(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))


# --- fabrics: a distributed repo and its embedded twin -------------------------------------


class Twin:
    """One fabric twice: ``repo`` synced by the workers, ``twin`` by the embedded runner."""

    def __init__(self, name: str, tmp: Path, app: FGDApplication, runner: SyncRunner) -> None:
        self.name, self.runner = name, runner
        self.repo = init_bare(tmp / f"{name}.git")
        self.twin = init_bare(tmp / f"{name}-embedded.git")
        self.fabric_id = app.register_fabric(name, str(self.repo)).fabric_id
        self.twin_id = runner.app.register_fabric(name, str(self.twin)).fabric_id
        self.serial = 0
        self.commits = 0  # commits on ``repo`` expected so far

    def add(self, files: dict[str, bytes]) -> None:
        for bare in (self.repo, self.twin):
            seed_repo(bare, files, message=f"raw files {self.serial}")
        self.commits += 1

    def embedded(self) -> Any:
        return self.runner.run(self.twin_id)


def random_files(rng: random.Random, twin: Twin, count: int) -> dict[str, bytes]:
    """Small random raw files: mostly valid VPCs, now and then a broken document or a VPC
    already defined by another file of the same batch (a cross-file conflict)."""
    out: dict[str, bytes] = {}
    names: list[str] = []
    for _ in range(count):
        twin.serial += 1
        docs = []
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.08:
                docs.append("kind: VPC\nmetadata: [not, a, mapping\n")
                continue
            # A name used before — in another file of the batch (a cross-file conflict) or
            # in this very file (a within-file duplicate, which fails the file; its valid
            # documents still take part in the cross-file conflict check).
            if roll < 0.14 and names:
                name = rng.choice(names)
            else:
                name = f"{twin.name}-vpc-{twin.serial}-{rng.randrange(10**6)}"
                names.append(name)
            n = rng.randrange(65536)
            docs.append(
                VPC.format(name=name, a=n // 256, b=n % 256, vlan=1000 + rng.randrange(3000))
            )
        out[f"gitops/raw/{twin.name}-{twin.serial:03d}.yaml"] = "---\n".join(docs).encode()
    return out


def tree(bare: Path) -> str:
    return git("ls-tree", "-r", "main", "gitops/managed", "gitops/raw", cwd=bare)


def commit_count(bare: Path) -> int:
    return int(git("rev-list", "--count", "main", cwd=bare))


def wait_all_final(
    app: FGDApplication, sync_ids: list[str], cluster: Cluster, timeout: float, seed: int
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    done: dict[str, Any] = {}
    while len(done) < len(sync_ids):
        for sync_id in sync_ids:
            if sync_id not in done:
                sync = app.get_sync(sync_id)
                if sync.state in FINAL:
                    done[sync_id] = sync
        if len(done) < len(sync_ids):
            assert time.monotonic() < deadline, (
                f"seed {seed}: syncs still running: "
                f"{[(s, app.get_sync(s).state) for s in sync_ids if s not in done]}\n"
                f"{cluster.logs()}"
            )
            time.sleep(0.05)
    return done


def stored_envelopes(app: FGDApplication) -> list[dict[str, Any]]:
    """Every stored envelope, with its aggregate id and version (as ``_id`` / ``_version``)."""
    return [
        {**orjson.loads(n.state), "_id": str(n.originator_id), "_version": n.originator_version}
        for n in app.recorder.select_notifications(start=1, limit=10**6)
    ]


def check_sync(
    app: FGDApplication,
    sync: Any,
    twin: Twin,
    tree_before: str,
    envelopes: list[dict[str, Any]],
    seed: int,
) -> None:
    """One distributed sync against its embedded twin; each file recorded exactly once."""
    where = f"seed {seed}, fabric {twin.name}, sync {sync.sync_id}"
    mine = [e for e in envelopes if e["_id"] == sync.sync_id]
    # Applied exactly once: one event per aggregate version, no version twice or missing.
    versions = [e["_version"] for e in mine]
    assert sorted(versions) == list(range(1, len(mine) + 1)) == list(range(1, sync.version + 1))
    counts = Counter(
        (e["event_type"], e["payload"].get("file_path"))
        for e in mine
        if e["event_type"].startswith("file.")
    )
    discovered = {f for (t, f) in counts if t == "file.discovered"}
    assert discovered == set(sync.files), where
    assert all(n == 1 for n in counts.values()), (where, counts)
    ended = Counter(f for (t, f) in counts if t in FILE_END)
    assert set(ended) == discovered and set(ended.values()) <= {1}, where
    stages = Counter(
        (e["event_type"], e["payload"].get("stage"))
        for e in mine
        if e["event_type"].startswith("stage.")
    )
    assert all(n == 1 for n in stages.values()), (where, stages)
    finals = [e for e in mine if e["event_type"] in ("sync.completed", "sync.failed")]
    assert len(finals) == 1, where

    if sync.state == "failed":  # allowed, with a reason, and the repository untouched
        ended = [e for e in mine if e["event_type"] == "sync.failed"]
        assert ended and ended[0]["payload"]["error"]["message"], where
        assert tree(twin.repo) == tree_before, where
        assert sync_commits(twin.repo, sync.sync_id) == 0, where
        return
    assert sync.state == "completed", (where, sync.state, sync.errors)
    expected = twin.embedded()
    assert expected.sync.state == "completed", (where, expected.sync.errors)
    if expected.pushed:
        twin.commits += 1
    assert tree(twin.repo) == tree(twin.twin), where
    assert sync_commits(twin.repo, sync.sync_id) == (1 if expected.pushed else 0), where
    assert commit_count(twin.repo) == twin.commits, where
    want = {p: f["status"] for p, f in expected.sync.files.items()}
    assert {p: f["status"] for p, f in sync.files.items()} == want, where


def check_bus(app: FGDApplication, cluster: FaultCluster, seed: int) -> None:
    """Every persisted event reached the bus (at least once)."""
    stored = {e["event_id"] for e in stored_envelopes(app)}
    deadline = time.monotonic() + 20
    while not stored <= cluster.bus_ids():
        assert time.monotonic() < deadline, (
            f"seed {seed}: {len(stored - cluster.seen)} of {len(stored)} events never "
            f"reached the bus"
        )
        time.sleep(0.1)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[SyncRunner]:
    application = FGDApplication(env=sqlite_env(tmp_path / "embedded.sqlite3"))
    yield SyncRunner(application, load_settings(environ={}).fgd)
    application.close()


# --- (a) kill -9 every kind of worker at random points --------------------------------------


class Chaos:
    """Kills a random worker of the next kind (round robin over a shuffled order) at random
    moments, restarting it at once; workers get a small random handler delay so that the kill
    often lands mid-message."""

    def __init__(self, cluster: FaultCluster, rng: random.Random) -> None:
        self.cluster, self.rng = cluster, rng
        self.live: dict[str, list[Any]] = {k: [] for k in KINDS}
        self.kills: Counter[str] = Counter()
        self.order: list[str] = []
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def spawn(self, kind: str) -> Any:
        proc = self.cluster.start(
            kind, delay=round(self.rng.uniform(0.0, 0.08), 3) if kind != "relay" else 0.0
        )
        self.live[kind].append(proc)
        return proc

    def start_all(self) -> None:
        for kind in ("relay", "discovery", "github", "ingestion", "ingestion"):
            self.spawn(kind)
        for procs in self.live.values():
            for proc in procs:
                self.cluster.wait_ready(proc)

    def kill_one(self) -> None:
        if not self.order:
            self.order = self.rng.sample(KINDS, len(KINDS))
        kind = self.order.pop()
        victim = self.rng.choice(self.live[kind])
        self.live[kind].remove(victim)
        self.cluster.kill9(victim)
        self.kills[kind] += 1
        self.cluster.wait_ready(self.spawn(kind))

    def _run(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.05, 0.3)):
            self.kill_one()

    def __enter__(self) -> Chaos:
        self.stop.clear()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(30)


def test_workers_killed_at_random_points_across_many_syncs(
    app: FGDApplication, pg_url: str, tmp_path: Path, embedded: SyncRunner, seed: int
) -> None:
    rng = random.Random(seed)
    cluster = FaultCluster(tmp_path, pg_url)
    try:
        chaos = Chaos(cluster, random.Random(rng.randrange(2**31)))
        twins = [Twin(f"fab{i}", tmp_path, app, embedded) for i in range(4)]
        for twin in twins:
            twin.add(random_files(rng, twin, rng.randint(2, 4)))
        chaos.start_all()
        syncs = 0
        for _round in range(6):
            for twin in twins:
                if _round and rng.random() < 0.8:
                    twin.add(random_files(rng, twin, rng.randint(1, 3)))
            before = {t.name: tree(t.repo) for t in twins}
            with chaos:
                started = {app.start_sync(t.fabric_id).sync_id: t for t in twins}
                done = wait_all_final(app, list(started), cluster, 60, seed)
            envelopes = stored_envelopes(app)
            for sync_id, twin in started.items():
                check_sync(app, done[sync_id], twin, before[twin.name], envelopes, seed)
            syncs += len(started)
        print(f"syncs: {syncs}, kills: {dict(chaos.kills)}")
        assert syncs >= 20
        assert set(chaos.kills) == set(KINDS), (seed, chaos.kills)
        check_bus(app, cluster, seed)
        for twin in twins:  # no fabric left locked by a sync that died with its worker
            assert app.get_fabric(twin.fabric_id).running_sync_id is None
    finally:
        cluster.close()


# --- (b) the broker goes away mid-sync and comes back ---------------------------------------


def test_broker_gone_mid_sync_and_back(
    app: FGDApplication, pg_url: str, tmp_path: Path, embedded: SyncRunner, seed: int
) -> None:
    rng = random.Random(seed)
    broker = urlsplit(BROKER)
    proxy = TCPProxy((broker.hostname or "127.0.0.1", broker.port or 5672)).start()
    cluster = FaultCluster(tmp_path, pg_url, broker=proxied(BROKER, proxy.port))
    try:
        for kind in ("relay", "discovery", "github", "ingestion", "ingestion"):
            cluster.start(kind, delay=0.1 if kind == "ingestion" else 0.0)
        for proc in cluster.procs:
            cluster.wait_ready(proc)
        twins = [Twin(f"fab{i}", tmp_path, app, embedded) for i in range(3)]
        for _round in range(2):
            for twin in twins:
                twin.add(random_files(rng, twin, rng.randint(6, 10)))
            before = {t.name: tree(t.repo) for t in twins}
            started = {app.start_sync(t.fabric_id).sync_id: t for t in twins}
            time.sleep(rng.uniform(0.05, 0.2))
            proxy.stop()  # connections reset, new ones refused: like a stopped broker
            time.sleep(rng.uniform(1.0, 2.5))
            assert any(app.get_sync(s).is_active for s in started)  # the outage hit mid-sync
            proxy.start()
            done = wait_all_final(app, list(started), cluster, 45, seed)
            envelopes = stored_envelopes(app)
            for sync_id, twin in started.items():
                check_sync(app, done[sync_id], twin, before[twin.name], envelopes, seed)
                assert done[sync_id].state == "completed"
        check_bus(app, cluster, seed)
    finally:
        cluster.close()
        proxy.stop()


# --- (c) poison messages ---------------------------------------------------------------------


def _take_dead_letters(message_ids: set[str], timeout: float = 20.0) -> dict[str, Any]:
    """Our letters out of the shared fgd.dead (anyone else's stay there)."""
    found: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    with Connection(BROKER) as conn:
        while set(found) != message_ids and time.monotonic() < deadline:
            channel = conn.channel()
            queue = DEAD_QUEUE(channel)
            for _ in range(10_000):
                message = queue.get(no_ack=False)
                if message is None:
                    break
                if message.properties.get("message_id") in message_ids:
                    found[message.properties["message_id"]] = message
                    message.ack()
            channel.close()  # the rest (unacked) goes back as it was
            time.sleep(0.2)
    return found


def test_poison_messages_are_dead_lettered_with_their_reason(
    app: FGDApplication, pg_url: str, tmp_path: Path, embedded: SyncRunner
) -> None:
    cluster = FaultCluster(tmp_path, pg_url)
    try:
        workers = {k: cluster.start(k) for k in ("relay", "discovery", "ingestion", "github")}
        for proc in workers.values():
            cluster.wait_ready(proc)
        bodies = {
            "discovery": b"\x00\xffnot json at all",
            "ingestion": b'{"event_type": "file.discovered", "payload": {}}',
            "github": b"[1, 2, 3]",
        }
        sent: dict[str, str] = {}
        with Connection(BROKER) as conn:
            producer = conn.Producer()
            for kind, body in bodies.items():
                message_id = f"poison-{uuid.uuid4()}"
                sent[message_id] = kind
                producer.publish(
                    body,
                    exchange=Exchange(""),
                    routing_key=f"{cluster.prefix}.{kind}",
                    message_id=message_id,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    retry=False,
                )
        letters = _take_dead_letters(set(sent))
        assert set(letters) == set(sent), (letters, cluster.logs())
        for message_id, letter in letters.items():
            kind = sent[message_id]
            body = letter.body
            assert (body if isinstance(body, bytes) else body.encode()) == bodies[kind]
            headers = letter.headers or {}
            assert headers["x-fgd-worker"] == kind
            assert headers["x-fgd-queue"] == f"{cluster.prefix}.{kind}"
            assert headers["x-fgd-reason"].startswith("invalid envelope")
        assert all(p.poll() is None for p in workers.values()), cluster.logs()

        # The consumers are still there: a sync right after goes through.
        twin = Twin("after", tmp_path, app, embedded)
        twin.add(random_files(random.Random(7), twin, 3))
        before = tree(twin.repo)
        sync_id = app.start_sync(twin.fabric_id).sync_id
        done = wait_all_final(app, [sync_id], cluster, 30, 0)
        check_sync(app, done[sync_id], twin, before, stored_envelopes(app), 0)
        assert done[sync_id].state == "completed"
    finally:
        cluster.close()
