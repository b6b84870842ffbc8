"""Distributed sync benchmark: relay + discovery + 2 ingestion + GitHub-sync workers as OS
processes (PostgreSQL + RabbitMQ) against the embedded SyncRunner, same database server.

  large    10,000 resources in 200 raw files, trigger → completed.
           ratio embedded / distributed                                 target >= 0.8 x
  typical  the spec's typical fabric: 23 raw files, 45 resources, trigger → completed
           (median of several syncs). distributed / embedded             target <= 1.7 x

Usage: python bench/bench_workers.py [--resources 10000] [--files 200] [--typical-runs 5]
Needs PostgreSQL (FGD_TEST_DATABASE_URL, default postgresql://root@127.0.0.1:5432/test),
RabbitMQ (FGD_TEST_BROKER_URL) and the git CLI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kombu import Connection  # noqa: E402

from bench.cpu import machine_busy, proc_cpu  # noqa: E402
from bench.fabric_gen import FabricGen  # noqa: E402
from fgd_core.adapters.persistence import postgres_env  # noqa: E402
from fgd_core.application.app import FGDApplication  # noqa: E402
from fgd_core.application.pipeline_local import DRIVER_ENV  # noqa: E402
from fgd_core.application.sync_runner import SyncRunner  # noqa: E402
from fgd_core.config import load_settings  # noqa: E402
from fgd_workers.bus import declare_work_queue  # noqa: E402
from fgd_workers.discovery import ROUTING_KEYS as DISCOVERY_KEYS  # noqa: E402
from fgd_workers.github import ROUTING_KEYS as GITHUB_KEYS  # noqa: E402
from fgd_workers.ingestion import ROUTING_KEYS as INGESTION_KEYS  # noqa: E402
from tests.gitserver import init_bare, seed_repo  # noqa: E402

PG_URL = os.environ.get("FGD_TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
BROKER = os.environ.get("FGD_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
QUEUES = {"discovery": DISCOVERY_KEYS, "ingestion": INGESTION_KEYS, "github": GITHUB_KEYS}

def raw_files(resources: int, files: int, tag: str) -> dict[str, bytes]:
    """A fabric valid as a whole (bench/fabric_gen.py: wiring, servers, connections, VPCs,
    attachments), so the realistic path runs — every file processed and committed, the
    fabric-wide checks finding nothing — not the path of files failing validation."""
    gen = FabricGen(capacity_units=max(10, resources // 2))
    per, extra = divmod(resources, files)
    out, n = {}, 0
    for f in range(files):
        count = per + (1 if f < extra else 0)
        out[f"gitops/raw/{tag}-{f:04d}.yaml"] = gen.raw_file(n, count)
        n += count
    return out


def wait_completed(app: FGDApplication, sync_id: str, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync = app.get_sync(sync_id)
        if not sync.is_active:
            assert sync.state == "completed", (sync.state, sync.errors[-3:])
            return
        time.sleep(0.005)
    raise TimeoutError(f"sync {sync_id} did not finish")


def stage_times(app: FGDApplication, sync_id: str) -> str:
    """When each stage ended, in seconds after sync.started (from the recorded events)."""
    events = list(app.repository.event_store.get(uuid.UUID(sync_id)))
    start = events[0].timestamp
    marks = [f"{e.stage}@{(e.timestamp - start).total_seconds():.2f}s" for e in events
             if type(e).__name__ == "StageCompleted"]
    return ", ".join(marks) + f", {len(events)} events"


class Cluster:
    def __init__(self, tmp: Path, database_url: str, ingestion: int = 2) -> None:
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        with Connection(BROKER) as conn:
            for kind, keys in QUEUES.items():
                declare_work_queue(conn.default_channel, f"{self.prefix}.{kind}", keys)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HEDGEHOG_FGD_DATABASE_URL": database_url,
               "HEDGEHOG_FGD_BROKER_URL": BROKER, "HEDGEHOG_FGD_QUEUE_PREFIX": self.prefix}
        kinds = ["relay", "discovery", "github"] + ["ingestion"] * ingestion
        self.logs = [(tmp / f"{k}-{i}.log") for i, k in enumerate(kinds)]
        # BENCH_PROFILE_DIR=dir: each worker runs under cProfile, written to dir on exit.
        profile = os.environ.get("BENCH_PROFILE_DIR")

        def command(kind: str, i: int) -> list[str]:
            wrap = ["-m", "cProfile", "-o", f"{profile}/{kind}-{i}.prof"] if profile else []
            return [sys.executable, *wrap, "-m", "fgd_core.cli.worker", kind]

        self.procs = [
            subprocess.Popen(command(k, i), env=env, cwd=tmp,
                             stdout=log.open("wb"), stderr=subprocess.STDOUT)
            for i, (k, log) in enumerate(zip(kinds, self.logs, strict=True))
        ]
        deadline = time.monotonic() + 30
        while not all("started" in log.read_text() for log in self.logs):
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.05)
        time.sleep(0.5)

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) each worker process has used so far."""
        return {log.stem: proc_cpu(proc.pid)
                for proc, log in zip(self.procs, self.logs, strict=True)}

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(15)
        with Connection(BROKER) as conn:
            for kind in QUEUES:
                conn.default_channel.queue_delete(f"{self.prefix}.{kind}")


