"""The in-process driver and the pipeline's one commit-and-push loop, against the fake remote
and an SQLite event store in a temporary folder (no service needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fgd_core.application import FGDApplication
from fgd_core.config import FGDConfig, load_settings
from fgd_core.gitops.git_repo import RemoteMovedError, Snapshot
from fgd_core.persistence import persistence_env
from fgd_core.services.pipeline_common import commit_and_push
from fgd_core.services.pipeline_local import LocalSyncDriver
from fgd_core.testing import FakeGitRemote, RecordingEventBus
from tests.resources import vpc


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FGDApplication]:
    application = FGDApplication(env=persistence_env(None, tmp_path / "fgd.sqlite3"))
    yield application
    application.close()


@pytest.fixture
def config() -> FGDConfig:
    return load_settings(environ={}).fgd


def test_a_cross_file_conflict_is_rejected_at_publish_in_process_too(
    app: FGDApplication, config: FGDConfig
) -> None:
    remote = FakeGitRemote(files={"gitops/raw/a.yaml": vpc("vpc-x", 1),
                                  "gitops/raw/b.yaml": vpc("vpc-x", 2),
                                  "gitops/raw/c.yaml": vpc("vpc-c", 3)})
    bus = RecordingEventBus().attach(app)
    fabric = app.register_fabric("lab", remote.url)
    result = LocalSyncDriver(app, config, remote_factory=lambda f: remote).run(fabric.fabric_id)
    assert result.ok and result.pushed and remote.head() == result.commit
    # Each file is planned alone (as a bus worker plans it), so both land as processed
    # first and are then withdrawn by publish: the same events as with the workers.
    assert {e.payload["file_path"] for e in bus.of_type("file.processed")} == {
        "gitops/raw/a.yaml", "gitops/raw/b.yaml", "gitops/raw/c.yaml"}
    assert {e.payload["file_path"] for e in bus.of_type("file.rejected")} == {
        "gitops/raw/a.yaml", "gitops/raw/b.yaml"}
    files = remote.files()
    assert "gitops/managed/vpcs/vpc-c.yaml" in files and "gitops/managed/vpcs/vpc-x.yaml" \
        not in files
    assert "gitops/raw/a.yaml" in files and "gitops/raw/c.yaml.archived" in files
    assert result.plan is not None and [a.raw_path for a in result.plan.archives] == [
        "gitops/raw/c.yaml"]


def test_only_paths_discovers_those_files_alone(app: FGDApplication, config: FGDConfig) -> None:
    remote = FakeGitRemote(files={"gitops/raw/a.yaml": vpc("vpc-a", 1),
                                  "gitops/raw/b.yaml": vpc("vpc-b", 2)})
    fabric = app.register_fabric("lab", remote.url)
    driver = LocalSyncDriver(app, config, remote_factory=lambda f: remote)
    result = driver.run(fabric.fabric_id, only_paths=["gitops/raw/b.yaml"])
    assert result.ok and set(result.sync.files) == {"gitops/raw/b.yaml"}
    assert "gitops/raw/a.yaml" in remote.files() and "gitops/raw/b.yaml" not in remote.files()


def test_commit_and_push_rebuilds_on_a_moved_remote() -> None:
    remote = FakeGitRemote(files={"README.md": b"x\n"})
    base = remote.fetch("main")
    remote.commit_files({"theirs.txt": b"theirs\n"})  # someone pushed meanwhile
    moved: list[RemoteMovedError] = []
    bases: list[str | None] = []

    def build(snapshot: Snapshot) -> tuple[dict[str, bytes | None], str]:
        bases.append(snapshot.head)
        return {"mine.txt": b"mine\n"}, "ours"

    done = commit_and_push(remote, "main", base, build, attempts=3, on_moved=moved.append)
    assert done.pushed and remote.head() == done.commit and len(moved) == 1
    assert bases[0] == base.head and bases[1] != base.head  # built again on the new head
    assert {"theirs.txt", "mine.txt"} <= set(remote.files())


def test_commit_and_push_gives_up_after_its_attempts_and_changes_nothing() -> None:
    remote = FakeGitRemote(files={"README.md": b"x\n"})
    base = remote.fetch("main")
    head = remote.commit_files({"theirs.txt": b"theirs\n"})
    with pytest.raises(RemoteMovedError):
        commit_and_push(remote, "main", base,
                        lambda s: ({"mine.txt": b"mine\n"}, "ours"), attempts=1)
    assert remote.head() == head


def test_commit_and_push_commits_nothing_when_nothing_changes() -> None:
    remote = FakeGitRemote(files={"README.md": b"x\n"})
    base = remote.fetch("main")
    done = commit_and_push(remote, "main", base, lambda s: ({}, "ours"), attempts=3)
    assert done.commit is None and not done.pushed and remote.head() == base.head
    assert [c[0] for c in remote.calls] == ["fetch"]
