"""Directory and file operations on a fabric's real repository, with their events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fgd_core.adapters.testing import RecordingEventBus
from fgd_core.application.app import FGDApplication
from fgd_core.application.gitops_ops import GitOpsService
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.config import load_settings
from fgd_core.errors import NotFoundError, ValidationError
from tests.gitserver import git, init_bare, seed_repo
from tests.resources import vpc

VPC = vpc("vpc-a", 1)


@pytest.fixture
def ops(app: FGDApplication) -> GitOpsService:
    return GitOpsService(SyncRunner(app, load_settings(environ={}).fgd))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"README.md": b"fabric\n"})
    return bare


def head(repo: Path) -> str:
    return git("rev-parse", "main", cwd=repo).strip()


def test_validate_initialize_validate_records_events_and_status(
    app: FGDApplication, ops: GitOpsService, repo: Path
) -> None:
    fabric = app.register_fabric("lab", str(repo))
    bus = RecordingEventBus().attach(app)

    report = ops.validate_directory(fabric.fabric_id)
    assert not report["valid"] and report["repairs_needed"] == ["missing_gitops_dir"]
    assert app.get_fabric(fabric.fabric_id).gitops_directory_status == "invalid"
    bus.assert_event_published("directory.validated", valid=False)

    init = ops.initialize_directory(fabric.fabric_id, create_samples=False)
    assert init["initialized"] and "/gitops/.hnp/manifest.yaml" in init["files_created"]
    event = bus.assert_event_published("directory.initialized")
    assert event.payload["commit"] == head(repo)
    fabric = app.get_fabric(fabric.fabric_id)
    assert fabric.gitops_initialized and fabric.gitops_directory_status == "valid"

    before = head(repo)
    again = ops.initialize_directory(fabric.fabric_id)
    assert again == {"success": True, "initialized": False, "directories_created": [],
                     "files_created": []}
    assert head(repo) == before
    assert ops.validate_directory(fabric.fabric_id)["valid"]


def test_repair_fixes_what_it_can_and_reports_the_rest(
    app: FGDApplication, ops: GitOpsService, tmp_path: Path
) -> None:
    bare = init_bare(tmp_path / "r.git")
    seed_repo(bare, {"gitops/raw/a.yaml": VPC, "gitops/raw/notes.json": b"{}"})
    fabric = app.register_fabric("lab", str(bare))
    response = ops.repair_directory(fabric.fabric_id, auto_detect=True)
    made = {r["issue"] for r in response["repairs_made"]}
    assert {"missing_managed_dir", "missing_metadata_dir"} <= made
    assert [i["issue"] for i in response["remaining_issues"]] == ["unsupported_file_in_raw"]
    assert not response["success"]
    files = git("ls-tree", "-r", "--name-only", "main", cwd=bare).split()
    assert "gitops/raw/a.yaml" in files and "gitops/raw/notes.json" in files  # nothing lost
    assert app.get_fabric(fabric.fabric_id).gitops_directory_status == "invalid"


def test_list_files_and_process_one_file(
    app: FGDApplication, ops: GitOpsService, tmp_path: Path
) -> None:
    bare = init_bare(tmp_path / "r.git")
    seed_repo(bare, {"gitops/raw/a.yaml": VPC, "gitops/raw/b.yaml": b"kind: Gateway\n"})
    fabric = app.register_fabric("lab", str(bare))

    listing = ops.list_files(fabric.fabric_id, "raw")
    assert listing["summary"] == {"total_files": 2, "valid_files": 1, "invalid_files": 1,
                                  "total_resources": 1}
    a = next(f for f in listing["files"] if f["path"] == "/gitops/raw/a.yaml")
    assert a["resources"] == [{"kind": "VPC", "name": "vpc-a"}]

    dry = ops.process_file(fabric.fabric_id, "/gitops/raw/a.yaml", validate_only=True)
    assert dry["success"] and dry["files_created"] == ["/gitops/managed/vpcs/vpc-a.yaml"]
    assert "gitops/managed/vpcs/vpc-a.yaml" not in git("ls-tree", "-r", "main", cwd=bare)

    done = ops.process_file(fabric.fabric_id, "/gitops/raw/a.yaml")
    assert done["archived_to"] == "/gitops/raw/a.yaml.archived"
    files = git("ls-tree", "-r", "--name-only", "main", cwd=bare).split()
    assert "gitops/managed/vpcs/vpc-a.yaml" in files
    assert "gitops/raw/b.yaml" in files  # the other raw file was not part of this sync

    failed = ops.process_file(fabric.fabric_id, "/gitops/raw/b.yaml")
    assert not failed["success"] and failed["errors"][0]["code"] in ("FGD_1002", "FGD_1003")


@pytest.mark.parametrize(("path", "error"), [("/etc/passwd", ValidationError),
                                             ("/gitops/raw/a.yaml.archived", ValidationError),
                                             ("/gitops/raw/missing.yaml", NotFoundError)])
def test_process_file_refuses_what_is_not_a_pending_raw_file(
    app: FGDApplication, ops: GitOpsService, tmp_path: Path, path: str, error: type
) -> None:
    bare = init_bare(tmp_path / "r.git")
    seed_repo(bare, {"gitops/raw/a.yaml.archived": VPC})
    fabric = app.register_fabric("lab", str(bare))
    with pytest.raises(error) as refused:
        ops.process_file(fabric.fabric_id, path)
    assert type(refused.value) is error
    assert app.get_fabric(fabric.fabric_id).total_sync_count == 0


def test_operations_on_unknown_fabric_are_not_found(ops: GitOpsService) -> None:
    calls: list[Any] = [ops.validate_directory, ops.initialize_directory, ops.list_files]
    for call in calls:
        with pytest.raises(NotFoundError):
            call(99)
