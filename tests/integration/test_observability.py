"""One sync is one trace (request span linked, every stage span inside it); logs are JSON
lines carrying the correlation id."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fgd_core.adapters.observability import JsonFormatter, correlated, trace_id_for, traceparent
from fgd_core.application.app import FGDApplication
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.config import load_settings
from tests.gitserver import init_bare, seed_repo

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(tracer_provider)


def test_every_stage_span_is_in_the_syncs_trace(app: FGDApplication, tmp_path: Path) -> None:
    EXPORTER.clear()
    repo = init_bare(tmp_path / "r.git")
    seed_repo(repo, {"gitops/raw/README.md": b"x\n"})
    fabric = app.register_fabric("lab", str(repo))
    result = SyncRunner(app, load_settings(environ={}).fgd).run(
        fabric.fabric_id, correlation_id="corr-42")
    assert result.ok
    spans = [s for s in EXPORTER.get_finished_spans() if s.name.startswith("sync.")]
    assert [s.name for s in spans] == ["sync.validation", "sync.discovery",
                                       "sync.file_ingestion", "sync.github_sync",
                                       "sync.reconciliation"]
    assert {s.context.trace_id for s in spans} == {trace_id_for("corr-42")}
    assert all(s.attributes["fgd.sync_id"] == result.sync.sync_id for s in spans)
    header = traceparent("corr-42", "event-1")
    assert header.split("-")[1] == f"{trace_id_for('corr-42'):032x}"


def test_json_logs_carry_the_correlation_id() -> None:
    record = logging.makeLogRecord({"name": "fgd", "levelname": "INFO", "msg": "stage %s",
                                    "args": ("discovery",), "sync_id": "s-1"})
    with correlated("corr-7"):
        line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "stage discovery" and line["correlation_id"] == "corr-7"
    assert line["sync_id"] == "s-1" and line["level"] == "info"


def test_trigger_request_span_links_to_the_sync_trace(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fgd_api.app import create_app
    from fgd_api.container import Container
    from fgd_core.application.auth import create_token

    EXPORTER.clear()
    repo = init_bare(tmp_path / "r.git")
    seed_repo(repo, {"gitops/raw/README.md": b"x\n"})
    container = Container.build(load_settings(
        environ={"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "f.sqlite3"),
                 "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": str(tmp_path)}))
    key, _ = create_token(container.app, "admin", superuser=True)
    fabric = container.app.register_fabric("lab", str(repo))
    with TestClient(create_app(container)) as client:
        response = client.post(
            f"/api/plugins/hedgehog/fabrics/{fabric.fabric_id}/gitops-sync/", json={},
            headers={"Authorization": f"Token {key}", "X-Correlation-ID": "req-1"})
        assert response.status_code == 202
        assert response.headers["X-Correlation-ID"] == "req-1"
        container.executor.wait(response.json()["sync_id"], timeout=30)
    container.close()
    request_span = next(s for s in EXPORTER.get_finished_spans() if s.name.startswith("POST"))
    assert request_span.attributes["fgd.correlation_id"] == "req-1"
    assert [link.context.trace_id for link in request_span.links] == [trace_id_for("req-1")]
    stages = [s for s in EXPORTER.get_finished_spans() if s.name.startswith("sync.")]
    assert {s.context.trace_id for s in stages} == {trace_id_for("req-1")}


def test_distributed_steps_spans_share_the_syncs_trace(app: FGDApplication,
                                                       tmp_path: Path) -> None:
    """The steps the discovery, ingestion and GitHub workers run (here called in-process,
    each with its own SyncSteps as separate worker processes would have) put every span in
    the trace derived from the sync's correlation id."""
    from fgd_core.application.steps import DONE, SyncSteps

    EXPORTER.clear()
    repo = init_bare(tmp_path / "r.git")
    vpc = (b"apiVersion: vpc.githedgehog.com/v1beta1\nkind: VPC\nmetadata:\n  name: vpc-%d\n"
           b"spec:\n  subnets:\n    default:\n      subnet: 10.0.%d.0/24\n"
           b"      gateway: 10.0.%d.1\n      vlan: %d\n")
    seed_repo(repo, {f"gitops/raw/v{i}.yaml": vpc % (i, i, i, 1000 + i) for i in (1, 2)})
    fabric = app.register_fabric("lab", str(repo))
    config = load_settings(environ={}).fgd
    sync_id = app.start_sync(fabric.fabric_id, correlation_id="corr-steps").sync_id

    assert SyncSteps(app, config).discover(sync_id) == DONE
    files = app.get_sync(sync_id).files
    ingestion = SyncSteps(app, config)
    for path, record in sorted(files.items()):
        assert ingestion.ingest(sync_id, path, record["blob_id"]) == DONE
    assert SyncSteps(app, config).publish(sync_id) == DONE
    assert app.get_sync(sync_id).state == "completed"

    spans = [s for s in EXPORTER.get_finished_spans() if s.name.startswith("sync.")]
    assert [s.name for s in spans] == ["sync.validation", "sync.discovery",
                                       "sync.file_ingestion", "sync.file_ingestion",
                                       "sync.github_sync", "sync.reconciliation"]
    assert {s.context.trace_id for s in spans} == {trace_id_for("corr-steps")}
    assert all(s.attributes["fgd.sync_id"] == sync_id for s in spans)
    assert all(s.attributes["fgd.correlation_id"] == "corr-steps" for s in spans)
    assert [s.attributes["fgd.file_path"] for s in spans if s.name == "sync.file_ingestion"] \
        == sorted(files)
    assert len({s.context.span_id for s in spans}) == len(spans)
