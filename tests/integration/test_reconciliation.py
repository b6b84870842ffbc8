"""Reconciliation checks what the push left on the branch, against a real git smart-HTTP
server whose ``post-receive`` hook changes the branch right after the sync's push (as a
concurrent pusher or a server-side rewrite would), and the fabric's directory state follows
the repository after ordinary syncs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fgd_core.application.app import FGDApplication
from fgd_core.application.pipeline_local import LocalSyncDriver
from fgd_core.config import load_settings
from tests.gitserver import GitHTTPServer, git, init_bare, seed_repo
from tests.resources import vpc

# Runs in the bare repository after each accepted push; acts only on the sync's own commit.
HOOK_HEAD = """#!/bin/sh
read old new ref
git log -1 --format=%B "$new" | grep -q '^FGD-Sync-Id:' || exit 0
"""
# The branch loses the sync's commit (reset to where it was: a force-push by someone else).
RESET = HOOK_HEAD + 'git update-ref "$ref" "$old" "$new"\n'
# Someone commits on top of the sync's commit, changing managed/.
INTRUDE = HOOK_HEAD + """export GIT_INDEX_FILE="$(mktemp -u)"
git read-tree "$new"
blob=$(printf 'kind: VPC\\nmetadata: {name: intruder}\\n' | git hash-object -w --stdin)
git update-index --add --cacheinfo "100644,$blob,gitops/managed/vpcs/intruder.yaml"
tree=$(git write-tree)
c=$(GIT_AUTHOR_NAME=x GIT_AUTHOR_EMAIL=x@x GIT_COMMITTER_NAME=x GIT_COMMITTER_EMAIL=x@x \\
    git commit-tree "$tree" -p "$new" -m intruder)
git update-ref "$ref" "$c" "$new"
rm -f "$GIT_INDEX_FILE"
"""
# Someone commits on top of the sync's commit, leaving managed/ alone.
ALONGSIDE = INTRUDE.replace("gitops/managed/vpcs/intruder.yaml", "docs/notes.yaml")


@pytest.fixture
def served(tmp_path: Path) -> Any:
    with GitHTTPServer(tmp_path / "srv") as server:
        bare = init_bare(tmp_path / "srv" / "fabric.git")
        seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
        yield server, bare


def hook(bare: Path, script: str) -> None:
    path = bare / "hooks" / "post-receive"
    path.write_text(script)
    path.chmod(0o755)


def sync(app: FGDApplication, url: str) -> Any:
    fabric = app.register_fabric("lab", url)
    driver = LocalSyncDriver(app, load_settings(environ={}).fgd)
    return fabric, driver.run(fabric.fabric_id)


def test_a_push_that_landed_is_verified_and_the_fabric_is_initialized(
    app: FGDApplication, served: Any
) -> None:
    server, bare = served
    fabric, result = sync(app, server.url("fabric.git"))
    assert result.ok and result.pushed
    verified = result.sync.stage_summaries["reconciliation"]
    head = git("rev-parse", "main", cwd=bare).strip()
    managed = git("rev-parse", "main:gitops/managed", cwd=bare).strip()
    assert verified["verified"] is True and "problem" not in verified
    assert (verified["head"], verified["commit"], verified["managed_tree"]) == (
        head, head, managed)
    assert result.sync.stage_summaries["github_sync"]["managed_tree"] == managed
    # The first sync of a fresh repository made the directory: the fabric says so.
    after = app.get_fabric(fabric.fabric_id)
    assert after.gitops_initialized is True
    assert after.gitops_directory_status == "valid"


def test_a_branch_that_lost_the_commit_fails_the_sync(
    app: FGDApplication, served: Any
) -> None:
    server, bare = served
    before = git("rev-parse", "main", cwd=bare).strip()
    hook(bare, RESET)
    _, result = sync(app, server.url("fabric.git"))
    assert git("rev-parse", "main", cwd=bare).strip() == before  # the hook undid the push
    assert result.sync.state == "failed"
    error = result.sync.errors[-1]
    assert error["code"] == "FGD_3004" and "does not contain" in error["message"]
    assert error["details"]["stage"] == "reconciliation"
    assert error["details"]["head"] == before
    assert error["details"]["commit"] == result.commit


def test_managed_changed_after_the_push_completes_with_a_warning(
    app: FGDApplication, served: Any
) -> None:
    server, bare = served
    hook(bare, INTRUDE)
    _, result = sync(app, server.url("fabric.git"))
    head = git("rev-parse", "main", cwd=bare).strip()
    assert head != result.commit
    assert result.sync.state == "completed"
    verified = result.sync.stage_summaries["reconciliation"]
    assert verified["verified"] is True and verified["head"] == head
    assert verified["managed_at_head"] != verified["managed_tree"]
    warnings = [w for w in result.sync.warnings if "reconciliation" in w["message"]]
    assert len(warnings) == 1 and warnings[0]["code"] == "FGD_3004"
    assert "changed" in warnings[0]["message"]


def test_a_commit_on_top_that_leaves_managed_alone_is_no_warning(
    app: FGDApplication, served: Any
) -> None:
    server, bare = served
    hook(bare, ALONGSIDE)
    _, result = sync(app, server.url("fabric.git"))
    assert git("rev-parse", "main", cwd=bare).strip() != result.commit
    assert result.sync.state == "completed"
    verified = result.sync.stage_summaries["reconciliation"]
    assert verified["verified"] is True and "problem" not in verified
    assert verified["managed_at_head"] == verified["managed_tree"]
    assert not [w for w in result.sync.warnings if "reconciliation" in w["message"]]
