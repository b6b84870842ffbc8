"""A correlation id names one request (issue 10, finding 2): a repeated one is answered with
the sync it already started — over HTTP on SQLite and PostgreSQL and from concurrent threads
(the bus: test_correlation_ids_bus.py) — and never reaches the read model twice; one reused
for another request is refused with 409 FGD_1003."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fgd_api.container import Container
from fgd_core.application.app import FGDApplication
from fgd_core.domain.correlation import CorrelationReusedError, sync_uuid
from fgd_core.events.envelope import decode_envelope
from tests.integration.test_api import (  # noqa: F401 — fixtures
    API,
    assert_error,
    make_fabric,
    repo,
    wait_final,
)


def stored(app: FGDApplication, event_type: str) -> list[dict[str, Any]]:
    return [e for e in (decode_envelope(n.state) for n in
                        app.recorder.select_notifications(start=1, limit=1_000_000))
            if e["event_type"] == event_type]


def trigger(client: TestClient, headers: dict[str, str], fabric_id: int, cid: str,  # noqa: F811
            body: dict[str, Any] | None = None) -> Any:
    return client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", json=body or {},
                       headers={**headers, "X-Correlation-ID": cid})


def assert_read_model_current(container: Container) -> None:  # noqa: F811
    app, read_model = container.app, container.read_model
    read_model.wait_for(app.recorder.max_notification_id(), timeout=10)
    assert read_model.lag() == 0


# -- HTTP, both backends --------------------------------------------------------------------


def test_a_repeated_x_correlation_id_answers_the_sync_it_started(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path  # noqa: F811
) -> None:
    fabric_id = make_fabric(client, admin, repo)
    first = trigger(client, admin, fabric_id, "netbox-42")
    assert first.status_code == 202, first.text
    sync_id = first.json()["sync_id"]
    assert sync_id == str(sync_uuid("netbox-42"))
    again = trigger(client, admin, fabric_id, "netbox-42")  # running or ended: the same
    assert again.status_code == 202, again.text
    assert again.json()["sync_id"] == sync_id
    assert again.json()["message"] == "Sync operation already started by this correlation id"
    assert wait_final(client, admin, sync_id)["state"] == "completed"
    after = trigger(client, admin, fabric_id, "netbox-42")  # after its end: still the same
    assert after.status_code == 202 and after.json()["sync_id"] == sync_id

    assert [e["payload"]["sync_id"] for e in stored(container.app, "sync.started")] == [sync_id]
    assert_read_model_current(container)
    status = client.get(f"{API}/sync-status/{sync_id}/", headers=admin).json()
    assert status["state"] == "completed"
    duplicates = [e for e in stored(container.app, "audit.recorded")
                  if e["payload"]["action"] == "trigger_sync"
                  and e["payload"]["details"].get("status") == "duplicate"]
    assert len(duplicates) == 2 and all(e["payload"]["success"] for e in duplicates)
    # later writes, of any kind, are served
    other = client.post(f"{API}/fabrics/", json={"name": "lab2", "repository": str(repo),
                                                  "gitops_directory": "lab2"},
                        headers={**admin, "X-Correlation-ID": "netbox-42"})
    assert other.status_code == 201, other.text
    fresh = trigger(client, admin, fabric_id, "netbox-43")
    assert fresh.status_code == 202 and fresh.json()["sync_id"] != sync_id
    wait_final(client, admin, fresh.json()["sync_id"])
    assert_read_model_current(container)


def test_a_correlation_id_reused_for_another_fabric_or_other_options_is_409(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path  # noqa: F811
) -> None:
    lab = make_fabric(client, admin, repo)
    other = make_fabric(client, admin, repo, name="other", gitops_directory="other")
    first = trigger(client, admin, lab, "cid-1")
    assert first.status_code == 202
    wait_final(client, admin, first.json()["sync_id"])

    elsewhere = assert_error(trigger(client, admin, other, "cid-1"), 409, "FGD_1003")
    assert elsewhere["details"] == {"field": "correlation_id", "correlation_id": "cid-1"}
    assert elsewhere["correlation_id"] == "cid-1"
    assert first.json()["sync_id"] not in str(elsewhere)  # another fabric's sync: not told
    changed = trigger(client, admin, lab, "cid-1", {"options": {"validate_only": True}})
    assert_error(changed, 409, "FGD_1003")
    scheduled = trigger(client, admin, lab, "cid-1", {"trigger": "scheduled"})
    assert_error(scheduled, 409, "FGD_1003")

    assert len(stored(container.app, "sync.started")) == 1
    assert container.app.get_fabric(other).sync_ids == []
    assert_read_model_current(container)
    assert trigger(client, admin, other, "cid-2").status_code == 202


def test_concurrent_http_triggers_with_one_correlation_id_get_one_sync(
    client: TestClient, admin: dict[str, str], container: Container, repo: Path  # noqa: F811
) -> None:
    fabric_id = make_fabric(client, admin, repo)
    barrier = threading.Barrier(6)
    answers: list[Any] = []

    def post() -> None:
        barrier.wait()
        answers.append(trigger(client, admin, fabric_id, "retry-storm"))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [202] * 6, [a.text for a in answers]
    assert len({a.json()["sync_id"] for a in answers}) == 1
    assert [a.json()["message"] for a in answers].count("Sync operation started") == 1
    assert len(stored(container.app, "sync.started")) == 1
    wait_final(client, admin, answers[0].json()["sync_id"])
    assert_read_model_current(container)


def test_concurrent_triggers_with_one_correlation_id_start_one_sync(
    app: FGDApplication,
) -> None:
    fabric_id = app.register_fabric("lab", "https://github.com/example/lab.git").fabric_id
    other_id = app.register_fabric("other", "https://github.com/example/o.git").fabric_id
    barrier = threading.Barrier(8)
    answers: list[Any] = []

    def request(fabric: int) -> None:
        barrier.wait()
        try:
            answers.append(app.request_sync(fabric, "manual", None, "race"))
        except CorrelationReusedError as exc:
            answers.append(exc)

    threads = [threading.Thread(target=request, args=(fabric_id if i % 4 else other_id,))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 8
    syncs = [a for a in answers if not isinstance(a, Exception)]
    assert len({a.sync.sync_id for a in syncs}) == 1
    assert sum(not a.duplicate for a in syncs) == 1
    [event] = stored(app, "sync.started")
    winner = event["fabric_id"]
    refused = [a for a in answers if isinstance(a, Exception)]
    # every thread asking for the other fabric is refused, none for the winner's
    assert len(refused) == (2 if winner == fabric_id else 6)
    assert app.get_fabric(winner).running_sync_id == event["payload"]["sync_id"]


def test_the_sync_runner_does_not_run_a_repeated_request_twice(
    app: FGDApplication, tmp_path: Path
) -> None:
    from fgd_core.application.sync_runner import SyncRunner
    from fgd_core.config import load_settings
    from tests.gitserver import init_bare, seed_repo
    from tests.resources import vpc

    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
    fabric_id = app.register_fabric("lab", str(bare)).fabric_id
    runner = SyncRunner(app, load_settings(environ={}).fgd)
    first = runner.run(fabric_id, correlation_id="job-7")
    assert first.ok and first.commit
    events = app.recorder.max_notification_id()
    again = runner.run(fabric_id, correlation_id="job-7")
    assert again.sync.sync_id == first.sync.sync_id and again.ok
    assert again.commit is None  # nothing run, nothing committed
    assert app.recorder.max_notification_id() == events
