"""GitHub webhooks over real HTTP (FastAPI TestClient), a real event store (SQLite) and real
git repositories served over smart HTTP; each push signed exactly as GitHub signs it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_api.routers.webhooks import MAX_BODY_BYTES, check_signature
from fgd_core.application import views
from fgd_core.config import load_settings
from fgd_core.domain.sync_operation import FINAL_STATES
from fgd_core.domain.webhook import delivery_uuid, push_repository_keys, repository_key
from fgd_core.errors import FGDError
from fgd_core.events.envelope import decode_envelope
from tests.gitserver import GitHTTPServer, init_bare, seed_repo
from tests.resources import vpc

SECRET = "It's a Secret to Everybody"  # GitHub's documented example secret
HOOK = "/api/plugins/hedgehog/webhooks/github/"


class StubReadModel:
    """The read model's query surface, straight from the aggregates (the projections are
    someone else's; these tests need none of their behaviour)."""

    app: Any = None

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        return True

    def sync_status(self, sync_id: str) -> dict[str, Any] | None:
        try:
            return views.sync_status(self.app.get_sync(sync_id))
        except FGDError:
            return None

    def fabric(self, fabric_id: int) -> dict[str, Any] | None:
        try:
            return views.fabric_view(self.app.get_fabric(fabric_id))
        except FGDError:
            return None

    def fabrics(self) -> list[dict[str, Any]]:
        return [views.fabric_view(f) for f in self.app.list_fabrics()]

    def lag(self) -> int:
        return 0


def build_container(tmp_path: Path, secret: str | None = SECRET, allowed: str = "") -> Container:
    # The repositories these tests register: under tmp_path, or on the test git server.
    environ = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"), "HOME": str(tmp_path),
               "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": ",".join(filter(None, [str(tmp_path),
                                                                          allowed]))}
    if secret is not None:
        environ["HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET"] = secret
    read_model = StubReadModel()
    container = Container.build(load_settings(environ=environ), read_model=read_model)
    read_model.app = container.app
    return container


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHTTPServer]:
    with GitHTTPServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def container(tmp_path: Path, server: GitHTTPServer) -> Iterator[Container]:
    c = build_container(tmp_path, allowed=server.url())
    yield c
    c.close()


@pytest.fixture
def remote(server: GitHTTPServer) -> str:
    """``hedgehog/fabric`` with one raw VPC file, served at an http URL."""
    bare = init_bare(server.root / "hedgehog" / "fabric.git")
    seed_repo(bare, {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1)})
    return server.url("hedgehog/fabric.git")


def wait_final(container: Container, sync_id: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = container.app.get_sync(sync_id).state
        if state in FINAL_STATES:
            return str(state)
        time.sleep(0.05)
    raise AssertionError(f"sync {sync_id} did not finish")


def push_payload(
    clone_url: str,
    paths: list[str] | tuple[str, ...] = ("gitops/raw/vpcs.yaml",),
    ref: str = "refs/heads/main",
    full_name: str = "hedgehog/fabric",
) -> dict[str, Any]:
    sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    commit = {"id": sha, "message": "add vpc", "added": list(paths), "removed": [],
              "modified": [], "author": {"name": "Other Engineer", "email": "o@example.com"}}
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": sha,
        "created": False,
        "deleted": False,
        "forced": False,
        "repository": {
            "id": 1296269,
            "name": full_name.split("/")[-1],
            "full_name": full_name,
            "html_url": f"https://github.com/{full_name}",
            "clone_url": clone_url,
            "ssh_url": f"git@github.com:{full_name}.git",
            "default_branch": "main",
        },
        "pusher": {"name": "other", "email": "o@example.com"},
        "commits": [commit],
        "head_commit": commit,
    }


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    client: TestClient,
    payload: Any,
    event: str = "push",
    delivery: str | None = None,
    signature: str | None = "sign",
    secret: str = SECRET,
) -> Any:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid4()),
        "X-GitHub-Hook-ID": "292430182",
    }
    if signature == "sign":
        headers["X-Hub-Signature-256"] = sign(body, secret)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post(HOOK, content=body, headers=headers)


def stored_types(container: Container) -> list[str]:
    notifications = container.app.recorder.select_notifications(start=1, limit=100_000)
    return [decode_envelope(n.state)["event_type"] for n in notifications]


def audits(container: Container) -> list[dict[str, Any]]:
    notifications = container.app.recorder.select_notifications(start=1, limit=100_000)
    envelopes = [decode_envelope(n.state) for n in notifications]
    return [e["payload"] for e in envelopes
            if e["event_type"] == "audit.recorded" and e["payload"]["action"] == "github_webhook"]


# -- the signature and the matching rules (pure) -------------------------------------------


def test_signature_matches_githubs_documented_example(container: Container) -> None:
    # docs.github.com "Validating webhook deliveries": this secret, "Hello, World!" →
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    check_signature(container, b"Hello, World!", expected)
    assert sign(b"Hello, World!") == expected


