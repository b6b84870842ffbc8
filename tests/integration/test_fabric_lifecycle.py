"""A fabric's lifecycle over the real API, event store (SQLite and PostgreSQL), git
repositories and scheduler: registration starts a ``fabric_created`` sync (and the scheduler
adds no ``scheduled`` one), a suspended fabric starts nothing, a deleted fabric is gone from
every list while its history stays and its place can be registered again."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.application.replay import history
from fgd_core.config import SyncConfig
from fgd_workers.scheduler import Scheduler
from tests.gitserver import git, init_bare, seed_repo
from tests.resources import vpc

API = "/api/plugins/hedgehog"
FINAL = ("completed", "failed", "cancelled", "timed_out")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-1", 1)})
    return bare


def scheduler(container: Container) -> Scheduler:
    return Scheduler(container.app, SyncConfig(timeout_seconds=86_400, max_concurrent_syncs=10),
                     name=f"sched-{uuid.uuid4().hex[:8]}")


def wait_final(client: TestClient, headers: dict[str, str], sync_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get(f"{API}/sync-status/{sync_id}/", headers=headers).json()
        if status["state"] in FINAL:
            return status
        time.sleep(0.05)
    raise AssertionError(f"sync {sync_id} did not finish")


def head(bare: Path) -> str:
    return git("rev-parse", "refs/heads/main", cwd=bare).strip()


def register(client: TestClient, admin: dict[str, str], repo: Path, **settings: Any) -> Any:
    response = client.post(f"{API}/fabrics/", headers=admin,
                           json={"name": "lab", "repository": str(repo), **settings})
    assert response.status_code == 201, response.text
    return response.json()


def test_registration_starts_a_fabric_created_sync_and_the_scheduler_adds_none(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path
) -> None:
    before = head(repo)
    sched = scheduler(container)
    sched.tick()  # the scheduler knows the fleet before the registration
    body = register(client, admin, repo)
    first = body["initial_sync"]
    assert first["trigger"] == "fabric_created" and first["status"] == "started"
    assert first["tracking_url"] == f"{API}/sync-status/{first['sync_id']}/"
    assert body["sync_enabled"] is True

    report = sched.tick()  # while the first sync runs, and right after it
    assert report.started_for(body["id"]) == []
    status = wait_final(client, admin, first["sync_id"])
    assert status["state"] == "completed", status
    assert head(repo) != before  # it pushed the managed files
    assert sched.tick().started_for(body["id"]) == []
    assert sched.tick(datetime.now(UTC) + timedelta(minutes=30)).started_for(body["id"]) == []

    page = client.get(f"{API}/fabrics/{body['id']}/sync-history/", headers=admin).json()
    assert [(s["sync_id"], s["trigger"]) for s in page["results"]] == [
        (first["sync_id"], "fabric_created")]


def test_registered_suspended_nothing_syncs_until_resumed(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path
) -> None:
    before = head(repo)
    body = register(client, admin, repo, sync_enabled=False)
    fabric_id = body["id"]
    assert body["initial_sync"] is None and body["sync_enabled"] is False
    sched = scheduler(container)
    assert sched.tick().started_for(fabric_id) == []
    refused = client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", headers=admin, json={})
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "FGD_3004" and error["details"]["reason"] == "fabric_suspended"
    page = client.get(f"{API}/fabrics/{fabric_id}/sync-history/", headers=admin).json()
    assert page["count"] == 0 and head(repo) == before

    resumed = client.post(f"{API}/fabrics/{fabric_id}/resume/", headers=admin)
    assert resumed.status_code == 200 and resumed.json()["sync_enabled"] is True
    started = sched.tick().started_for(fabric_id)  # never synced: its first sync, at once
    assert [s["trigger"] for s in started] == ["fabric_created"]
    container.app.cancel_sync(started[0]["sync_id"])  # nobody runs it in this test

    suspended = client.post(f"{API}/fabrics/{fabric_id}/suspend/", headers=admin)
    assert suspended.status_code == 200 and suspended.json()["sync_enabled"] is False
    later = datetime.now(UTC) + timedelta(days=2)
    assert sched.tick(later).started_for(fabric_id) == []
    assert client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", headers=admin,
                       json={}).status_code == 409
    audit = client.get(f"{API}/audit-log/", headers=admin, params={"fabric_id": fabric_id})
    seen = {e["action"] for e in audit.json()["results"]}
    assert {"suspend_fabric", "resume_fabric"} <= seen


def test_delete_keeps_history_frees_the_place_and_leaves_the_repository(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path
) -> None:
    body = register(client, admin, repo)
    fabric_id, first = body["id"], body["initial_sync"]["sync_id"]
    wait_final(client, admin, first)
    pushed = head(repo)
    sched = scheduler(container)
    sched.tick()

    deleted = client.delete(f"{API}/fabrics/{fabric_id}/", headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"success": True, "message": f"Fabric {fabric_id} deleted",
                              "fabric_id": fabric_id, "cancelled_sync_id": None}
    gone = client.get(f"{API}/fabrics/{fabric_id}/", headers=admin)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "FGD_1003"
    listed = client.get(f"{API}/fabrics/", headers=admin).json()
    assert listed["count"] == 0 and listed["results"] == []
    for path, method in ((f"{API}/fabrics/{fabric_id}/gitops-sync/", "post"),
                         (f"{API}/fabrics/{fabric_id}/", "patch"),
                         (f"{API}/fabrics/{fabric_id}/suspend/", "post"),
                         (f"{API}/fabrics/{fabric_id}/", "delete")):
        answer = getattr(client, method)(path, headers=admin,
                                         **({} if method == "delete" else {"json": {}}))
        assert answer.status_code == 404, (path, method, answer.text)
    # Its history stays: the sync, the history page, the event log.
    assert client.get(f"{API}/sync-status/{first}/", headers=admin).json()["state"] == "completed"
    page = client.get(f"{API}/fabrics/{fabric_id}/sync-history/", headers=admin).json()
    assert [s["sync_id"] for s in page["results"]] == [first]
    types = [r.envelope["event_type"] for r in history(container.app, fabric_id=fabric_id)]
    assert "fabric.registered" in types and "sync.completed" in types
    assert types.index("fabric.deleted") > types.index("sync.completed")
    assert head(repo) == pushed  # the repository is untouched
    # The scheduler forgets it.
    assert sched.tick(datetime.now(UTC) + timedelta(days=2)).started_for(fabric_id) == []

    again = register(client, admin, repo)  # same name, repository, branch and directory
    assert again["id"] != fabric_id and again["initial_sync"]["sync_id"]
    wait_final(client, admin, again["initial_sync"]["sync_id"])
    assert client.get(f"{API}/fabrics/{fabric_id}/", headers=admin).status_code == 404
    audit = client.get(f"{API}/audit-log/", headers=admin, params={"fabric_id": fabric_id})
    assert "delete_fabric" in {e["action"] for e in audit.json()["results"]}


def test_delete_cancels_the_running_sync_first(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path
) -> None:
    # Registered through the library with its first sync recorded but run by no one: it
    # is still running when the fabric is deleted.
    fabric = container.app.register_fabric("lab", str(repo), initial_sync=True)
    running = fabric.running_sync_id
    assert running is not None and container.app.get_sync(running).trigger == "fabric_created"
    deleted = client.delete(f"{API}/fabrics/{fabric.fabric_id}/", headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["cancelled_sync_id"] == running
    status = client.get(f"{API}/sync-status/{running}/", headers=admin).json()
    assert status["state"] == "cancelled"
    envelopes = [r.envelope for r in history(container.app, fabric_id=fabric.fabric_id)]
    ended = [e["event_type"] for e in envelopes]
    assert ended.index("sync.cancelled") < ended.index("fabric.deleted")
    assert envelopes[ended.index("fabric.deleted")]["payload"] == {
        "name": "lab", "cancelled_sync_id": running}


def test_lifecycle_needs_configure_permission(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path
) -> None:
    fabric_id = register(client, admin, repo, sync_enabled=False)["id"]
    key, _ = create_token(container.app, "viewer", permissions=["view_fgd_sync"])
    viewer = {"Authorization": f"Token {key}"}
    for path, method in ((f"{API}/fabrics/{fabric_id}/", "delete"),
                         (f"{API}/fabrics/{fabric_id}/suspend/", "post"),
                         (f"{API}/fabrics/{fabric_id}/resume/", "post")):
        answer = getattr(client, method)(path, headers=viewer)
        assert answer.status_code == 403, answer.text
    assert client.get(f"{API}/fabrics/{fabric_id}/", headers=admin).status_code == 200


def test_deleted_ids_are_never_reused(container: Container, repo: Path) -> None:
    app = container.app
    one = app.register_fabric("one", str(repo))
    two = app.register_fabric("two", str(repo), branch="other")
    app.delete_fabric(two.fabric_id)
    three = app.register_fabric("two", str(repo), branch="other")  # name and place are free
    assert three.fabric_id == two.fabric_id + 1
    from fgd_core.errors import DuplicateError

    with pytest.raises(DuplicateError):
        app.register_fabric("four", str(repo), branch="b4", fabric_id=two.fabric_id)
    assert [f.fabric_id for f in app.list_fabrics()] == [one.fabric_id, three.fabric_id]
