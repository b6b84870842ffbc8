"""The distributed sync: relay, discovery, ingestion and GitHub-sync workers as separate OS
processes on real PostgreSQL (a schema per test), real RabbitMQ (queues with a unique prefix
per test, deleted afterwards) and real git bare repositories.

The expected result is what the embedded SyncRunner makes of the same repository.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection

from fgd_core.adapters.persistence import sqlite_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.config import load_settings
from fgd_workers.bus import declare_work_queue
from fgd_workers.discovery import ROUTING_KEYS as DISCOVERY_KEYS
from fgd_workers.github import ROUTING_KEYS as GITHUB_KEYS
from fgd_workers.ingestion import ROUTING_KEYS as INGESTION_KEYS
from tests.gitserver import git, init_bare, seed_repo
from tests.integration.test_relay import BROKER
from tests.paths import HEDGEHOG_FIXTURES

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = HEDGEHOG_FIXTURES
QUEUES = {"discovery": DISCOVERY_KEYS, "ingestion": INGESTION_KEYS, "github": GITHUB_KEYS}
FINAL = ("completed", "failed", "cancelled", "timed_out")


class Cluster:
    """Worker processes of one test, sharing its database schema and queue prefix, on
    ``server`` (the shared broker unless the test runs a node of its own)."""

    def __init__(self, tmp: Path, database_url: str, server: str = BROKER) -> None:
        self.tmp, self.database_url = tmp, database_url
        self.server = self.broker = server  # the broker the test manages / workers use
        self.prefix = f"test-workers-{uuid.uuid4().hex[:10]}"
        self.procs: list[subprocess.Popen[bytes]] = []
        with Connection(self.server) as conn:  # queues first: nothing published is dropped
            for kind, keys in QUEUES.items():
                declare_work_queue(conn.default_channel, f"{self.prefix}.{kind}", keys)

    def start(self, kind: str, *args: str, delay: float = 0.0) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HEDGEHOG_FGD_DATABASE_URL": self.database_url,
            "HEDGEHOG_FGD_BROKER_URL": self.broker,
            "HEDGEHOG_FGD_QUEUE_PREFIX": self.prefix,
            "HEDGEHOG_FGD_COMMANDS_QUEUE": f"{self.prefix}.commands",
            "HEDGEHOG_FGD_TEST_HANDLER_DELAY": str(delay),
        }
        log = (self.tmp / f"{kind}-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "fgd_core.cli.worker", kind, *args],
            env=env, cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
        )
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]
            if " consuming " in text or "relay" in text and "started" in text:
                return
            assert proc.poll() is None, text
            time.sleep(0.05)
        raise AssertionError(f"worker not ready: {Path(proc.log_path).read_text()}")  # type: ignore[attr-defined]

    def start_all(self, ingestion: int = 2, relays: tuple[str, ...] = ("relay",)) -> None:
        procs = [self.start("relay", "--name", name) for name in relays]
        procs += [self.start("discovery"), self.start("github")]
        procs += [self.start("ingestion") for _ in range(ingestion)]
        for proc in procs:
            self.wait_ready(proc)

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        with Connection(self.server) as conn:
            for kind in (*QUEUES, "commands"):
                conn.default_channel.queue_delete(f"{self.prefix}.{kind}")

    def logs(self) -> str:
        return "\n".join(
            Path(p.log_path).read_text(errors="replace")[-3000:]  # type: ignore[attr-defined]
            for p in self.procs
        )


@pytest.fixture
def app(pg_app: FGDApplication) -> FGDApplication:
    """These tests run on PostgreSQL only."""
    return pg_app


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, pg_url)
    yield c
    c.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {f"gitops/raw/{p.name}": p.read_bytes() for p in FIXTURES.glob("*.yaml")})
    return bare


def expected_tree(repo: Path, tmp: Path) -> tuple[str, dict[str, str]]:
    """What the embedded SyncRunner makes of a copy of ``repo``."""
    copy = tmp / "embedded.git"
    shutil.copytree(repo, copy)
    app = FGDApplication(env=sqlite_env(tmp / "embedded.sqlite3"))
    try:
        fabric = app.register_fabric("lab", str(copy))
        result = SyncRunner(app, load_settings(environ={}).fgd).run(fabric.fabric_id)
        assert result.ok and result.pushed
    finally:
        app.close()
    return tree(copy), managed_contents(copy)


def tree(bare: Path) -> str:
    return git("ls-tree", "-r", "main", "gitops/managed", "gitops/raw", cwd=bare)


def managed_contents(bare: Path) -> dict[str, str]:
    paths = git("ls-tree", "-r", "--name-only", "main", "gitops/managed", cwd=bare).split()
    return {p: git("show", f"main:{p}", cwd=bare) for p in paths}


def sync_commits(bare: Path, sync_id: str) -> int:
    return git("log", "--format=%B", "main", cwd=bare).count(f"FGD-Sync-Id: {sync_id}")


def wait_final(app: FGDApplication, sync_id: str, cluster: Cluster, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync = app.get_sync(sync_id)
        if sync.state in FINAL:
            return sync
        time.sleep(0.1)
    raise AssertionError(f"sync {sync_id} still {app.get_sync(sync_id).state}\n{cluster.logs()}")


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def file_events(app: FGDApplication, sync_id: str) -> Counter[tuple[str, str]]:
    """(event type, file) → how many times it was recorded for this sync."""
    counts: Counter[tuple[str, str]] = Counter()
    for n in app.recorder.select_notifications(start=1, limit=10**6):
        if str(n.originator_id) != sync_id:
            continue
        envelope = __import__("orjson").loads(n.state)
        if envelope["event_type"].startswith("file."):
            counts[(envelope["event_type"], envelope["payload"]["file_path"])] += 1
    return counts


@pytest.fixture
def expected(repo: Path, tmp_path: Path) -> tuple[str, dict[str, str]]:
    return expected_tree(repo, tmp_path)  # before the distributed sync touches the repo


def assert_like_embedded(
    app: FGDApplication, sync: Any, repo: Path, expected: tuple[str, dict[str, str]]
) -> None:
    assert sync.state == "completed", (sync.state, sync.errors)
    want_tree, want_managed = expected
    assert tree(repo) == want_tree
    assert managed_contents(repo) == want_managed
    assert sync_commits(repo, sync.sync_id) == 1
    counts = file_events(app, sync.sync_id)
    discovered = [f for (t, f) in counts if t == "file.discovered"]
    assert len(discovered) == len(sync.files) == len(list(FIXTURES.glob("*.yaml")))
    assert all(n == 1 for n in counts.values()), counts
    ended = Counter(f for (t, f) in counts if t in ("file.processed", "file.failed",
                                                     "file.skipped"))
    assert set(ended) == set(discovered) and set(ended.values()) == {1}


def test_a_sync_across_processes_ends_like_the_embedded_one(
    app: FGDApplication, cluster: Cluster, repo: Path, expected: Any
) -> None:
    fabric = app.register_fabric("lab", str(repo))
    cluster.start_all(ingestion=2)
    sync = app.start_sync(fabric.fabric_id)
    done = wait_final(app, sync.sync_id, cluster)
    assert_like_embedded(app, done, repo, expected)
    # Cross-file conflicts, and files that would break the fabric (the demo VPCs attach to
    # connections the fixtures' wiring does not have), were withdrawn at commit time with
    # FGD_1003, as the embedded planner fails them.
    rejected = [f for (t, f) in file_events(app, sync.sync_id) if t == "file.rejected"]
    assert rejected and all(done.files[f]["status"] == "failed" for f in rejected)
    breakers = {f for f in rejected
                if any(e.get("rule") == "vpcattachment.connection-exists"
                       for e in done.files[f]["validation_errors"])}
    assert breakers == {"gitops/raw/demogitops_env-1_pre-demo.yaml",
                        "gitops/raw/demogitops_env-1_demo.yaml"}
    assert all(e["code"] == "FGD_1003" and e["line"]
               for f in breakers for e in done.files[f]["validation_errors"])
    assert all("conflict" in e["message"] or e.get("rule")
               for f in rejected for e in done.files[f]["validation_errors"])
    # Both ingestion workers took files (competing consumers).
    ingestion_logs = [Path(p.log_path).read_text() for p in cluster.procs  # type: ignore[attr-defined]
                      if "ingestion" in Path(p.log_path).name]  # type: ignore[attr-defined]
    assert len(ingestion_logs) == 2

    # The next sync of the unchanged repository changes nothing and completes.
    again = wait_final(app, app.start_sync(fabric.fabric_id).sync_id, cluster)
    assert again.state == "completed"
    assert again.stage_summaries["github_sync"]["commit"] is None
    # Files failed by their own content are skipped until edited; the conflicting ones are
    # tried again (fixing the other file must let them land), as in the embedded runner.
    status = {p: f["status"] for p, f in again.files.items()}
    assert {p for p, s in status.items() if s == "failed"} == set(rejected)
    assert {s for p, s in status.items() if p not in rejected} == {"skipped"}


def test_worker_all_runs_the_sync_a_bus_command_asks_for(
    app: FGDApplication, cluster: Cluster, repo: Path, expected: Any
) -> None:
    """``fgd worker all`` (small installs) includes the bus intake: a plain-kombu
    sync.trigger is answered and its sync ends as the embedded runner's would."""
    import json

    from kombu import Consumer, Producer, Queue

    from fgd_core.application.auth import create_token
    from fgd_workers.commands import declare_intake

    # not scheduled: the scheduler of `all` would start the first sync of a never-synced
    # fabric, so it has one (cancelled) and is not due again for an hour
    fabric = app.register_fabric("lab", str(repo), sync_interval_minutes=60)
    app.cancel_sync(app.start_sync(fabric.fabric_id, "manual").sync_id)
    key, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"],
                          fabrics=[fabric.fabric_id])
    got: list[Any] = []
    with Connection(BROKER) as conn:
        channel = conn.channel()
        declare_intake(channel, f"{cluster.prefix}.commands")  # before anything is published
        cluster.wait_ready(cluster.start("all"))
        replies = Queue(f"reply.{uuid.uuid4().hex}", exclusive=True, auto_delete=True)(channel)
        replies.declare()
        Consumer(channel, queues=[replies], no_ack=True, on_message=got.append).consume()
        Producer(channel).publish(
            json.dumps({"fabric_id": fabric.fabric_id}).encode(), exchange="fgd.commands",
            routing_key="sync.trigger", headers={"authorization": f"Token {key}"},
            message_id=str(uuid.uuid4()), correlation_id="all-1", reply_to=replies.name,
            serializer=None, content_type="application/json")
        deadline = time.monotonic() + 30
        while not got:
            assert time.monotonic() < deadline, cluster.logs()
            with contextlib.suppress(TimeoutError):
                conn.drain_events(timeout=1)
    reply = json.loads(got[0].body)
    assert reply.get("status") == "started", reply
    done = wait_final(app, reply["sync_id"], cluster)
    assert done.correlation_id == "all-1"
    assert_like_embedded(app, done, repo, expected)


