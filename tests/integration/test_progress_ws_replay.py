"""The sync-progress WebSocket replays a sync from its first event: subscribers that join
before, during and after a sync get the very same messages (types and payloads), none twice
and none missing — on SQLite and PostgreSQL, with a real sync run by the embedded executor
against a git repository served over smart HTTP.

"During" is made certain, not hoped for: the git server holds the sync's push until the
second subscriber has joined and received the messages so far.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.config import load_settings
from tests.gitserver import GitHTTPServer, init_bare, seed_repo
from tests.integration.test_progress_ws import receive_all, url
from tests.resources import vpc

BAD = b"apiVersion: vpc.githedgehog.com/v1beta1\nkind: VPC\nmetadata:\n  name: Bad_Name\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHTTPServer]:
    with GitHTTPServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def container(
    database_url: str | None, tmp_path: Path, server: GitHTTPServer
) -> Iterator[Container]:
    environ = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"), "HOME": str(tmp_path),
               "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": server.url()}
    if database_url:
        environ["HEDGEHOG_FGD_DATABASE_URL"] = database_url
    c = Container.build(load_settings(environ=environ))
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


def test_before_during_and_after_subscribers_receive_the_same_messages(
    client: TestClient, container: Container, server: GitHTTPServer
) -> None:
    bare = init_bare(server.root / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-a", 1) + b"---\n" + vpc("vpc-b", 2),
                     "gitops/raw/b.yaml": vpc("vpc-c", 3),
                     "gitops/raw/bad.yaml": BAD})
    fabric = container.app.register_fabric("lab", server.url("fabric.git"))
    key, _ = create_token(container.app, "viewer", permissions=["view_fgd_sync"])
    pushing, release = threading.Event(), threading.Event()

    def hold_the_push(method: str, path: str) -> None:
        if method == "POST" and path.endswith("/git-receive-pack"):
            pushing.set()
            assert release.wait(60), "the test never released the push"

    server.before_backend = hold_the_push
    sync = container.app.start_sync(fabric.fabric_id)
    path = url(sync.sync_id, token=key)
    results: dict[str, tuple[list[dict[str, Any]], int]] = {}
    with client.websocket_connect(path) as before:
        first = before.receive_json()  # joined while the sync is pending
        assert first["type"] == "sync.started" and first["data"]["state"] == "pending"
        container.executor.submit(sync.sync_id)
        assert pushing.wait(60), "the sync never reached its push"
        with client.websocket_connect(path) as during:
            so_far = []
            while not so_far or so_far[-1]["type"] != "sync.progress" \
                    or so_far[-1]["data"]["event"].get("stage") != "github_sync":
                so_far.append(during.receive_json())  # up to "github_sync started"
            assert container.app.get_sync(sync.sync_id).state == "processing"
            release.set()
            rest, code = receive_all(during)
            results["during"] = (so_far + rest, code)
        rest, code = receive_all(before)
        results["before"] = ([first, *rest], code)
    with client.websocket_connect(path) as after:
        results["after"] = receive_all(after)

    messages, code = results["before"]
    assert code == 1000 and results["during"][1] == 1000 and results["after"][1] == 1000
    assert results["during"][0] == messages
    assert results["after"][0] == messages
    # What the one sequence holds: every event in order, once, from sync.started to the end.
    versions = [m["data"]["version"] for m in messages]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert [m["data"]["event"]["event_id"] for m in messages] == \
        list(dict.fromkeys(m["data"]["event"]["event_id"] for m in messages))
    types = [m["type"] for m in messages]
    assert types[0] == "sync.started" and types[-1] == "sync.completed"
    assert types.count("sync.stage_completed") == 5
    done = {m["data"]["event"]["file_path"]: m["data"]["event"]["status"]
            for m in messages if m["type"] == "sync.file_processed"}
    assert done == {"/gitops/raw/a.yaml": "success", "/gitops/raw/b.yaml": "success",
                    "/gitops/raw/bad.yaml": "failed"}
    # Every stored event of the sync is there but those folded away: the run of
    # file.discovered is sent as its last message.
    stored = container.app.recorder.select_events(sync.id)
    discovered = [s.originator_version for s in stored if b'"file.discovered"' in s.state]
    assert len(discovered) == 3
    skipped = set(discovered[:-1])
    assert versions == [s.originator_version for s in stored
                        if s.originator_version not in skipped]
    assert messages[-1]["data"]["files_processed"] == messages[-1]["data"]["total_files"] == 3


def test_a_sync_of_nothing_is_replayed_whole_too(
    client: TestClient, container: Container, server: GitHTTPServer
) -> None:
    init_bare(server.root / "empty.git")
    fabric = container.app.register_fabric("empty", server.url("empty.git"))
    key, _ = create_token(container.app, "viewer", permissions=["view_fgd_sync"])
    sync = container.app.start_sync(fabric.fabric_id)
    container.executor.submit(sync.sync_id)
    with client.websocket_connect(url(sync.sync_id, token=key)) as ws:
        live, code = receive_all(ws)
    with client.websocket_connect(url(sync.sync_id, token=key)) as ws:
        replayed, _ = receive_all(ws)
    assert code == 1000 and live == replayed
    assert live[0]["type"] == "sync.started" and live[-1]["type"] == "sync.completed"
