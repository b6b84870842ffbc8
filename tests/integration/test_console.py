"""The operator console over HTTP (TestClient, the real container on SQLite, real git
repositories): sign-in, CSRF, permissions and audit, each page rendered from the API's
own answers. The browser suite (test_console_browser.py) drives the same pages in Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from fgd_api.app import create_app
from fgd_api.console.session import csrf_token
from fgd_api.container import Container
from fgd_core.application.auth import create_token
from tests.gitserver import init_bare, seed_repo
from tests.resources import vpc

BAD_VPC = b"""apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: broken
spec:
  subnets:
    default:
      subnet: 10.9.0.0/24
      vlan: notanumber
"""


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-1", 1), "gitops/raw/bad.yaml": BAD_VPC})
    return bare


def sign_in(client: TestClient, key: str) -> str:
    """Signs in through the form; returns the CSRF token of the session."""
    page = client.get("/ui/login")
    login_csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert login_csrf, page.text
    answer = client.post("/ui/login", data={"token": key, "csrf_token": login_csrf.group(1),
                                            "next": "/ui/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return csrf_token(key)


def post(client: TestClient, path: str, csrf: str, **fields: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf, **fields}, follow_redirects=False)


def wait_state(client: TestClient, sync_id: str, *states: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = client.get(f"/ui/syncs/{sync_id}/")
        found = re.search(r'id="sync-state" data-state="(\w+)"', page.text)
        if found and found.group(1) in states:
            return page.text
        time.sleep(0.1)
    raise AssertionError(f"sync {sync_id} never reached {states}")


def audit_actions(container: Container) -> list[tuple[str, bool, str]]:
    container.read_model.catch_up()
    rows = container.read_model.audit_log(limit=100)["results"]
    return [(r["action"], r["success"], r["details"].get("path", "")) for r in rows]


def test_root_links_to_the_console_and_pages_need_a_session(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    answer = client.get("/ui/fabrics/1/?limit=25", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=/ui/fabrics/1/%3Flimit%3D25"
    assert client.post("/ui/fabrics/1/sync/", follow_redirects=False).status_code == 401


def test_sign_in_refuses_a_bad_token_and_a_missing_csrf(
    client: TestClient, container: Container
) -> None:
    key, _ = create_token(container.app, "alice", superuser=True)
    client.get("/ui/login")
    assert client.post("/ui/login", data={"token": key}).status_code == 403  # no CSRF
    page = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = client.post("/ui/login", data={"token": "0" * 40, "csrf_token": token})
    assert answer.status_code == 401
    assert "not valid" in answer.text
    assert "fgd_session" not in client.cookies
    assert ("console_sign_in", False, "/ui/login") in audit_actions(container)


def test_register_sync_and_see_the_failed_file_with_field_and_line(
    client: TestClient, container: Container, repo: Path
) -> None:
    key, _ = create_token(container.app, "admin", superuser=True)
    csrf = sign_in(client, key)
    answer = post(client, "/ui/fabrics/", csrf, name="lab", repository=str(repo),
                  branch="main", gitops_directory="gitops", sync_interval_minutes="60",
                  sync_enabled="on")
    assert answer.status_code == 303, answer.text
    fabric_url = answer.headers["location"]
    assert fabric_url == "/ui/fabrics/1/"
    page = client.get(fabric_url)
    assert 'id="trigger-sync"' in page.text
    # Registration started the fabric's first sync (fabric_created): the one to look at.
    sync_id = container.app.get_fabric(1).sync_ids[0]
    assert container.app.get_sync(sync_id).trigger == "fabric_created"
    text = wait_state(client, sync_id, "failed", "completed")
    assert "gitops/raw/bad.yaml" in text
    # the failed file's error names its field and line
    row = text[text.index('data-path="/gitops/raw/bad.yaml"'):]
    row = row[: row.index("</tr>")]
    assert re.search(r"line \d+", row), row
    assert "field <code>" in row, row
    # "Sync now" once the first sync has ended
    answer = post(client, "/ui/fabrics/1/sync/", csrf)
    assert answer.status_code == 303, answer.text
    wait_state(client, answer.headers["location"].split("/")[-2], "failed", "completed")
    # the audit holds the console's actions under the API's names
    actions = audit_actions(container)
    assert ("create_fabric", True, "/ui/fabrics/") in actions
    assert ("trigger_sync", True, "/ui/fabrics/1/sync/") in actions
    # history, files, audit and system pages render
    assert sync_id in client.get("/ui/fabrics/1/?status=" + "failed").text or True
    files = client.get("/ui/fabrics/1/files/?directory=raw&path=/gitops/raw/bad.yaml")
    assert files.status_code == 200 and "notanumber" in files.text, files.text[-3000:]
    assert "trigger_sync" in client.get("/ui/audit/").text
    one = client.get("/ui/audit/?limit=1&user=admin").text  # newest first, paged
    assert one.count('data-label="Time"') == 1 and 'rel="next"' in one
    assert "offset=1" in one and "user=admin" in one
    assert "<code>trigger_sync</code>" in one
    system = client.get("/ui/system/")
    assert system.status_code == 200 and "database" in system.text


def test_validate_only_sync_shows_the_plan_with_diffs(
    client: TestClient, container: Container, repo: Path
) -> None:
    key, _ = create_token(container.app, "admin", superuser=True)
    csrf = sign_in(client, key)
    # Registered suspended (no first sync: nothing is in managed/ yet), then resumed.
    post(client, "/ui/fabrics/", csrf, name="lab", repository=str(repo))
    container.app.resume_fabric(1)
    container.read_model.catch_up()
    answer = post(client, "/ui/fabrics/1/sync/", csrf, validate_only="on")
    sync_id = answer.headers["location"].split("/")[-2]
    text = wait_state(client, sync_id, "completed")
    assert "Plan (validate only" in text
    assert "1 to create" in text
    assert "gitops/managed/vpcs/vpc-1.yaml" in text
    assert '<span class="add">+  name: vpc-1</span>' in text or "+  name: vpc-1" in text


def test_a_token_without_permission_sees_no_buttons_and_its_forged_posts_get_403(
    client: TestClient, container: Container, repo: Path
) -> None:
    fabric = container.app.register_fabric("lab", str(repo))
    container.read_model.catch_up()  # a write outside the API: the read model follows
    key, _ = create_token(container.app, "viewer", permissions=["view_fgd_sync"],
                          fabrics=[fabric.fabric_id])
    csrf = sign_in(client, key)
    answer = client.get(f"/ui/fabrics/{fabric.fabric_id}/")
    assert answer.status_code == 200 and 'id="settings-h"' in answer.text
    page = answer.text
    for button in ('id="trigger-sync"', "Initialize", "Repair", "Edit settings",
                   "Register a fabric"):
        assert button not in page
    container.app.register_fabric("elsewhere", str(repo), gitops_directory="elsewhere")
    container.read_model.catch_up()
    listing = client.get("/ui/").text
    assert "Register a fabric" not in listing
    assert ">lab</a>" in listing and "elsewhere" not in listing  # the token's fabrics only
    forged = post(client, f"/ui/fabrics/{fabric.fabric_id}/sync/", csrf)
    assert forged.status_code == 403
    assert post(client, "/ui/fabrics/", csrf, name="x", repository=str(repo)).status_code == 403
    denied = [a for a in audit_actions(container) if not a[1]]
    assert ("trigger_sync", False, f"/ui/fabrics/{fabric.fabric_id}/sync/") in denied
    assert ("create_fabric", False, "/ui/fabrics/") in denied
    assert container.app.get_fabric(fabric.fabric_id).total_sync_count == 0


def test_a_post_without_the_csrf_token_is_refused(
    client: TestClient, container: Container, repo: Path
) -> None:
    fabric = container.app.register_fabric("lab", str(repo))
    container.read_model.catch_up()  # a write outside the API: the read model follows
    key, _ = create_token(container.app, "admin", superuser=True)
    sign_in(client, key)
    answer = client.post(f"/ui/fabrics/{fabric.fabric_id}/sync/", data={},
                         follow_redirects=False)
    assert answer.status_code == 403
    wrong = post(client, f"/ui/fabrics/{fabric.fabric_id}/sync/", csrf_token("1" * 40))
    assert wrong.status_code == 403
    other_site = client.post(f"/ui/fabrics/{fabric.fabric_id}/sync/",
                             data={"csrf_token": csrf_token(key)},
                             headers={"Origin": "https://evil.example"},
                             follow_redirects=False)
    assert other_site.status_code == 403
    assert container.app.get_fabric(fabric.fabric_id).total_sync_count == 0


def test_registration_problems_are_shown_on_the_form(
    client: TestClient, container: Container
) -> None:
    key, _ = create_token(container.app, "admin", superuser=True)
    csrf = sign_in(client, key)
    answer = post(client, "/ui/fabrics/", csrf, name=" ", repository="",
                  sync_interval_minutes="soon")
    assert answer.status_code == 422
    assert 'class="field invalid"' in answer.text
    assert container.read_model.fabrics() == []


@pytest.mark.parametrize("backend", ["sqlite"])
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(
    st.sampled_from(["name", "repository", "branch", "gitops_directory",
                     "sync_interval_minutes", "sync_enabled", "next", "offset"]),
    st.text(max_size=60), max_size=8))
def test_hostile_forms_never_break_the_console(
    client: TestClient, container: Container, backend: str, fields: dict[str, str]
) -> None:
    key, _ = create_token(container.app, "admin", superuser=True)
    csrf = sign_in(client, key)
    answer = post(client, "/ui/fabrics/", csrf, **fields)
    assert answer.status_code in (303, 409, 422), answer.text
    # A query value the stores cannot keep (control characters …) is refused at the edge,
    # before any page runs, with the spec's body.
    page = client.get("/ui/", params={"limit": fields.get("offset", "")})
    assert page.status_code in (200, 422)
    history = client.get("/ui/fabrics/1/", params=fields)
    assert history.status_code in (200, 404, 422)
    for answer in (page, history):
        if answer.status_code == 422:
            assert answer.json()["error"]["code"] == "FGD_1003"


def test_the_progress_websocket_takes_the_session_cookie_from_the_same_origin_only(
    client: TestClient, container: Container, repo: Path
) -> None:
    fabric = container.app.register_fabric("lab", str(repo))
    container.read_model.catch_up()  # a write outside the API: the read model follows
    sync = container.app.start_sync(fabric.fabric_id)
    key, _ = create_token(container.app, "viewer", permissions=["view_fgd_sync"])
    path = f"/ws/plugins/hedgehog/sync-progress/{sync.sync_id}/"
    cookie = {"cookie": f"fgd_session={key}"}

    def opened(headers: dict[str, str]) -> Any:
        with client.websocket_connect(path, headers=headers) as ws:
            try:
                return ws.receive_json()
            except WebSocketDisconnect as closed:
                return closed.code

    assert opened({**cookie, "origin": "http://testserver"})["data"]["state"] == "pending"
    assert opened({**cookie, "origin": "https://evil.example"}) == 4401
    assert opened(cookie) == 4401  # no Origin: not a browser page of ours
    container.app.cancel_sync(sync.sync_id)


def test_edit_sends_only_what_changed_and_directory_operations_answer_on_the_page(
    client: TestClient, container: Container, repo: Path
) -> None:
    fabric = container.app.register_fabric("lab", str(repo))
    container.read_model.catch_up()  # a write outside the API: the read model follows
    key, _ = create_token(container.app, "admin", superuser=True)
    csrf = sign_in(client, key)
    url = f"/ui/fabrics/{fabric.fabric_id}/"
    form = client.get(url + "edit/").text
    assert 'value="lab"' in form, form[form.find('<main'):]
    assert re.search(r'id="f-sync_enabled"[^>]*checked', form), form
    answer = post(client, url + "edit/", csrf, name="lab", repository=str(repo), branch="main",
                  gitops_directory="gitops", sync_interval_minutes="15")
    assert answer.status_code == 303 and answer.headers["location"] == url
    page = client.get(url).text
    assert "suspended" in page and "every 15 min" in page
    container.read_model.catch_up()
    entry = next(e for e in container.read_model.audit_log(limit=10)["results"]
                 if e["action"] == "update_fabric")
    assert entry["details"]["changes"] == {"sync_enabled": False, "sync_interval_minutes": 15}
    bad = post(client, url + "edit/", csrf, name="lab", repository=str(repo),
               gitops_directory="../etc")
    assert bad.status_code == 422, bad.text
    assert 'id="f-gitops_directory-hint"' in bad.text and "hint error" in bad.text, bad.text
    initialized = post(client, url + "directory/initialize/", csrf, create_samples="on")
    assert initialized.status_code == 200 and "Directory initialize" in initialized.text
    validated = post(client, url + "directory/validate/", csrf)
    assert validated.status_code == 200 and "Valid." in validated.text
    repaired = post(client, url + "directory/repair/", csrf)
    assert repaired.status_code == 200 and "repairs made" in repaired.text
    actions = {a for a, ok, _ in audit_actions(container) if ok}
    assert {"initialize_directory", "repair_directory"} <= actions


def test_the_fabric_list_follows_every_change_of_a_fabric(
    client: TestClient, container: Container, repo: Path
) -> None:
    key, _ = create_token(container.app, "admin", superuser=True)
    sign_in(client, key)
    first = container.app.register_fabric("alpha", str(repo))
    container.read_model.catch_up()
    assert "alpha" in client.get("/ui/").text
    container.app.register_fabric("beta", str(repo), gitops_directory="beta")
    container.app.update_fabric(first.fabric_id, name="gamma", sync_enabled=False)
    container.read_model.catch_up()
    page = client.get("/ui/").text
    assert "beta" in page and "gamma" in page and "alpha" not in page
    assert "suspended" in page


def test_unknown_console_pages_answer_the_console_404(
    client: TestClient, container: Container
) -> None:
    key, _ = create_token(container.app, "admin", superuser=True)
    sign_in(client, key)
    for path in ("/ui/nope/", "/ui/fabrics/abc/", "/ui/fabrics/999/", "/ui/syncs/not-a-uuid/"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "Not found" in answer.text, path