@pytest.mark.parametrize(
    ("fabric_repo", "matches"),
    [
        ("https://github.com/hedgehog/fabric", True),
        ("https://github.com/Hedgehog/Fabric.git/", True),
        ("https://x-access-token:ghs_abc@github.com/hedgehog/fabric.git", True),
        ("git@github.com:hedgehog/fabric.git", True),
        ("ssh://git@github.com/hedgehog/fabric", True),
        ("https://github.com/hedgehog/fabric-other", False),
        ("https://gitlab.com/hedgehog/fabric", False),
        ("/srv/git/hedgehog/fabric.git", False),
        ("file:///srv/git/hedgehog/fabric.git", False),
        ("hedgehog/fabric", False),
    ],
)
def test_repository_matching_is_loose_but_never_matches_a_local_path(
    fabric_repo: str, matches: bool
) -> None:
    keys = push_repository_keys(push_payload("https://github.com/hedgehog/fabric.git")
                                ["repository"])
    assert (repository_key(fabric_repo) in keys) is matches


# -- deliveries ----------------------------------------------------------------------------


def test_signed_push_triggers_one_webhook_sync_per_matching_fabric_which_completes(
    client: TestClient, container: Container, remote: str, tmp_path: Path
) -> None:
    app = container.app
    lab = app.register_fabric("lab", remote, auto_sync_on_change=True)
    other_branch = app.register_fabric("dev", remote, branch="dev", auto_sync_on_change=True)
    local = app.register_fabric("local", str(tmp_path / "srv" / "hedgehog" / "fabric.git"),
                                auto_sync_on_change=True)
    # Another directory of the same repository and branch (two fabrics cannot own one).
    manual_only = app.register_fabric("manual", remote, gitops_directory="manual")

    started = time.perf_counter()
    response = deliver(client, push_payload(remote, ("gitops/raw/vpcs.yaml",
                                                     "manual/raw/x.yaml")), delivery="d-1")
    elapsed = time.perf_counter() - started
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted" and body["delivery"] == "d-1"
    assert [t["fabric_id"] for t in body["triggered"]] == [lab.fabric_id]
    assert body["coalesced"] == [] and body["ignored"] is None
    assert body["skipped"] == [{"fabric_id": manual_only.fabric_id,
                                "reason": "auto_sync_on_change is off"}]
    assert elapsed < 2.0  # no git I/O in the request

    sync_id = body["triggered"][0]["sync_id"]
    sync = app.get_sync(sync_id)
    assert sync.trigger == "webhook" and sync.fabric_id == lab.fabric_id
    assert wait_final(container, sync_id) == "completed"
    for fabric in (other_branch, local, manual_only):
        assert app.get_fabric(fabric.fabric_id).sync_ids == []

    # the delivery is an event of its own: validated, with no body and no signature
    [stored] = app.recorder.select_events(delivery_uuid("d-1"))
    envelope = decode_envelope(stored.state)
    assert envelope["event_type"] == "webhook.received"
    assert envelope["payload"] == {
        "delivery_id": "d-1", "github_event": "push", "repository": "hedgehog/fabric",
        "ref": "refs/heads/main", "after": push_payload(remote)["after"],
        "triggered": body["triggered"], "coalesced": [], "ignored": None,
    }
    assert "sha256=" not in stored.state.decode()
    [audit] = audits(container)
    assert audit["success"] is True and audit["user"] is None
    assert audit["details"]["delivery"] == "d-1" and audit["details"]["status"] == "accepted"


def test_redelivery_triggers_nothing_new(
    client: TestClient, container: Container, remote: str
) -> None:
    lab = container.app.register_fabric("lab", remote, auto_sync_on_change=True)
    first = deliver(client, push_payload(remote), delivery="same").json()
    wait_final(container, first["triggered"][0]["sync_id"])

    again = deliver(client, push_payload(remote), delivery="same")
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "delivery": "same"}
    assert len(container.app.get_fabric(lab.fabric_id).sync_ids) == 1
    assert stored_types(container).count("webhook.received") == 1
    assert [a["details"]["status"] for a in audits(container)] == ["accepted", "duplicate"]


def test_fan_out_to_every_fabric_whose_directory_the_push_touches(
    client: TestClient, container: Container, remote: str
) -> None:
    app = container.app
    a = app.register_fabric("a", remote, gitops_directory="sites/a", auto_sync_on_change=True)
    b = app.register_fabric("b", remote, gitops_directory="sites/b", auto_sync_on_change=True)
    c = app.register_fabric("c", remote, gitops_directory="sites/c", auto_sync_on_change=True)
    payload = push_payload(remote, paths=["sites/a/raw/x.yaml", "sites/b/raw/y.yaml",
                                          "sites/cc/raw/z.yaml"])
    body = deliver(client, payload).json()
    assert sorted(t["fabric_id"] for t in body["triggered"]) == [a.fabric_id, b.fabric_id]
    assert {s["fabric_id"] for s in body["skipped"]} == {c.fabric_id}
    for item in body["triggered"]:
        wait_final(container, item["sync_id"])  # finishes (nothing under sites/*/raw: fine)


