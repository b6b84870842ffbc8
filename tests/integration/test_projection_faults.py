"""A projection can no longer stop silently (issue 10): an event the read model cannot apply,
on SQLite and PostgreSQL, makes health answer 503 naming it, counts it in a metric, shows in
``fgd projections status`` (exit 2), makes writes fail fast with the spec's error body — and
the documented ways out (``fgd projections skip``, a fix then ``rebuild``) clear it.

The poison is real, not patched in: a ``sync.started`` whose correlation id another sync
already has, stored the way versions before derived sync ids stored syncs (a random id) —
the read model's UNIQUE correlation_id refuses it, deterministically."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from click.testing import CliRunner
from eventsourcing.persistence import IntegrityError, OperationalError
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from fgd_api.container import Container
from fgd_api.projections import Projections
from fgd_api.projections import handlers as handlers_module
from fgd_api.projections.faults import POISON_AFTER, ProjectionStuckError, is_transient
from fgd_core.application.app import FGDApplication
from fgd_core.cli.projections import projections as projections_cli
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.domain.sync_options import normalize_options
from fgd_core.errors import DatabaseError
from tests.integration.test_api import (  # noqa: F401 — fixtures
    API,
    assert_error,
    make_fabric,
    repo,
)

POISON_METRIC = ("fgd_projection_poison_events_total", {"projection": "fgd_projections"})


def poisoned(metric: tuple[str, dict[str, str]] = POISON_METRIC) -> float:
    return REGISTRY.get_sample_value(*metric) or 0.0


def store_legacy_duplicate(app: FGDApplication, fabric_id: int, cid: str) -> int:
    """A second ``sync.started`` with ``cid`` at a random sync id (as stored before sync ids
    derived from correlation ids): the event store takes it, the read model cannot."""
    sync = SyncOperation._create(SyncOperation.Started, id=uuid4(), fabric_id=fabric_id,
                                 correlation_id=cid, trigger="manual",
                                 options=normalize_options(None))
    app.save(sync)
    return app.last_position()


@pytest.fixture
def cli_env(container: Container, database_url: str | None, tmp_path: Path,  # noqa: F811
            monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """``fgd projections …`` in this process, on the container's store."""
    monkeypatch.chdir(tmp_path)
    for name in ("HEDGEHOG_FGD_CONFIG", "HEDGEHOG_FGD_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    if database_url:
        monkeypatch.setenv("HEDGEHOG_FGD_DATABASE_URL", database_url)
    monkeypatch.setenv("HEDGEHOG_FGD_SQLITE_PATH", str(tmp_path / "fgd.sqlite3"))
    return CliRunner()


def health(client: TestClient) -> tuple[int, dict[str, Any]]:  # noqa: F811
    response = client.get(f"{API}/health/")
    return response.status_code, response.json()


def wait_health(client: TestClient, status: int, timeout: float = 15.0) -> dict[str, Any]:  # noqa: F811
    deadline = time.monotonic() + timeout
    while True:
        code, body = health(client)
        if code == status:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def test_a_poison_event_is_told_everywhere_and_skip_is_the_way_out(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path,  # noqa: F811
    cli_env: CliRunner,
) -> None:
    app = container.app
    fabric_id = make_fabric(client, admin, repo)
    first = app.start_sync(fabric_id, correlation_id="legacy")
    app.cancel_sync(first.sync_id)
    before = poisoned()
    position = store_legacy_duplicate(app, fabric_id, "legacy")

    body = wait_health(client, 503)
    check = body["checks"]["projections"]
    assert body["status"] == "degraded"
    assert (check["status"], check["projection"]) == ("stuck", "fgd_projections")
    assert (check["position"], check["event_type"]) == (position, "sync.started")
    assert "IntegrityError" in check["error"] or "UniqueViolation" in check["error"]
    assert check["attempts"] >= POISON_AFTER
    assert f"fgd projections skip {position}" in check["way_out"]
    assert poisoned() == before + 1

    status = cli_env.invoke(projections_cli, ["status"])
    assert status.exit_code == 2, status.output
    shown = json.loads(status.stdout)
    assert shown["stuck"]["position"] == position and shown["lag"] >= 1
    assert shown["stuck"]["event_type"] == "sync.started"

    started = time.monotonic()
    write = client.post(f"{API}/fabrics/", json={"name": "lab2", "repository": str(repo),
                                                  "gitops_directory": "lab2",
                                                  "sync_enabled": False},
                        headers=admin)
    assert time.monotonic() - started < 1.0
    error = assert_error(write, 503, "FGD_5001")
    assert error["details"]["stuck_position"] == position
    assert error["details"]["event_type"] == "sync.started"
    assert error["details"]["recorded"] is True and error["details"]["position"] > position
    assert f"fgd projections skip {position}" in error["message"]

    wrong = cli_env.invoke(projections_cli, ["skip", str(position + 1)])
    assert wrong.exit_code == 1 and "FGD_1003" in wrong.output
    skipped = cli_env.invoke(projections_cli, ["skip", str(position)])
    assert skipped.exit_code == 0, skipped.output
    assert json.loads(skipped.stdout)["skipped_event"] == {"position": position,
                                                          "event_type": "sync.started"}

    wait_health(client, 200)
    container.read_model.wait_for(app.recorder.max_notification_id(), timeout=10)
    assert container.read_model.lag() == 0
    assert client.get(f"{API}/fabrics/2/", headers=admin).status_code == 200  # the write
    again = client.post(f"{API}/fabrics/", json={"name": "lab3", "repository": str(repo),
                                                  "gitops_directory": "lab3",
                                                  "sync_enabled": False},
                        headers=admin)
    assert again.status_code == 201, again.text
    status = cli_env.invoke(projections_cli, ["status"])
    assert status.exit_code == 0, status.output
    shown = json.loads(status.stdout)
    assert shown["stuck"] is None
    assert [(s["position"], s["status"]) for s in shown["skipped"]] == [(position, "skipped")]

    # a rebuild passes over the skipped event again, and does not stop
    rebuilt = cli_env.invoke(projections_cli, ["rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["lag"] == 0
    assert client.get(f"{API}/sync-status/{first.sync_id}/", headers=admin).status_code == 200
    wait_health(client, 200)


@pytest.fixture
def projections(app: FGDApplication) -> Iterator[Projections]:
    read_model = Projections(app)
    yield read_model
    read_model.stop()


def test_a_bug_fixed_then_rebuild_is_the_other_way_out(
    app: FGDApplication, projections: Projections, monkeypatch: pytest.MonkeyPatch
) -> None:
    fabric_id = app.register_fabric("lab", "/srv/git/lab.git").fabric_id
    projections.catch_up()

    def bug(*_: Any) -> None:
        raise KeyError("a handler bug")

    original = handlers_module.HANDLERS["sync.started"]
    monkeypatch.setitem(handlers_module.HANDLERS, "sync.started", bug)
    sync_id = app.start_sync(fabric_id).sync_id
    position = app.last_position() - 1  # sync.started, then fabric.syncing
    for _ in range(POISON_AFTER - 1):
        with pytest.raises(KeyError):
            projections.catch_up()
    with pytest.raises(ProjectionStuckError) as stuck:
        projections.catch_up()
    assert stuck.value.details["stuck_position"] == position
    assert projections.fault()["event_type"] == "sync.started"  # type: ignore[index]
    started = time.monotonic()
    with pytest.raises(ProjectionStuckError) as waited:
        projections.wait_for(app.last_position(), timeout=5)
    assert time.monotonic() - started < 1.0
    assert waited.value.details["position"] == app.last_position()

    monkeypatch.setitem(handlers_module.HANDLERS, "sync.started", original)  # the fix
    projections.rebuild()
    assert projections.fault() is None and projections.lag() == 0
    assert projections.sync_status(sync_id)["state"] == "pending"
    assert projections.status()["skipped"] == []


def test_an_outage_is_retried_never_taken_for_poison() -> None:
    assert is_transient(psycopg.OperationalError("connection refused"))
    assert is_transient(OperationalError("database is locked"))
    assert is_transient(DatabaseError("event store unavailable"))
    assert not is_transient(IntegrityError("duplicate key"))
    assert not is_transient(psycopg.errors.UniqueViolation("duplicate key"))
    assert not is_transient(psycopg.DataError("PostgreSQL text fields cannot contain NUL"))
    assert not is_transient(KeyError("a handler bug"))


def test_a_database_outage_with_events_pending_never_becomes_a_fault(
    pg_schema: str, pg_app: FGDApplication
) -> None:
    from fgd_core.adapters.persistence import postgres_env
    from tests.tcpproxy import TCPProxy

    proxy = TCPProxy(("127.0.0.1", 5432)).start()
    url = f"postgresql://root@127.0.0.1:{proxy.port}/test?schema={pg_schema}"
    app = FGDApplication(env={**postgres_env(url), "POSTGRES_CONNECT_TIMEOUT": "1",
                              "POSTGRES_POOL_TIMEOUT": "1"})
    read_model = Projections(app)
    try:
        fabric_id = pg_app.register_fabric("lab", "/srv/git/lab.git").fabric_id
        pg_app.start_sync(fabric_id)
        proxy.stop()
        for _ in range(POISON_AFTER + 2):
            with pytest.raises(Exception) as outage:
                read_model.catch_up()
            assert is_transient(outage.value), repr(outage.value)
            assert not isinstance(outage.value, ProjectionStuckError)
        proxy.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                read_model.catch_up()
                break
            except Exception as exc:  # the pool may hand out a dead connection once
                assert is_transient(exc) and time.monotonic() < deadline, repr(exc)
                time.sleep(0.2)
        assert read_model.lag() == 0 and read_model.fault() is None
        assert read_model.status()["stuck"] is None
    finally:
        read_model.stop()
        app.close()
        proxy.stop()