def test_every_message_delivered_twice_changes_nothing(
    app: FGDApplication, cluster: Cluster, repo: Path, expected: Any
) -> None:
    # Two relays of different names each publish every stored event: all arrive twice.
    fabric = app.register_fabric("lab", str(repo))
    cluster.start_all(ingestion=2, relays=("relay-a", "relay-b"))
    sync = app.start_sync(fabric.fabric_id)
    done = wait_final(app, sync.sync_id, cluster)
    assert_like_embedded(app, done, repo, expected)
    time.sleep(1.0)  # let the duplicates of the last events drain: still one of everything
    assert sync_commits(repo, sync.sync_id) == 1
    assert all(n == 1 for n in file_events(app, sync.sync_id).values())
    assert int(git("rev-list", "--count", "main", cwd=repo)) == 2


def test_workers_killed_mid_message_are_replaced_and_the_sync_completes(
    app: FGDApplication, cluster: Cluster, repo: Path, expected: Any
) -> None:
    fabric = app.register_fabric("lab", str(repo))
    relay = cluster.start("relay")
    slow = {kind: cluster.start(kind, delay=60) for kind in ("discovery", "ingestion", "github")}
    for proc in (relay, *slow.values()):
        cluster.wait_ready(proc)
    sync_id = app.start_sync(fabric.fabric_id).sync_id

    def replace(kind: str) -> None:
        time.sleep(1.0)  # the slow worker holds the message (unacked) by now
        cluster.kill9(slow[kind])
        cluster.wait_ready(cluster.start(kind))

    replace("discovery")  # its sync.started comes back to the new discovery worker
    wait_for(lambda: app.get_sync(sync_id).current_stage == "file_ingestion")
    replace("ingestion")  # two files were in the dead worker's hands
    cluster.wait_ready(cluster.start("ingestion"))
    wait_for(lambda: "file_ingestion" in app.get_sync(sync_id).stages_completed, timeout=30)
    replace("github")
    done = wait_final(app, sync_id, cluster)
    assert_like_embedded(app, done, repo, expected)
