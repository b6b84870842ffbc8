"""One sync, two drivers: every ingestion fixture through the in-process driver and through
the bus workers (separate OS processes on PostgreSQL and RabbitMQ) must give the same events
(ids, times and commit ids aside) and the same managed/ and raw/ trees.

The fixtures are batched into four repositories — the real Hedgehog samples, the spec-format
ingestion fixtures, the Hedgehog verdict cases and the hostile corpus — so that the test
runs four syncs per driver, not one per fixture. Both drivers see the same bytes: each
repository is copied before either syncs it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fgd_core.adapters.persistence import sqlite_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.pipeline_local import DRIVER_ENV, LocalSyncDriver
from fgd_core.application.replay import history
from fgd_core.config import load_settings
from tests.gitserver import git, init_bare, seed_repo
from tests.hedgehog_samples import case_document, load_cases
from tests.integration.test_workers import Cluster, wait_final
from tests.paths import FIXTURES_DIR, HEDGEHOG_FIXTURES
from tests.unit.test_ingest_hostile import GOOD, HOSTILE

# Payload keys that name an id, a time or a commit: they differ between any two runs.
UNSTABLE = {"sync_id", "fabric_id", "event_id", "correlation_id", "causation_id", "timestamp",
            "processing_time", "duration_seconds", "head", "commit", "actual_sha",
            "expected_sha", "started_at", "completed_at", "discovered_at", "processed_at"}


def _hedgehog_samples() -> dict[str, bytes]:
    return {f"gitops/raw/{p.name}": p.read_bytes() for p in HEDGEHOG_FIXTURES.glob("*.yaml")}


def _ingestion_fixtures() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted((FIXTURES_DIR / "ingestion").glob("*.json")):
        fixture = json.loads(path.read_text(encoding="utf-8"))
        name = fixture["input"]["file_path"].rsplit("/", 1)[-1]
        files[f"gitops/raw/{path.stem}-{name}"] = fixture["input"]["content"].encode()
    return files


def _verdict_cases() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name, case in load_cases():
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80]
        files[f"gitops/raw/{slug}.yaml"] = yaml.safe_dump(case_document(case)).encode()
    return files


def _hostile_corpus() -> dict[str, bytes]:
    files = {f"gitops/raw/{name}.yaml": content for name, (content, _, _) in HOSTILE.items()}
    return {**files, "gitops/raw/good.yaml": GOOD}


CORPORA = {"hedgehog": _hedgehog_samples, "ingestion": _ingestion_fixtures,
           "cases": _verdict_cases, "hostile": _hostile_corpus}


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stable(v) for k, v in sorted(value.items()) if k not in UNSTABLE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def events(app: FGDApplication, sync_id: str) -> list[tuple[str, str]]:
    return [(r.event_type, json.dumps(stable(r.envelope["payload"]), sort_keys=True))
            for r in history(app, sync_id=sync_id)]


def trees(bare: Path) -> str:
    return git("ls-tree", "-r", "main", "gitops/managed", "gitops/raw", cwd=bare)


@pytest.fixture
def repos(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """Corpus → (its repository for the in-process driver, a copy for the bus driver)."""
    out = {}
    for name, files in CORPORA.items():
        local = init_bare(tmp_path / f"{name}-local.git")
        seed_repo(local, files())
        bus = tmp_path / f"{name}-bus.git"
        shutil.copytree(local, bus)
        out[name] = (local, bus)
    return out


@pytest.fixture
def local_app(tmp_path: Path) -> Iterator[FGDApplication]:
    # With the in-process driver's settings (its aggregate cache): the events must not change.
    application = FGDApplication(env={**sqlite_env(tmp_path / "local.sqlite3"), **DRIVER_ENV})
    yield application
    application.close()


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, pg_url)
    yield c
    c.close()


def test_every_fixture_gives_the_same_events_and_trees_in_both_drivers(
    pg_app: FGDApplication, local_app: FGDApplication, cluster: Cluster,
    repos: dict[str, tuple[Path, Path]],
) -> None:
    config = load_settings(environ={}).fgd
    driver = LocalSyncDriver(local_app, config)
    local: dict[str, str] = {}
    for name, (repo, _) in repos.items():
        result = driver.run(local_app.register_fabric(name, str(repo)).fabric_id)
        assert result.ok, (name, result.sync.errors)
        local[name] = result.sync.sync_id

    cluster.start_all(ingestion=2)
    bus = {name: pg_app.start_sync(pg_app.register_fabric(name, str(copy)).fabric_id).sync_id
           for name, (_, copy) in repos.items()}
    for name, sync_id in bus.items():
        assert wait_final(pg_app, sync_id, cluster, timeout=120).state == "completed", name

    for name, (repo, copy) in repos.items():
        mine, theirs = events(local_app, local[name]), events(pg_app, bus[name])
        # Files are recorded in the order the workers finish them: the same events, and
        # the same stages in the same order.
        assert sorted(mine) == sorted(theirs), name
        assert [e for e in mine if not e[0].startswith(("file.", "sync.warning"))] == [
            e for e in theirs if not e[0].startswith(("file.", "sync.warning"))], name
        assert trees(repo) == trees(copy), name
    # The drivers agree on something worth comparing: every corpus writes or refuses files,
    # the hostile corpus refuses every hostile file, and cross-file checks reject in both.
    kinds = {t for name in repos for t, _ in events(local_app, local[name])}
    assert {"file.processed", "file.failed", "file.rejected"} <= kinds
    hostile = local_app.get_sync(local["hostile"]).files
    assert {p for p, f in hostile.items() if f["status"] == "processed"} == {
        "gitops/raw/good.yaml"}
