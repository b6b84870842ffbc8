"""The REST API over real HTTP (TestClient), real git repositories and the real event store
(SQLite and PostgreSQL): the spec's shapes and status codes, and the auth matrix."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.auth import create_token
from tests.gitserver import init_bare, seed_repo
from tests.resources import vpc as resource_vpc

API = "/api/plugins/hedgehog"
def vpc(n: int) -> bytes:
    return resource_vpc(f"vpc-{n}", n)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc(1) + b"---\n" + vpc(2)})
    return bare


def make_fabric(client: TestClient, admin: dict[str, str], repo: Path, name: str = "lab",
                **settings: Any) -> int:
    """A registered, enabled fabric whose repository no sync has touched yet: registered
    suspended (registration then starts no sync) and resumed, unless the test says
    otherwise. The first sync registration starts is tested in test_fabric_lifecycle."""
    resume = "sync_enabled" not in settings
    response = client.post(f"{API}/fabrics/",
                           json={"name": name, "repository": str(repo),
                                 **({"sync_enabled": False} if resume else {}), **settings},
                           headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["initial_sync"] is None
    fabric_id = int(response.json()["id"])
    if resume:
        resumed = client.post(f"{API}/fabrics/{fabric_id}/resume/", headers=admin)
        assert resumed.status_code == 200, resumed.text
    return fabric_id


def wait_final(client: TestClient, headers: dict[str, str], sync_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.get(f"{API}/sync-status/{sync_id}/", headers=headers).json()
        if status["state"] in ("completed", "failed", "cancelled", "timed_out"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"sync {sync_id} did not finish")


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert {"message", "details", "timestamp", "correlation_id"} <= set(error)
    return error


def test_trigger_status_history_as_the_spec_shows(
    client: TestClient, admin: dict[str, str], repo: Path
) -> None:
    fabric_id = make_fabric(client, admin, repo)
    response = client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", headers=admin, json={
        "trigger": "manual",
        "options": {"force_refresh": False, "validate_only": False, "include_github_sync": True},
    })
    assert response.status_code == 202
    started = response.json()
    assert set(started) == {"success", "sync_id", "status", "message", "tracking_url"}
    assert started["success"] is True and started["status"] == "started"
    assert started["tracking_url"] == f"{API}/sync-status/{started['sync_id']}/"

    # Read-your-writes: the status is there at once, never a 404.
    first = client.get(started["tracking_url"], headers=admin)
    assert first.status_code == 200 and first.json()["sync_id"] == started["sync_id"]

    status = wait_final(client, admin, started["sync_id"])
    assert status["state"] == "completed" and status["fabric_id"] == fabric_id
    progress = status["progress"]
    assert set(progress) == {"current_stage", "stages_completed", "stages_pending",
                             "files_processed", "total_files", "percent_complete"}
    assert progress["percent_complete"] == 100 and progress["stages_pending"] == []
    assert isinstance(status["started_at"], str) and status["started_at"].endswith("Z")
    # The VPCs name namespaces this Git does not hold: unchecked, one warning per kind.
    assert status["errors"] == []
    assert sorted(w["message"].split(" not checked")[0] for w in status["warnings"]) == [
        "documents 0, 1: references to IPv4Namespace",
        "documents 0, 1: references to VLANNamespace"]

    history = client.get(f"{API}/fabrics/{fabric_id}/sync-history/", headers=admin).json()
    assert history["count"] == 1 and history["next"] is None and history["previous"] is None
    item = history["results"][0]
    assert set(item) == {"sync_id", "trigger", "state", "started_at", "completed_at",
                         "duration_seconds", "files_processed", "errors", "warnings"}
    assert (item["state"], item["files_processed"], item["errors"]) == ("completed", 1, 0)

    fabric = client.get(f"{API}/fabrics/{fabric_id}/", headers=admin).json()
    assert fabric["last_sync_id"] == started["sync_id"]
    assert (fabric["total_sync_count"], fabric["successful_sync_count"]) == (1, 1)


def test_history_pagination_and_filters(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path
) -> None:
    fabric_id = make_fabric(client, admin, repo)
    for _ in range(3):
        sync = container.app.start_sync(fabric_id, "scheduled")
        container.app.cancel_sync(sync.sync_id)
    container.read_model.wait_for(container.app.last_position())  # written beside the API
    page = client.get(f"{API}/fabrics/{fabric_id}/sync-history/?limit=2", headers=admin).json()
    assert page["count"] == 3 and len(page["results"]) == 2
    assert page["next"].endswith("limit=2&offset=2") and page["previous"] is None
    last = client.get(page["next"], headers=admin).json()
    assert len(last["results"]) == 1 and last["next"] is None and last["previous"]
    none = client.get(f"{API}/fabrics/{fabric_id}/sync-history/?status=completed",
                      headers=admin).json()
    assert none["count"] == 0
    bad = client.get(f"{API}/fabrics/{fabric_id}/sync-history/?limit=0", headers=admin)
    assert_error(bad, 422, "FGD_1003")


def test_second_trigger_is_409_naming_the_running_sync(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path
) -> None:
    fabric_id = make_fabric(client, admin, repo)
    running = container.app.start_sync(fabric_id)  # not submitted: it stays running
    container.read_model.wait_for(container.app.last_position())
    response = client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", json={}, headers=admin)
    error = assert_error(response, 409, "FGD_3001")
    assert error["details"]["sync_id"] == running.sync_id

    cancelled = client.post(f"{API}/sync-status/{running.sync_id}/cancel/", headers=admin)
    assert cancelled.status_code == 200
    assert cancelled.json() == {"success": True, "message": "Sync operation cancelled",
                                "final_state": "cancelled"}
    again = client.post(f"{API}/sync-status/{running.sync_id}/cancel/", headers=admin)
    assert_error(again, 409, "FGD_3004")


@pytest.mark.parametrize("body", [
    {"trigger": "cron"},
    {"options": {"force_refresh": "yes"}},
    {"options": {"dry_run": True}},
    {"unexpected": 1},
])
def test_invalid_bodies_are_422_and_start_nothing(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path, body: dict
) -> None:
    fabric_id = make_fabric(client, admin, repo)
    response = client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", json=body, headers=admin)
    assert_error(response, 422, "FGD_1003")
    assert container.app.get_fabric(fabric_id).sync_ids == []


def test_unknown_fabric_and_sync_are_404(client: TestClient, admin: dict[str, str]) -> None:
    assert_error(client.get(f"{API}/fabrics/99/", headers=admin), 404, "FGD_1003")
    assert_error(client.post(f"{API}/fabrics/99/gitops-sync/", json={}, headers=admin),
                 404, "FGD_1003")
    assert_error(client.get(f"{API}/sync-status/550e8400-e29b-41d4-a716-446655440000/",
                            headers=admin), 404, "FGD_1003")
    assert_error(client.get(f"{API}/fabrics/99/sync-history/", headers=admin), 404, "FGD_1003")


def test_directory_and_files_endpoints(
    client: TestClient, admin: dict[str, str], repo: Path
) -> None:
    fabric_id = make_fabric(client, admin, repo)
    report = client.get(f"{API}/fabrics/{fabric_id}/gitops-directory/validate/", headers=admin)
    assert report.status_code == 200 and set(report.json()) == {"valid", "issues", "structure"}
    assert report.json()["structure"]["raw"] == {"exists": True, "file_count": 1,
                                                 "pending_files": 1}
    init = client.post(f"{API}/fabrics/{fabric_id}/gitops-directory/initialize/", headers=admin,
                       json={"force": False, "create_samples": False}).json()
    assert init["success"] and init["initialized"]
    repair = client.post(f"{API}/fabrics/{fabric_id}/gitops-directory/repair/", headers=admin,
                         json={"issues": ["invalid_permissions"], "auto_detect": True}).json()
    assert repair["success"] and set(repair) == {"success", "repairs_made", "remaining_issues"}

    files = client.get(f"{API}/fabrics/{fabric_id}/gitops-files/?directory=raw",
                       headers=admin).json()
    raw = next(f for f in files["files"] if f["path"] == "/gitops/raw/a.yaml")
    assert raw["resource_count"] == 2 and raw["valid"] is True
    assert {"total_files", "valid_files", "invalid_files", "total_resources"} == set(
        files["summary"])

    done = client.post(f"{API}/fabrics/{fabric_id}/gitops-files/process/", headers=admin,
                       json={"file_path": "/gitops/raw/a.yaml", "validate_only": False}).json()
    assert done["success"] and done["documents_found"] == done["documents_processed"] == 2
    assert done["files_created"] == ["/gitops/managed/vpcs/vpc-1.yaml",
                                     "/gitops/managed/vpcs/vpc-2.yaml"]
    assert done["archived_to"] == "/gitops/raw/a.yaml.archived"


def test_health_and_metrics_need_no_token(client: TestClient) -> None:
    health = client.get(f"{API}/health/")
    assert health.status_code == 200 and health.json()["checks"]["database"]["status"] == "ok"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "fgd_active_syncs" in metrics.text


def test_openapi_document_lists_every_spec_path(client: TestClient) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {
        f"{API}/fabrics/{{fabric_id}}/gitops-sync/",
        f"{API}/sync-status/{{sync_id}}/",
        f"{API}/sync-status/{{sync_id}}/cancel/",
        f"{API}/fabrics/{{fabric_id}}/sync-history/",
        f"{API}/fabrics/{{fabric_id}}/gitops-directory/validate/",
        f"{API}/fabrics/{{fabric_id}}/gitops-directory/initialize/",
        f"{API}/fabrics/{{fabric_id}}/gitops-directory/repair/",
        f"{API}/fabrics/{{fabric_id}}/gitops-files/",
        f"{API}/fabrics/{{fabric_id}}/gitops-files/process/",
    } <= paths


# -- the auth matrix ------------------------------------------------------------------------

ENDPOINTS = [
    ("post", "/fabrics/{fabric}/gitops-sync/", {"options": {"validate_only": True}},
     "trigger_fgd_sync"),
    ("get", "/sync-status/{sync}/", None, "view_fgd_sync"),
    ("post", "/sync-status/{sync}/cancel/", None, "cancel_fgd_sync"),
    ("get", "/fabrics/{fabric}/sync-history/", None, "view_fgd_history"),
    ("get", "/fabrics/{fabric}/gitops-directory/validate/", None, "view_fgd_sync"),
    ("post", "/fabrics/{fabric}/gitops-directory/initialize/", {"create_samples": False},
     "configure_fgd_sync"),
    ("post", "/fabrics/{fabric}/gitops-directory/repair/", {}, "repair_fgd_directory"),
    ("get", "/fabrics/{fabric}/gitops-files/", None, "view_fgd_sync"),
    ("post", "/fabrics/{fabric}/gitops-files/process/",
     {"file_path": "/gitops/raw/a.yaml", "validate_only": True}, "trigger_fgd_sync"),
    ("get", "/fabrics/{fabric}/", None, "view_fgd_sync"),
    ("patch", "/fabrics/{fabric}/", {"sync_interval_minutes": 30}, "configure_fgd_sync"),
]


@pytest.mark.parametrize("backend", ["sqlite"])  # the matrix is about HTTP, not storage
@pytest.mark.parametrize(("method", "path", "body", "permission"), ENDPOINTS,
                         ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS])
@pytest.mark.parametrize("who", ["none", "bad", "wrong_perm", "other_fabric", "right"])
def test_auth_matrix(
    client: TestClient, container: Container, admin: dict[str, str], tmp_path: Path,
    method: str, path: str, body: dict | None, permission: str, who: str,
) -> None:
    repo = init_bare(tmp_path / "m.git")
    seed_repo(repo, {"gitops/raw/a.yaml": vpc(1)})
    fabric_id = make_fabric(client, admin, repo)
    other_id = make_fabric(client, admin, repo, name="other", gitops_directory="other")
    sync = container.app.start_sync(fabric_id)  # a running sync to look at / cancel
    if path.endswith("gitops-sync/") or path.endswith("process/"):
        container.app.cancel_sync(sync.sync_id)  # the fabric must be free to start one
    container.read_model.wait_for(container.app.last_position())
    wrong = "view_fgd_history" if permission != "view_fgd_history" else "view_fgd_sync"
    keys = {
        "bad": "0" * 40,
        "wrong_perm": create_token(container.app, "w", permissions=[wrong])[0],
        "other_fabric": create_token(container.app, "o", permissions=[permission],
                                     fabrics=[other_id])[0],
        "right": create_token(container.app, "r", permissions=[permission],
                              fabrics=[fabric_id])[0],
    }
    headers = {"Authorization": f"Token {keys[who]}"} if who in keys else {}
    url = API + path.format(fabric=fabric_id, sync=sync.sync_id)
    response = client.request(method.upper(), url, json=body, headers=headers)
    expected = {"none": 401, "bad": 401, "wrong_perm": 403, "other_fabric": 403}.get(who)
    if expected:
        assert_error(response, expected, "FGD_1003")
    else:
        assert response.status_code < 300, response.text


def test_audit_log_records_mutations_and_denials_and_rebuilds_exactly(
    client: TestClient, container: Container, admin: dict[str, str], repo: Path
) -> None:
    fabric_id = make_fabric(client, admin, repo)
    viewer, _ = create_token(container.app, "viewer", permissions=["view_fgd_sync"])
    denied = client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", json={},
                         headers={"Authorization": f"Token {viewer}"})
    assert denied.status_code == 403
    client.patch(f"{API}/fabrics/{fabric_id}/", json={"sync_enabled": False}, headers=admin)

    log = client.get(f"{API}/audit-log/?fabric_id={fabric_id}", headers=admin).json()
    actions = [(e["action"], e["user"], e["success"]) for e in log["results"]]
    assert ("trigger_sync", "viewer", False) in actions
    assert ("update_fabric", "admin", True) in actions
    assert ("create_fabric", "admin", True) in actions
    assert all(e["ip_address"] and "user_agent" in e for e in log["results"])
    assert "Token" not in str(log)  # no key in any entry

    container.read_model.rebuild()
    again = client.get(f"{API}/audit-log/?fabric_id={fabric_id}", headers=admin).json()
    assert again == log
    forbidden = client.get(f"{API}/audit-log/", headers={"Authorization": f"Token {viewer}"})
    assert forbidden.status_code == 403


def test_fgd_serve_runs_scheduled_syncs_in_process(
    container: Container, repo: Path, tmp_path: Path
) -> None:
    """Embedded default: the API process also runs the scheduler, and its syncs."""
    fabric = container.app.register_fabric("lab", str(repo))  # never synced: due at once
    # (the library registered it without its first sync: the scheduler starts that one)
    with TestClient(create_app(container, embedded_scheduler=True)):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = container.app.get_fabric(fabric.fabric_id)
            if current.last_sync_status:
                break
            time.sleep(0.1)
    sync = container.app.get_sync(current.last_sync_id)
    assert (sync.trigger, sync.state) == ("fabric_created", "completed")
