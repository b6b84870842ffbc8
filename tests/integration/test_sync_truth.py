"""Syncs report what they did: created vs updated as the commit has them, and files still
failing (skipped because unchanged since they failed) as warnings naming the file with its
earlier error — in ``sync.completed`` too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fgd_core.application.app import FGDApplication
from fgd_core.application.pipeline_local import LocalSyncDriver
from fgd_core.application.replay import history
from fgd_core.config import load_settings
from tests.gitserver import git, init_bare, seed_repo
from tests.resources import vpc

BAD = vpc("vpc-bad", 9).replace(b"vlan: 1009", b"vlan: 99999")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_bare(tmp_path / "fabric.git")


def completed(app: FGDApplication, sync_id: str) -> dict[str, Any]:
    ends = [r.envelope["payload"] for r in history(app, sync_id=sync_id)
            if r.envelope["event_type"] == "sync.completed"]
    assert len(ends) == 1
    return ends[0]


def test_counts_tell_created_from_updated(app: FGDApplication, repo: Path) -> None:
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("vpc-a", 1) + b"---\n" + vpc("vpc-b", 2)})
    fabric = app.register_fabric("lab", str(repo))
    driver = LocalSyncDriver(app, load_settings(environ={}).fgd)
    first = driver.run(fabric.fabric_id)
    assert first.ok
    end = completed(app, first.sync.sync_id)
    assert (end["files_created"], end["files_updated"]) == (2, 0)

    # Both VPCs changed and one new: 1 created, 2 updated (not "3 created").
    seed_repo(repo, {"gitops/raw/b.yaml": vpc("vpc-a", 3) + b"---\n" + vpc("vpc-b", 4)
                     + b"---\n" + vpc("vpc-c", 5)})
    second = driver.run(fabric.fabric_id)
    assert second.ok and second.pushed
    end = completed(app, second.sync.sync_id)
    assert (end["files_created"], end["files_updated"]) == (1, 2)
    published = second.sync.stage_summaries["github_sync"]
    assert (published["files_created"], published["files_updated"]) == (1, 2)
    assert app.get_sync(second.sync.sync_id).files_created == 1
    changed = git("diff", "--name-status", "HEAD~1", "HEAD", "--", "gitops/managed",
                  cwd=repo).split("\n")
    assert sorted(line.split("\t")[0] for line in changed if line) == ["A", "M", "M"]


def test_a_file_still_failing_is_a_warning_with_its_earlier_error(
    app: FGDApplication, repo: Path
) -> None:
    seed_repo(repo, {"gitops/raw/good.yaml": vpc("vpc-a", 1), "gitops/raw/bad.yaml": BAD})
    fabric = app.register_fabric("lab", str(repo))
    driver = LocalSyncDriver(app, load_settings(environ={}).fgd)
    first = driver.run(fabric.fabric_id)
    assert first.ok and first.sync.files["gitops/raw/bad.yaml"]["status"] == "failed"
    error = first.sync.files["gitops/raw/bad.yaml"]["validation_errors"][0]
    assert not [w for w in first.sync.warnings if "still failing" in w["message"]]

    for _ in range(2):  # carried over from a sync that itself only skipped it, too
        again = driver.run(fabric.fabric_id)
        assert again.ok and again.sync.files["gitops/raw/bad.yaml"]["status"] == "skipped"
        warnings = [w for w in again.sync.warnings if w.get("file") == "gitops/raw/bad.yaml"]
        assert len(warnings) == 1 and warnings[0]["code"] == "FGD_1003"
        assert "still failing" in warnings[0]["message"]
        assert error["message"] in warnings[0]["message"]
        assert completed(app, again.sync.sync_id)["warnings"] == len(again.sync.warnings) >= 1
        summary = again.sync.stage_summaries["file_ingestion"]
        assert set(summary["failed_files"]) == {"gitops/raw/bad.yaml"}
        assert summary["failed_errors"]["gitops/raw/bad.yaml"]["message"] == error["message"]
