"""Process-file checks its path at the branch head before it starts anything: over REST
(TestClient of the real app) and ``fgd process``, on SQLite and PostgreSQL, against real git
repositories. A refused path answers the spec's error and leaves no event and no sync."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.cli.main import main
from fgd_core.config import load_settings
from tests.gitserver import init_bare, seed_repo
from tests.resources import vpc

API = "/api/plugins/hedgehog"
# (file_path, HTTP status, code): outside raw/, not ingested, missing, raw/ missing.
REFUSED = [
    ("/etc/passwd", 422, "FGD_1003"),
    ("/gitops/managed/vpcs/vpc-1.yaml", 422, "FGD_1003"),
    ("/gitops/raw/../managed/x.yaml", 422, "FGD_1003"),
    ("/gitops/raw/README.md", 422, "FGD_1003"),
    ("/gitops/raw/old.yaml.archived", 422, "FGD_1003"),
    ("/gitops/raw/missing.yaml", 404, "FGD_1003"),
]


@pytest.fixture
def environ(database_url: str | None, tmp_path: Path) -> dict[str, str]:
    env = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"), "HOME": str(tmp_path),
           "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": str(tmp_path)}
    if database_url:
        env["HEDGEHOG_FGD_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def container(environ: dict[str, str]) -> Iterator[Container]:
    c = Container.build(load_settings(environ=environ))
    yield c
    c.close()


def repository(tmp_path: Path, files: dict[str, bytes]) -> Path:
    bare = init_bare(tmp_path / f"r{len(list(tmp_path.glob('r*.git')))}.git")
    seed_repo(bare, files)
    return bare


def sync_events(container: Container, after: int) -> list[str]:
    """Types of the sync/fabric-lock events stored after ``after``."""
    types = []
    for item in container.app.recorder.select_notifications(after + 1, 10_000):
        event_type = json.loads(item.state)["event_type"]
        if event_type.split(".")[0] in ("sync", "stage", "file", "fabric"):
            types.append(event_type)
    return types


def test_rest_refuses_a_bad_path_before_starting_a_sync(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    bare = repository(tmp_path, {"gitops/raw/a.yaml": vpc("vpc-1", 1),
                                 "gitops/raw/README.md": b"# raw\n",
                                 "gitops/raw/old.yaml.archived": vpc("vpc-2", 2)})
    fabric = container.app.register_fabric("lab", str(bare))
    key, _ = create_token(container.app, "ops", permissions=["trigger_fgd_sync"])
    headers = {"Authorization": f"Token {key}"}
    process = f"{API}/fabrics/{fabric.fabric_id}/gitops-files/process/"
    before = container.app.last_position()
    for file_path, status, code in REFUSED:
        answer = client.post(process, headers=headers, json={"file_path": file_path})
        assert answer.status_code == status, (file_path, answer.text)
        assert answer.json()["error"]["code"] == code
    assert sync_events(container, before) == []  # no sync, no lock, nothing counted
    loaded = container.app.get_fabric(fabric.fabric_id)
    assert loaded.total_sync_count == 0 and loaded.running_sync_id is None
    # The good path still works, in either form.
    done = client.post(process, headers=headers, json={"file_path": "gitops/raw/a.yaml"})
    assert done.status_code == 200 and done.json()["success"], done.text
    assert done.json()["file_path"] == "/gitops/raw/a.yaml"


def test_a_missing_raw_directory_is_fgd_2001(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    bare = repository(tmp_path, {"README.md": b"not yet a fabric\n"})
    fabric = container.app.register_fabric("lab", str(bare))
    key, _ = create_token(container.app, "ops", permissions=["trigger_fgd_sync"])
    before = container.app.last_position()
    answer = client.post(f"{API}/fabrics/{fabric.fabric_id}/gitops-files/process/",
                         headers={"Authorization": f"Token {key}"},
                         json={"file_path": "/gitops/raw/a.yaml"})
    assert answer.status_code == 404, answer.text
    error = answer.json()["error"]
    assert error["code"] == "FGD_2001" and error["details"]["path"] == "/gitops/raw"
    assert sync_events(container, before) == []


def test_fgd_process_refuses_a_bad_path_before_starting_a_sync(
    container: Container, environ: dict[str, str], tmp_path: Path
) -> None:
    bare = repository(tmp_path, {"gitops/raw/a.yaml": vpc("vpc-1", 1),
                                 "gitops/raw/README.md": b"# raw\n",
                                 "gitops/raw/old.yaml.archived": vpc("vpc-2", 2)})
    fabric = container.app.register_fabric("lab", str(bare))
    before = container.app.last_position()
    runner = CliRunner()
    for file_path, _status, code in REFUSED:
        result = runner.invoke(main, ["process", str(fabric.fabric_id), file_path, "-o", "json"],
                               env=environ)
        assert result.exit_code == 1, (file_path, result.output)
        body: Any = json.loads(result.output.strip().splitlines()[-1])
        assert body["error"]["code"] == code, (file_path, body)
    assert sync_events(container, before) == []
    ok = runner.invoke(main, ["process", str(fabric.fabric_id), "/gitops/raw/a.yaml", "-o",
                              "json"], env=environ)
    assert ok.exit_code == 0 and json.loads(ok.output)["status"] == "processed", ok.output