def one_sync(app: FGDApplication, repo: Path, runner: SyncRunner | None,
             stages: bool = False) -> float:
    app = runner.app if runner is not None else app
    fabric = app.register_fabric(f"f-{uuid.uuid4().hex[:8]}", str(repo))
    started = time.perf_counter()
    if runner is not None:
        result = runner.run(fabric.fabric_id)
        assert result.ok, result.sync.errors[-3:]
        sync_id = result.sync.sync_id
    else:
        sync_id = app.start_sync(fabric.fabric_id).sync_id
        wait_completed(app, sync_id)
    elapsed = time.perf_counter() - started
    if stages:
        print(f"    stages: {stage_times(app, sync_id)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--typical-runs", type=int, default=5)
    args = parser.parse_args()
    # Two schemas: the workers would otherwise also pick up the embedded runner's syncs.
    schemas = [f"bench_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    database_url = f"{PG_URL}?schema={schemas[0]}"
    # The bench polls the sync every 5 ms: with the aggregate cache a poll reads only the
    # events since the last one, not the whole sync (which would take a core from the workers).
    app = FGDApplication(env={**postgres_env(database_url), **DRIVER_ENV})
    # As bootstrap.build_runner builds the in-process driver's app (its aggregate cache).
    embedded_app = FGDApplication(
        env={**postgres_env(f"{PG_URL}?schema={schemas[1]}"), **DRIVER_ENV})
    runner = SyncRunner(embedded_app, load_settings(environ={}).fgd)
    cluster = None
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)

            def repo(name: str, resources: int, files: int) -> Path:
                bare = init_bare(tmp / f"{name}.git")
                seed_repo(bare, raw_files(resources, files, name))
                return bare

            cluster = Cluster(tmp, database_url)
            # Warm-up (imports, connections, caches) on both sides.
            one_sync(app, repo("warm-e", 45, 23), runner)
            one_sync(app, repo("warm-d", 45, 23), None)

            embedded = one_sync(app, repo("large-e", args.resources, args.files), runner, True)
            large = repo("large-d", args.resources, args.files)
            cpu_before, machine_before = cluster.cpu(), machine_busy()
            distributed = one_sync(app, large, None, True)
            cpu_after, machine = cluster.cpu(), machine_busy() - machine_before
            used = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
            print("    CPU s: " + ", ".join(f"{k} {v:.2f}" for k, v in used.items())
                  + f"; whole machine {machine:.2f} of {distributed * os.cpu_count():.2f}")
            print(f"large sync ({args.resources:,} resources, {args.files} raw files)")
            print(f"  embedded    (SyncRunner, 1 process)        {embedded:8.2f} s")
            print(f"  distributed (relay+discovery+2 ingestion+github) {distributed:8.2f} s")
            print(f"  ratio embedded/distributed {embedded / distributed:.2f} x "
                  f"(target >= 0.8 x)")

            emb, dist = [], []
            for i in range(args.typical_runs):
                last = i == args.typical_runs - 1  # its stage times printed
                emb.append(one_sync(app, repo(f"typ-e{i}", 45, 23), runner, last))
                dist.append(one_sync(app, repo(f"typ-d{i}", 45, 23), None, last))
            e, d = statistics.median(emb), statistics.median(dist)
            print(f"typical fabric (23 raw files, 45 resources), trigger -> completed, "
                  f"median of {args.typical_runs}")
            print(f"  embedded    {e * 1000:8.1f} ms   (all: "
                  f"{', '.join(f'{x * 1000:.0f}' for x in emb)})")
            print(f"  distributed {d * 1000:8.1f} ms   (all: "
                  f"{', '.join(f'{x * 1000:.0f}' for x in dist)})")
            print(f"  ratio distributed/embedded {d / e:.2f} x (target <= 1.7 x)")
    finally:
        if cluster is not None:
            cluster.close()
        app.close()
        embedded_app.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
