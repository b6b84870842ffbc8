"""``fgd sync`` with a broker configured hands the sync to the workers (separate OS processes
on real PostgreSQL and RabbitMQ) and follows it from its events: it never runs a step
itself, so it cannot race them (issue 11). Without a worker it gives up after the pickup
timeout, says so, and exits 4.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fgd_core.application.app import FGDApplication
from tests.gitserver import git, init_bare, seed_repo
from tests.integration.test_console import BAD_VPC
from tests.integration.test_workers import Cluster
from tests.resources import vpc

ROOT = Path(__file__).resolve().parents[2]
# What would betray a race with the workers or a false failure in fgd sync's output.
FALSE_ERRORS = ("FGD_3004", "main moved", "cannot fail", "is not the running sync",
                "Traceback", "FGD_5001")


@pytest.fixture
def workers(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    """Worker processes of this test (started by the test), on its database schema."""
    started = Cluster(tmp_path, pg_url)
    yield started
    started.close()


def fgd_sync(workers: Cluster, repo: Path, *args: str,
             extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return fgd(workers, "sync", "--repo", str(repo), *args, extra_env=extra_env)


def fgd(workers: Cluster, *args: str,
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``fgd ARGS`` on the test's database and broker."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(workers.tmp),
        "HEDGEHOG_FGD_DATABASE_URL": workers.database_url,
        "HEDGEHOG_FGD_BROKER_URL": workers.broker,
        **(extra_env or {}),
    }
    env.pop("HEDGEHOG_FGD_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "fgd_core.cli", *args],
        env=env, cwd=workers.tmp, capture_output=True, text=True, timeout=180,
    )


def pending_raw(repo: Path) -> list[str]:
    listed = git("ls-tree", "-r", "--name-only", "main", "gitops/raw", cwd=repo).split()
    return sorted(p for p in listed if not p.endswith(".archived"))


def managed(repo: Path) -> list[str]:
    return sorted(git("ls-tree", "-r", "--name-only", "main", "gitops/managed",
                      cwd=repo).split())


def assert_clean(done: subprocess.CompletedProcess[str], workers: Cluster) -> None:
    for text in FALSE_ERRORS:
        assert text not in done.stdout + done.stderr, (done.stderr, workers.logs())


def test_twenty_syncs_in_a_row_run_on_the_workers_with_no_false_error(
    tmp_path: Path, workers: Cluster, pg_app: FGDApplication
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/vpc-1.yaml": vpc("vpc-1", 1)})
    workers.start_all(ingestion=2)
    vpcs = 1
    sync_ids: list[str] = []
    for run in range(20):
        bad = run == 12
        if run % 3 == 0 and run:  # a new raw file before every third run
            vpcs += 1
            seed_repo(repo, {f"gitops/raw/vpc-{vpcs}.yaml": vpc(f"vpc-{vpcs}", vpcs)})
        if bad:  # a file that fails: exit status 3 now and while it is unchanged
            seed_repo(repo, {"gitops/raw/bad.yaml": BAD_VPC})
        commits_before = int(git("rev-list", "--count", "main", cwd=repo))
        done = fgd_sync(workers, repo, *(["--json"] if run % 2 else []))
        assert_clean(done, workers)
        failing = run >= 12
        assert done.returncode == (3 if failing else 0), (run, done.stdout, done.stderr)
        sync_id = str(pg_app.get_fabric(1).last_sync_id)
        if run % 2:
            status = json.loads(done.stdout)
            assert status["state"] == "completed" and status["sync_id"] == sync_id
            assert bool(status["errors"]) == bad, status["errors"]  # bad.yaml's, in its run
        else:
            assert "completed" in done.stderr and "pushed" in done.stderr
            if failing:
                assert "still failing" in done.stderr and "bad.yaml" in done.stderr
        sync_ids.append(sync_id)
        # The git tree is right: every good raw file landed (archived), the bad one stays.
        assert pending_raw(repo) == (["gitops/raw/bad.yaml"] if failing else []), run
        assert managed(repo) == sorted(f"gitops/managed/vpcs/vpc-{n}.yaml"
                                       for n in range(1, vpcs + 1)), run
        new_file = run == 0 or (run % 3 == 0)
        commits = int(git("rev-list", "--count", "main", cwd=repo))
        assert commits - commits_before == (1 if new_file else 0), (run, done.stderr)
    assert len(set(sync_ids)) == 20
    # Every one of them ran on the workers (discovery recorded it), and ended once.
    for sync_id in sync_ids:
        sync = pg_app.get_sync(sync_id)
        assert sync.state == "completed", sync_id
    assert "Traceback" not in workers.logs(), workers.logs()


def test_with_no_worker_fgd_sync_says_so_and_exits_4_within_the_pickup_timeout(
    tmp_path: Path, workers: Cluster, pg_app: FGDApplication
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/vpc-1.yaml": vpc("vpc-1", 1)})
    began = time.monotonic()
    done = fgd_sync(workers, repo, extra_env={"HEDGEHOG_FGD_CLI_PICKUP_TIMEOUT": "2"})
    took = time.monotonic() - began
    assert done.returncode == 4, (done.stdout, done.stderr)
    assert "no worker picked up sync" in done.stderr and "within 2 s" in done.stderr
    assert "fgd worker" in done.stderr
    assert took < 30  # it gave up after its 2 s, not after the default 30 s
    # The sync was cancelled, so the fabric is free and nothing was pushed.
    fabric = pg_app.list_fabrics()[0]
    assert pg_app.get_sync(str(fabric.last_sync_id)).state == "cancelled"
    assert pending_raw(repo) == ["gitops/raw/vpc-1.yaml"]
    # Once the workers run, the next fgd sync goes through.
    workers.start_all(ingestion=1)
    again = fgd_sync(workers, repo, "--json")
    assert again.returncode == 0, (again.stderr, workers.logs())
    assert pending_raw(repo) == []


def test_fgd_process_with_a_broker_hands_the_file_to_the_workers(
    tmp_path: Path, workers: Cluster, pg_app: FGDApplication
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/vpc-1.yaml": vpc("vpc-1", 1),
                     "gitops/raw/vpc-2.yaml": vpc("vpc-2", 2),
                     "gitops/raw/bad.yaml": BAD_VPC})
    pg_app.register_fabric("lab", str(repo))
    workers.start_all(ingestion=1)

    done = fgd(workers, "process", "1", "/gitops/raw/vpc-1.yaml", "-o", "json")
    assert_clean(done, workers)
    assert done.returncode == 0, (done.stdout, done.stderr, workers.logs())
    answer = json.loads(done.stdout)
    assert answer["success"] is True and answer["status"] == "processed"
    assert answer["file_path"] == "/gitops/raw/vpc-1.yaml"
    assert answer["files_created"] == ["/gitops/managed/vpcs/vpc-1.yaml"]
    assert answer["archived_to"] == "/gitops/raw/vpc-1.yaml.archived"
    # The workers ran it (discovery recorded it), restricted to that one file.
    sync = pg_app.get_sync(answer["sync_id"])
    assert sync.state == "completed" and sync.options["only_paths"] == ["gitops/raw/vpc-1.yaml"]
    assert list(sync.files) == ["gitops/raw/vpc-1.yaml"]
    assert pending_raw(repo) == ["gitops/raw/bad.yaml", "gitops/raw/vpc-2.yaml"]
    assert managed(repo) == ["gitops/managed/vpcs/vpc-1.yaml"]

    failed = fgd(workers, "process", "1", "/gitops/raw/bad.yaml", "-o", "json")
    assert failed.returncode == 3, (failed.stdout, failed.stderr)  # the file failed
    answer = json.loads(failed.stdout)
    assert answer["status"] == "failed" and answer["errors"][0]["code"] == "FGD_1003"
    assert pending_raw(repo) == ["gitops/raw/bad.yaml", "gitops/raw/vpc-2.yaml"]

    # A path that is not there: the error, and no sync started.
    last = pg_app.get_fabric(1).last_sync_id
    missing = fgd(workers, "process", "1", "/gitops/raw/nope.yaml")
    assert missing.returncode == 1, (missing.stdout, missing.stderr)
    assert "FGD_" in missing.stdout + missing.stderr
    assert pg_app.get_fabric(1).last_sync_id == last
