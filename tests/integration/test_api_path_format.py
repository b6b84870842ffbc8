"""One path format at the API's edges: the spec's ``/gitops/raw/x.yaml``. The fields the API
derives from events (sync status errors and warnings, the read model's file records, the
progress WebSocket) use the same form as the files API and process-file, although the
events keep git's ``gitops/raw/x.yaml``. SQLite and PostgreSQL, real git repositories."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fgd_api.container import Container
from fgd_core.application import views
from fgd_core.application.auth import create_token
from tests.gitserver import init_bare, seed_repo
from tests.integration.test_progress_ws import receive_all, url
from tests.resources import vpc

API = "/api/plugins/hedgehog"
BAD = b"apiVersion: vpc.githedgehog.com/v1beta1\nkind: VPC\nmetadata:\n  name: Bad_Name\n"


def final_status(client: TestClient, headers: dict[str, str], sync_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(f"{API}/sync-status/{sync_id}/", headers=headers).json()
        if status.get("completed_at"):
            return status  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"sync {sync_id} did not finish")


def test_events_derived_fields_use_the_files_apis_path_form(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/good.yaml": vpc("vpc-1", 1), "gitops/raw/bad.yaml": BAD})
    fabric = container.app.register_fabric("lab", str(bare))
    key, _ = create_token(container.app, "admin", superuser=True)
    headers = {"Authorization": f"Token {key}"}
    files_api = client.get(f"{API}/fabrics/{fabric.fabric_id}/gitops-files/",
                           params={"directory": "raw"}, headers=headers).json()
    raw_paths = {f["path"] for f in files_api["files"]}
    assert raw_paths == {"/gitops/raw/good.yaml", "/gitops/raw/bad.yaml"}

    answer = client.post(f"{API}/fabrics/{fabric.fabric_id}/gitops-sync/", headers=headers,
                         json={})
    assert answer.status_code == 202, answer.text
    sync_id = answer.json()["sync_id"]
    status = final_status(client, headers, sync_id)
    named = [e["file"] for e in status["errors"] if "file" in e]
    named += [w["file"] for w in status["warnings"] if "file" in w]
    assert "/gitops/raw/bad.yaml" in named and set(named) <= raw_paths

    with client.websocket_connect(url(sync_id, token=key)) as ws:
        messages, _ = receive_all(ws)
    shown = {m["data"]["event"]["file_path"] for m in messages if "file_path" in
             m["data"]["event"]}
    assert shown == raw_paths
    current = {m["data"]["current_file"] for m in messages} - {None}
    assert current and current <= raw_paths
    failed = [m for m in messages if m["data"]["event"].get("status") == "failed"]
    assert all(e.get("file", "/")[0] == "/" for m in failed for e in m["data"]["event"]["errors"])

    container.read_model.wait_for(container.app.recorder.max_notification_id(), timeout=30)
    records = container.read_model.file_records(sync_id)
    assert records == views.file_records(container.app.get_sync(sync_id))
    assert {r["file_path"] for r in records} == raw_paths
    [good] = [r for r in records if r["status"] == "processed"]
    assert good["archived_to"] == "/gitops/raw/good.yaml.archived"
    assert good["target_files"] == ["/gitops/managed/vpcs/vpc-1.yaml"]
    managed = client.get(f"{API}/fabrics/{fabric.fabric_id}/gitops-files/",
                         params={"directory": "managed"}, headers=headers).json()
    assert set(good["target_files"]) <= {f["path"] for f in managed["files"]}
    # …and the events themselves keep git's form.
    stored = [e for e in container.app.recorder.select_events(container.app.get_sync(sync_id).id)
              if b'"file.processed"' in e.state]
    assert stored and b'"file_path":"gitops/raw/good.yaml"' in stored[0].state
