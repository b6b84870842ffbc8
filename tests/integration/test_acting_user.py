"""``metadata.user_id``: the events a known user's request creates carry the user's integer
id — over REST (TestClient of the real app) and from bus commands (one at a time and in a
batch of several users) — and the events the engine creates on its own (a scheduler's sync,
a sync's stages and files) carry none. SQLite and PostgreSQL, real git repositories."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.config import SyncConfig
from fgd_core.domain.sync_operation import FINAL_STATES
from fgd_core.events.envelope import decode_envelope
from fgd_workers.commands import Command, CommandIntake
from fgd_workers.scheduler import Scheduler
from tests.gitserver import init_bare, seed_repo
from tests.resources import vpc

API = "/api/plugins/hedgehog"


def repo(tmp_path: Path, name: str) -> Path:
    bare = init_bare(tmp_path / f"{name}.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-1", 1)})
    return bare


def envelopes(container: Container, after: int = 0) -> list[dict[str, Any]]:
    out, start = [], after + 1
    while True:
        page = container.app.recorder.select_notifications(start, 500)
        out += [decode_envelope(n.state) for n in page]
        if len(page) < 500:
            return out
        start = page[-1].id + 1


def of_sync(container: Container, sync_id: str) -> list[dict[str, Any]]:
    return [e for e in envelopes(container) if e["payload"].get("sync_id") == sync_id]


def wait_final(container: Container, sync_id: str) -> None:
    deadline = time.monotonic() + 60
    while container.app.get_sync(sync_id).state not in FINAL_STATES:
        assert time.monotonic() < deadline, f"sync {sync_id} did not finish"
        time.sleep(0.05)


def test_a_users_rest_requests_carry_the_user_id_and_the_engines_work_does_not(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    key, token = create_token(container.app, "alice", superuser=True)
    headers = {"Authorization": f"Token {key}"}
    lab = repo(tmp_path, "lab")
    created = client.post(f"{API}/fabrics/", headers=headers,
                          json={"name": "lab", "repository": str(lab)})
    assert created.status_code == 201, created.text
    fabric_id = created.json()["id"]
    wait_final(container, created.json()["initial_sync"]["sync_id"])  # its fabric_created sync
    seed_repo(lab, {"gitops/raw/b.yaml": vpc("vpc-2", 2)})  # something for the next sync
    [registered] = [e for e in envelopes(container) if e["event_type"] == "fabric.registered"]
    assert registered["metadata"]["user_id"] == token.user_id

    answer = client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", headers=headers,
                         json={"trigger": "manual"})
    assert answer.status_code == 202, answer.text
    sync_id = answer.json()["sync_id"]
    wait_final(container, sync_id)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for envelope in of_sync(container, sync_id):
        by_type.setdefault(envelope["event_type"], []).append(envelope)
    assert [e["metadata"]["user_id"] for e in by_type["sync.started"]] == [token.user_id]
    assert [e["metadata"]["user_id"] for e in by_type["fabric.syncing"]] == [token.user_id]
    audited = [e for e in by_type["audit.recorded"] if e["payload"]["action"] == "trigger_sync"]
    assert [e["metadata"]["user_id"] for e in audited] == [token.user_id]
    # The sync itself runs as the engine: its stages, files and end name no user.
    engine = [e for t in ("stage.started", "file.processed", "sync.completed", "fabric.synced")
              for e in by_type[t]]
    assert engine and all("user_id" not in e["metadata"] for e in engine)

    # A scheduler-started sync: no user acted.
    sched = Scheduler(container.app, SyncConfig(timeout_seconds=86_400), name="sched-test")
    try:
        fabric = container.app.register_fabric("timed", str(repo(tmp_path, "timed")),
                                                sync_interval_minutes=1)
        if fabric.running_sync_id:  # a first sync started at registration: let it end
            wait_final(container, fabric.running_sync_id)
        sched.tick(datetime.now(UTC) + timedelta(hours=2))
    finally:
        sched.close()
    # the scheduler's first sync of a fabric is fabric_created, later ones scheduled
    scheduled = [e for e in envelopes(container) if e["event_type"] == "sync.started"
                 and e["fabric_id"] == fabric.fabric_id
                 and e["payload"]["trigger"] in ("scheduled", "fabric_created")]
    assert scheduled, "the scheduler started no sync"
    assert all("user_id" not in e["metadata"] for e in scheduled)


def test_bus_commands_carry_the_user_of_their_token(
    container: Container, tmp_path: Path
) -> None:
    app = container.app
    fabrics = [app.register_fabric(f"f{i}", str(repo(tmp_path, f"f{i}")))
               for i in range(3)]
    users = [create_token(app, name, permissions=["trigger_fgd_sync"]) for name in
             ("bob", "carol", "dave")]
    assert len({token.user_id for _, token in users}) == 3

    def command(i: int, n: int) -> Command:
        key = users[n][0]
        return Command("sync.trigger", orjson.dumps({"fabric_id": fabrics[i].fabric_id}),
                       {"authorization": f"Token {key}"}, f"m-{i}-{n}", f"c-{i}-{n}")

    intake = CommandIntake(app)
    one = intake.handle(command(0, 0))
    batch = intake.handle_batch([command(1, 1), command(2, 2)])
    for n, result in enumerate([one, *batch]):
        assert result.reply is not None and result.reply["status"] == "started", result
        [started] = [e for e in of_sync(container, result.reply["sync_id"])
                     if e["event_type"] == "sync.started"]
        assert started["metadata"]["user_id"] == users[n][1].user_id