def test_push_outside_the_gitops_directory_triggers_nothing(
    client: TestClient, container: Container, remote: str
) -> None:
    lab = container.app.register_fabric("lab", remote, auto_sync_on_change=True)
    payload = push_payload(remote, paths=["README.md", "gitops-old/raw/x.yaml"])
    response = deliver(client, payload)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted" and body["triggered"] == [] and body["coalesced"] == []
    assert body["ignored"] == "no matching fabric is due a sync (see skipped)"
    assert body["skipped"] == [{"fabric_id": lab.fabric_id,
                                "reason": "push does not touch the GitOps directory"}]
    assert container.app.get_fabric(lab.fabric_id).sync_ids == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ref": "refs/tags/v1"}, "not a branch push"),
        ({"deleted": True}, "branch deleted"),
        ({"ref": "refs/heads/other"}, "no fabric tracks this repository and branch"),
    ],
)
def test_pushes_that_concern_no_fabric_are_accepted_and_say_why(
    client: TestClient, container: Container, remote: str, change: dict[str, Any], reason: str
) -> None:
    lab = container.app.register_fabric("lab", remote, auto_sync_on_change=True)
    body = deliver(client, {**push_payload(remote), **change}).json()
    assert body["status"] == "accepted" and body["triggered"] == [] and body["ignored"] == reason
    assert container.app.get_fabric(lab.fabric_id).sync_ids == []


def test_a_fabric_already_syncing_is_coalesced(
    client: TestClient, container: Container, remote: str
) -> None:
    lab = container.app.register_fabric("lab", remote, auto_sync_on_change=True)
    running = container.app.start_sync(lab.fabric_id)  # pending: nobody runs it
    response = deliver(client, push_payload(remote), delivery="while-running")
    assert response.status_code == 202
    body = response.json()
    assert body["triggered"] == [] and body["coalesced"] == [lab.fabric_id]
    assert body["ignored"] is None
    assert container.app.get_fabric(lab.fabric_id).sync_ids == [running.sync_id]
    container.app.cancel_sync(running.sync_id)


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha1=abc", "sign-with-another-secret"],
)
def test_bad_or_missing_signature_is_401_and_only_the_audit_is_stored(
    client: TestClient, container: Container, remote: str, signature: str | None
) -> None:
    lab = container.app.register_fabric("lab", remote, auto_sync_on_change=True)
    before = stored_types(container)
    if signature == "sign-with-another-secret":
        response = deliver(client, push_payload(remote), signature="sign", secret="wrong")
    else:
        response = deliver(client, push_payload(remote), signature=signature)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "FGD_1003" and "X-Hub-Signature-256" in error["message"]
    assert SECRET not in response.text and "sha256=" not in response.text
    assert stored_types(container)[len(before):] == ["audit.recorded"]
    assert container.app.get_fabric(lab.fabric_id).sync_ids == []
    [audit] = audits(container)
    assert audit["success"] is False and "sha256" not in json.dumps(audit)


def test_without_a_configured_secret_every_delivery_is_401(tmp_path: Path, remote: str) -> None:
    container = build_container(tmp_path / "nosecret", secret=None)
    try:
        with TestClient(create_app(container)) as client:
            response = deliver(client, push_payload(remote))
            assert response.status_code == 401
            assert "not configured" in response.json()["error"]["message"]
    finally:
        container.close()


def test_ping_is_answered_with_pong(client: TestClient, container: Container) -> None:
    response = deliver(client, {"zen": "Design for failure.", "hook_id": 292430182},
                       event="ping", delivery="ping-1")
    assert response.status_code == 200
    assert response.json() == {"msg": "pong", "delivery": "ping-1", "hook_id": 292430182}
    assert [a["details"]["status"] for a in audits(container)] == ["pong"]


def test_other_events_are_ignored(client: TestClient, container: Container) -> None:
    response = deliver(client, {"action": "opened"}, event="issues", delivery="i-1")
    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "delivery": "i-1", "event": "issues"}
    assert "webhook.received" not in stored_types(container)


def test_oversized_body_is_413_before_it_is_read(client: TestClient, container: Container) -> None:
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "big",
               "X-Hub-Signature-256": sign(body)}
    response = client.post(HOOK, content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "FGD_1003"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bounded read stops it
        for _ in range(MAX_BODY_BYTES // (1024 * 1024) + 1):
            yield b" " * (1024 * 1024)

    response = client.post(HOOK, content=chunks(), headers=headers)
    assert response.status_code == 413
    # unsigned refusals are anonymous: the second, within the second, is only counted
    assert [a["success"] for a in audits(container)] == [False]


def test_malformed_deliveries_are_400(client: TestClient) -> None:
    body = b"not json"
    response = client.post(HOOK, content=body, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "x", "X-Hub-Signature-256": sign(body)})
    assert response.status_code == 400
    response = deliver(client, {"zen": "x"}, event="ping", delivery="bad delivery id!")
    assert response.status_code == 400
