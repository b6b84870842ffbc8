"""The servers crash: ``kill -9`` of the RabbitMQ node and of the PostgreSQL postmaster in
the middle of a distributed sync of a few hundred raw files, then the server starts again
on the same data directory and port.

Each test runs the server it kills itself (tests/own_servers.py: own node name or cluster,
own ports and data directory), never the shared ones; the other server is the shared one
(a schema or a queue prefix of the test's own). Relay, discovery, GitHub-sync and two
ingestion workers run as OS processes. Afterwards every sync has ended (completed, or
failed with a recorded reason), each file was recorded exactly once, the remote tree is
what the embedded runner makes of a twin repository, nothing is left running, every stored
event reached the bus, and every worker is still alive — including one started while the
server was down.

The randomness is seeded; the seed is printed (``-s``) and in the failure messages. Set
``FGD_FAULT_SEED`` to replay one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fgd_core.adapters.persistence import postgres_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.sync_runner import SyncRunner
from tests.integration import test_worker_faults
from tests.integration.test_worker_faults import (
    FILE_END,
    FaultCluster,
    Twin,
    check_bus,
    check_sync,
    random_files,
    stored_envelopes,
    tree,
    wait_all_final,
)
from tests.own_servers import OwnPostgres, OwnRabbitMQ

seed = test_worker_faults.seed  # fixtures: the fault seed, the embedded runner of the twins
embedded = test_worker_faults.embedded

FABRICS = 3
FILES_PER_FABRIC = 100  # a few hundred raw files in all
WORKERS = ("relay", "discovery", "github", "ingestion", "ingestion")


@pytest.fixture
def own_rabbitmq(tmp_path: Path) -> Iterator[OwnRabbitMQ]:
    node = OwnRabbitMQ(tmp_path / "rabbitmq")
    try:
        yield node.start()
    finally:
        node.close()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    cluster = OwnPostgres(tmp_path / "postgres")
    try:
        yield cluster.start()
    finally:
        cluster.close()


def log_of(proc: Any) -> str:
    return Path(proc.log_path).read_text(errors="replace")


def files_done(app: FGDApplication, sync_ids: list[str]) -> int:
    return sum(app.get_sync(s).files_processed for s in sync_ids)


def crash_mid_sync(
    app: FGDApplication,
    cluster: FaultCluster,
    embedded: SyncRunner,
    tmp_path: Path,
    seed: int,
    kill: Callable[[], None],
    restart: Callable[[], None],
    late_markers: dict[str, str],
) -> dict[str, Any]:
    """Start a sync on each of ``FABRICS`` fabrics, ``kill`` the server once some files are
    done, start the processes of ``late_markers`` (kind → what its log says about the
    outage) while it is down, ``restart`` it; then check it all. Returns what happened."""
    rng = random.Random(seed)
    twins = [Twin(f"fab{i}", tmp_path, app, embedded) for i in range(FABRICS)]
    for twin in twins:
        twin.add(random_files(rng, twin, FILES_PER_FABRIC))
    workers = [cluster.start(kind) for kind in WORKERS]
    for proc in workers:
        cluster.wait_ready(proc)
    before = {t.name: tree(t.repo) for t in twins}
    started = {app.start_sync(t.fabric_id).sync_id: t for t in twins}
    sync_ids = list(started)

    # Mid-sync: files are being ingested, a seeded share of them (10-70 %) is done.
    total = FABRICS * FILES_PER_FABRIC
    kill_after = int(total * rng.uniform(0.1, 0.7))
    deadline = time.monotonic() + 90
    while (done_at_kill := files_done(app, sync_ids)) < kill_after:
        assert time.monotonic() < deadline, f"seed {seed}: no progress\n{cluster.logs()}"
        time.sleep(0.05)
    assert done_at_kill < total, f"seed {seed}: everything was done before the crash"
    killed_at = datetime.now(UTC)
    kill()
    # Processes (re)started while the server is down wait for it instead of exiting (as a
    # supervisor restarting them in a loop would otherwise see): each must have met the
    # outage (``marker`` in its log) and still be running when the server comes back.
    late = {cluster.start(kind): marker for kind, marker in late_markers.items()}
    deadline = time.monotonic() + 60
    while not all(marker in log_of(proc) for proc, marker in late.items()):
        for proc in late:
            assert proc.poll() is None, f"seed {seed}: started during the outage, exited:\n" \
                                        f"{log_of(proc)}"
        assert time.monotonic() < deadline, f"seed {seed}: {[log_of(p) for p in late]}"
        time.sleep(0.1)
    restart()
    for proc in late:
        cluster.wait_ready(proc, timeout=60)

    done = wait_all_final(app, sync_ids, cluster, 150, seed)
    envelopes = stored_envelopes(app)
    # The crash hit mid-ingestion: files ended before it and after it.
    ends = [datetime.fromisoformat(e["timestamp"]) < killed_at for e in envelopes
            if e["event_type"] in FILE_END]
    before_kill, after_kill = sum(ends), len(ends) - sum(ends)
    assert before_kill and after_kill, (seed, before_kill, after_kill)
    for sync_id, twin in started.items():
        check_sync(app, done[sync_id], twin, before[twin.name], envelopes, seed)
    for sync in done.values():  # nothing left running: every file ended, the lock released
        assert not sync.is_active
        assert all(f["status"] not in ("discovered", "processing") for f in sync.files.values())
    for twin in twins:
        assert app.get_fabric(twin.fabric_id).running_sync_id is None, seed
    check_bus(app, cluster, seed)
    dead = [p for p in cluster.procs if p.poll() is not None]
    assert not dead, f"seed {seed}: workers died:\n{cluster.logs()}"
    return {"done": done, "before_kill": before_kill, "after_kill": after_kill}


def test_rabbitmq_killed_mid_sync_and_restarted(
    pg_app: FGDApplication,
    pg_url: str,
    own_rabbitmq: OwnRabbitMQ,
    tmp_path: Path,
    embedded: SyncRunner,
    seed: int,
) -> None:
    cluster = FaultCluster(tmp_path, pg_url, server=own_rabbitmq.url)
    try:
        outcome = crash_mid_sync(pg_app, cluster, embedded, tmp_path, seed,
                                 kill=own_rabbitmq.kill9, restart=own_rabbitmq.start,
                                 late_markers={"ingestion": "reconnecting in"})
        print(f"files ended before the kill: {outcome['before_kill']}, "
              f"after: {outcome['after_kill']}")
        # A broker crash loses nothing the store holds: every sync completes.
        states = {s: d.state for s, d in outcome["done"].items()}
        assert set(states.values()) == {"completed"}, (seed, states)
        assert own_rabbitmq.starts == 2
    finally:
        cluster.close()


def test_postgres_killed_mid_sync_and_restarted(
    own_postgres: OwnPostgres, tmp_path: Path, embedded: SyncRunner, seed: int
) -> None:
    app = FGDApplication(env=postgres_env(own_postgres.url))
    cluster = FaultCluster(tmp_path, own_postgres.url)
    try:
        outcome = crash_mid_sync(app, cluster, embedded, tmp_path, seed,
                                 kill=own_postgres.kill9, restart=own_postgres.start,
                                 late_markers={"ingestion": "event store unreachable",
                                               "relay": "event store unreachable"})
        print(f"files ended before the kill: {outcome['before_kill']}, "
              f"after: {outcome['after_kill']}")
        states = {s: d.state for s, d in outcome["done"].items()}
        assert set(states.values()) == {"completed"}, (seed, states)
    finally:
        cluster.close()
        app.close()
