"""Directory validation agrees with what a sync needs, and the fabric's
``gitops_initialized`` / ``gitops_directory_status`` follow the repository: REST (TestClient
of the real app, read model included) and ``fgd directory validate``, on SQLite and
PostgreSQL, against real git repositories synced by the real runner."""

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
from tests.gitserver import git, init_bare, seed_repo
from tests.resources import vpc

API = "/api/plugins/hedgehog"
ATTACHMENT = b"""apiVersion: vpc.githedgehog.com/v1beta1
kind: VPCAttachment
metadata:
  name: vpc-1--server-1
  namespace: default
spec:
  subnet: vpc-1/default
  connection: server-1--unbundled--leaf-01
"""


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


def fabric_detail(client: TestClient, container: Container, headers: dict[str, str],
                  fabric_id: int) -> dict[str, Any]:
    # Writes made in other threads (the API's, the runner's): wait for the store's head.
    container.read_model.wait_for(container.app.recorder.max_notification_id(), timeout=30)
    answer = client.get(f"{API}/fabrics/{fabric_id}/", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_vpc_only_repository_that_syncs_is_valid_and_initialized(
    client: TestClient, container: Container, environ: dict[str, str], tmp_path: Path
) -> None:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1) + b"---\n" + ATTACHMENT})
    fabric = container.app.register_fabric("lab", str(bare))
    key, _ = create_token(container.app, "admin", superuser=True)
    headers = {"Authorization": f"Token {key}"}
    validate = f"{API}/fabrics/{fabric.fabric_id}/gitops-directory/validate/"

    # Before any sync: raw/ only. Validation says so, and the fabric follows.
    before = client.get(validate, headers=headers).json()
    assert before["valid"] is False
    assert {i["issue"] for i in before["issues"]} == {"missing_managed_dir",
                                                       "missing_metadata_dir"}
    detail = fabric_detail(client, container, headers, fabric.fabric_id)
    assert (detail["gitops_initialized"], detail["gitops_directory_status"]) == (
        False, "invalid")

    result = container.runner.run(fabric.fabric_id)
    assert result.sync.state == "completed" and not result.sync.errors
    tree = git("ls-tree", "-r", "--name-only", "main", cwd=bare).split()
    assert not any(p.startswith(("gitops/managed/connections/", "gitops/managed/switches/"))
                   for p in tree)  # a VPC-only fabric: no connections/, no switches/

    report = client.get(validate, headers=headers).json()
    assert report["valid"] is True, report["issues"]
    assert not any(i["severity"] == "error" for i in report["issues"])
    assert "vpcs" in report["structure"]["managed"]["subdirectories"]
    detail = fabric_detail(client, container, headers, fabric.fabric_id)
    assert (detail["gitops_initialized"], detail["gitops_directory_status"]) == (True, "valid")

    cli = CliRunner().invoke(main, ["directory", "validate", str(fabric.fabric_id), "-o",
                                    "json"], env=environ)
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["valid"] is True


def test_process_file_leaves_the_fabric_saying_what_the_repository_holds(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-1", 1)})
    fabric = container.app.register_fabric("lab", str(bare))
    key, _ = create_token(container.app, "admin", superuser=True)
    headers = {"Authorization": f"Token {key}"}
    assert fabric_detail(client, container, headers, fabric.fabric_id)[
        "gitops_initialized"] is False
    done = client.post(f"{API}/fabrics/{fabric.fabric_id}/gitops-files/process/",
                       headers=headers, json={"file_path": "/gitops/raw/a.yaml"})
    assert done.status_code == 200 and done.json()["success"], done.text
    detail = fabric_detail(client, container, headers, fabric.fabric_id)
    assert (detail["gitops_initialized"], detail["gitops_directory_status"]) == (True, "valid")
    # Nothing changed since: observing again records nothing.
    assert container.ops.observe_directory(fabric.fabric_id) is False


def test_a_required_directory_that_is_no_kinds_is_still_required(
    environ: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "fgd_config.yaml"
    config.write_text("fgd:\n  directory:\n    required_subdirs: [vpcs, switches, docs]\n")
    container = Container.build(load_settings(environ={**environ,
                                                       "HEDGEHOG_FGD_CONFIG": str(config)}))
    try:
        bare = init_bare(tmp_path / "fabric.git")
        seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-1", 1)})
        fabric = container.app.register_fabric("lab", str(bare))
        container.runner.run(fabric.fabric_id)
        report = container.ops.validate_directory(fabric.fabric_id)
        assert [(i["issue"], i["path"]) for i in report["issues"]] == [
            ("missing_subdir", "/gitops/managed/docs")]  # switches/: created on demand
        assert report["valid"] is False
        assert container.app.get_fabric(fabric.fabric_id).gitops_initialized is True
    finally:
        container.close()
