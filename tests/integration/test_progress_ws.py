"""The sync-progress WebSocket with a real client (TestClient), a real sync run by the
embedded executor against a git repository served over smart HTTP, and real tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.domain.fabric import Fabric
from tests.gitserver import GitHTTPServer, init_bare, seed_repo
from tests.integration.test_webhooks import build_container, vpc, wait_final

SPEC_KEYS = {"state", "stage", "progress", "current_file", "files_processed", "total_files"}
SPEC_TYPES = {"sync.started", "sync.progress", "sync.stage_completed", "sync.file_processed",
              "sync.error", "sync.warning", "sync.completed", "sync.failed"}


def url(sync_id: str, token: str | None = None) -> str:
    path = f"/ws/plugins/hedgehog/sync-progress/{sync_id}/"
    return f"{path}?token={token}" if token else path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHTTPServer]:
    with GitHTTPServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def container(tmp_path: Path, server: GitHTTPServer) -> Iterator[Container]:
    c = build_container(tmp_path, allowed=server.url())  # the policy allows the test server
    yield c
    c.close()


@pytest.fixture
def fabric(server: GitHTTPServer, container: Container) -> Fabric:
    bare = init_bare(server.root / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-a", 1) + b"---\n" + vpc("vpc-b", 2),
                     "gitops/raw/b.yaml": vpc("vpc-c", 3),
                     "gitops/raw/bad.yaml": b"apiVersion: v1\nkind: Nope\n"})
    return container.app.register_fabric("lab", server.url("fabric.git"))


@pytest.fixture
def viewer(container: Container, fabric: Fabric) -> str:
    key, _ = create_token(container.app, "viewer", permissions=["view_fgd_sync"],
                          fabrics=[fabric.fabric_id])
    return key


def receive_all(ws: Any) -> tuple[list[dict[str, Any]], int]:
    """Every message until the server closes; (messages, close code)."""
    messages = []
    while True:
        try:
            messages.append(ws.receive_json())
        except WebSocketDisconnect as closed:
            return messages, closed.code


def closed_with(client: TestClient, path: str, headers: dict[str, str] | None = None) -> int:
    with client.websocket_connect(path, headers=dict(headers or {})) as ws:
        messages, code = receive_all(ws)
    assert messages == []
    return code


def test_live_subscriber_gets_sync_started_then_every_event_up_to_completed(
    client: TestClient, container: Container, fabric: Fabric, viewer: str
) -> None:
    sync = container.app.start_sync(fabric.fabric_id)  # pending until the executor runs it
    headers = {"Authorization": f"Token {viewer}"}
    with client.websocket_connect(url(sync.sync_id), headers=headers) as ws:
        started = ws.receive_json()
        assert started["type"] == "sync.started" and started["sync_id"] == sync.sync_id
        assert set(started["data"]) >= SPEC_KEYS
        assert started["data"]["state"] == "pending"
        assert started["data"]["event"]["trigger"] == "manual"
        container.executor.submit(sync.sync_id)
        messages, code = receive_all(ws)

    assert code == 1000
    types = [m["type"] for m in messages]
    assert set(types) <= SPEC_TYPES
    assert types[-1] == "sync.completed"
    assert types.count("sync.completed") == 1
    assert "sync.stage_completed" in types
    files = {m["data"]["event"]["file_path"]: m["data"]["event"]["status"] for m in messages
             if m["type"] == "sync.file_processed"}
    assert files == {"/gitops/raw/a.yaml": "success", "/gitops/raw/b.yaml": "success",
                     "/gitops/raw/bad.yaml": "failed"}
    stages = [m["data"]["event"]["stage"] for m in messages
              if m["type"] == "sync.stage_completed"]
    assert stages == ["validation", "discovery", "file_ingestion", "github_sync",
                      "reconciliation"]
    for message in messages:
        assert message["sync_id"] == sync.sync_id and set(message["data"]) >= SPEC_KEYS
    versions = [m["data"]["version"] for m in messages]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    final = messages[-1]["data"]
    assert final["state"] == "completed" and final["progress"] == 100
    assert final["files_processed"] == final["total_files"] == 3 and final["errors"] == 1
    assert final["event"]["final_state"] == "completed"


def test_late_subscriber_gets_the_whole_sync_replayed(
    client: TestClient, container: Container, fabric: Fabric, viewer: str
) -> None:
    sync = container.app.start_sync(fabric.fabric_id)
    container.executor.submit(sync.sync_id)
    assert wait_final(container, sync.sync_id) == "completed"
    with client.websocket_connect(url(sync.sync_id, token=viewer)) as ws:  # browser style
        messages, code = receive_all(ws)
    assert code == 1000
    types = [m["type"] for m in messages]
    assert types[0] == "sync.started" and types[-1] == "sync.completed"
    assert types.count("sync.file_processed") == 3 and types.count("sync.stage_completed") == 5
    first, final = messages[0], messages[-1]
    assert first["data"]["state"] == "pending" and first["data"]["version"] == 1
    assert final["data"]["files_processed"] == final["data"]["total_files"] == 3
    assert final["data"]["event"]["event_type"] == "sync.completed"


def test_a_cancelled_sync_ends_with_sync_failed_carrying_the_final_state(
    client: TestClient, container: Container, fabric: Fabric, viewer: str
) -> None:
    sync = container.app.start_sync(fabric.fabric_id)
    headers = {"Authorization": f"Token {viewer}"}
    with client.websocket_connect(url(sync.sync_id), headers=headers) as ws:
        assert ws.receive_json()["data"]["state"] == "pending"
        container.app.cancel_sync(sync.sync_id, "operator stop")
        messages, code = receive_all(ws)
    assert code == 1000
    [ended] = [m for m in messages if m["data"]["event"]["event_type"] != "sync.progress"]
    assert ended["type"] == "sync.failed" and ended["data"]["state"] == "cancelled"
    assert ended["data"]["event"]["event_type"] == "sync.cancelled"
    assert ended["data"]["event"]["reason"] == "operator stop"


def test_the_client_may_leave_at_any_time(
    client: TestClient, container: Container, fabric: Fabric, viewer: str
) -> None:
    sync = container.app.start_sync(fabric.fabric_id)
    with client.websocket_connect(url(sync.sync_id, token=viewer)) as ws:
        assert ws.receive_json()["type"] == "sync.started"
    # the server noticed and stopped polling: a new subscriber is served as before
    with client.websocket_connect(url(sync.sync_id, token=viewer)) as ws:
        assert ws.receive_json()["data"]["state"] == "pending"
    container.app.cancel_sync(sync.sync_id)


def test_no_or_invalid_token_closes_4401(
    client: TestClient, container: Container, fabric: Fabric
) -> None:
    sync = container.app.start_sync(fabric.fabric_id)
    assert closed_with(client, url(sync.sync_id)) == 4401
    assert closed_with(client, url(sync.sync_id, token="0" * 40)) == 4401
    assert closed_with(client, url(sync.sync_id), {"Authorization": "Token nope"}) == 4401
    container.app.cancel_sync(sync.sync_id)


def test_permission_on_another_fabric_closes_4403(
    client: TestClient, container: Container, fabric: Fabric
) -> None:
    sync = container.app.start_sync(fabric.fabric_id)
    other, _ = create_token(container.app, "other", permissions=["view_fgd_sync"],
                            fabrics=[fabric.fabric_id + 1])
    no_perm, _ = create_token(container.app, "history", permissions=["view_fgd_history"])
    assert closed_with(client, url(sync.sync_id, token=other)) == 4403
    assert closed_with(client, url(sync.sync_id), {"Authorization": f"Token {no_perm}"}) == 4403
    container.app.cancel_sync(sync.sync_id)


def test_unknown_sync_closes_4404(client: TestClient, viewer: str) -> None:
    assert closed_with(client, url(str(uuid4()), token=viewer)) == 4404
    assert closed_with(client, url("not-a-uuid", token=viewer)) == 4404
