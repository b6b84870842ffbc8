"""Whole syncs against real git repositories (bare repo on disk, smart HTTP on 127.0.0.1)
and the real event store (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fgd_core.adapters.git_repo import GitRemote
from fgd_core.adapters.testing import RecordingEventBus
from fgd_core.application.app import FGDApplication
from fgd_core.application.replay import history
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.config import load_settings
from tests.gitserver import GitHTTPServer, git, init_bare, seed_repo
from tests.paths import HEDGEHOG_FIXTURES
from tests.resources import vpc

FIXTURES = HEDGEHOG_FIXTURES


def tree(bare: Path) -> list[str]:
    return git("ls-tree", "-r", "--name-only", "main", cwd=bare).split()


def commits(bare: Path) -> int:
    return int(git("rev-list", "--count", "main", cwd=bare))


@pytest.fixture
def config():  # type: ignore[no-untyped-def]
    return load_settings(environ={}).fgd


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_bare(tmp_path / "fabric.git")


def runner_for(app: FGDApplication, config: Any, **kw: Any) -> SyncRunner:
    return SyncRunner(app, config, **kw)


def test_fixture_files_sync_into_one_commit_and_rerun_changes_nothing(
    app: FGDApplication, config: Any, repo: Path
) -> None:
    names = ["demogitops_env-1_pre-demo.yaml", "demogitops_env-1_demo.yaml",
             "demogitops_env-1_demo.reset.yaml", "labci_env-ci-1_wiring-gateway.yaml",
             "docs_user-guide_vpcs_examples.yaml", "hnp_vlab_prepop_wiring.yaml"]
    seed_repo(repo, {f"gitops/raw/{n}": (FIXTURES / n).read_bytes() for n in names})
    fabric = app.register_fabric("lab", str(repo))
    bus = RecordingEventBus().attach(app)

    result = runner_for(app, config).run(fabric.fabric_id)
    assert result.ok and result.pushed and commits(repo) == 2
    files = tree(repo)
    per_dir = Counter(p.split("/")[2] for p in files if p.startswith("gitops/managed/"))
    # prepop wiring: 3 SwitchGroup, 7 Switch, 10 Server, 26 Connection. The demo VPC files
    # attach to connections this wiring does not have: they would break the fabric.
    assert per_dir == {"switch-groups": 3, "switches": 7, "servers": 10, "connections": 26}
    archived = {p for p in files if p.endswith(".archived")}
    assert archived == {f"gitops/raw/{n}.archived" for n in names[2:3] + names[-1:]}
    # Failed files stay in raw/, untouched, with their errors reported per document.
    assert "gitops/raw/labci_env-ci-1_wiring-gateway.yaml" in files
    failed = {f["file_path"]: f for f in result.sync.files.values() if f["status"] == "failed"}
    fabric_breakers = {"gitops/raw/demogitops_env-1_pre-demo.yaml",
                       "gitops/raw/demogitops_env-1_demo.yaml"}
    assert set(failed) == {"gitops/raw/labci_env-ci-1_wiring-gateway.yaml",
                           "gitops/raw/docs_user-guide_vpcs_examples.yaml"} | fabric_breakers
    gateway = failed["gitops/raw/labci_env-ci-1_wiring-gateway.yaml"]["validation_errors"]
    assert {e["code"] for e in gateway} == {"FGD_1002"} and all("line" in e for e in gateway)
    dup = failed["gitops/raw/docs_user-guide_vpcs_examples.yaml"]["validation_errors"]
    assert sum("conflict" in e["message"] for e in dup) == 2
    pre = failed["gitops/raw/demogitops_env-1_pre-demo.yaml"]["validation_errors"]
    assert {(e["rule"], e["field"], e["index"]) for e in pre} == {
        ("vpcattachment.connection-exists", "spec.connection", 2),
        ("vpcattachment.connection-exists", "spec.connection", 3),
    }
    assert all(e["code"] == "FGD_1003" and e["line"] for e in pre)
    bus.assert_event_published("file.processed",
                               file_path="gitops/raw/demogitops_env-1_demo.reset.yaml",
                               documents_extracted=0)
    assert len(bus.of_type("file.discovered")) == len(names)

    # Unchanged repository: the next sync commits nothing; files that failed on their own
    # are skipped, files that would break the fabric are checked again (the fabric may have
    # changed meanwhile, as for a conflict with another file).
    again = runner_for(app, config).run(fabric.fabric_id)
    assert again.ok and again.commit is None and commits(repo) == 2
    statuses = {f["file_path"]: f["status"] for f in again.sync.files.values()}
    assert {p for p, s in statuses.items() if s == "failed"} == fabric_breakers
    assert {s for p, s in statuses.items() if p not in fabric_breakers} == {"skipped"}
    git("fsck", "--strict", cwd=repo)


def test_a_fixed_file_lands_and_an_updated_resource_keeps_its_path(
    app: FGDApplication, config: Any, repo: Path
) -> None:
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
    fabric = app.register_fabric("lab", str(repo))
    runner = runner_for(app, config)
    assert runner.run(fabric.fabric_id).ok
    seed_repo(repo, {"gitops/raw/b.yaml": vpc("vpc-a", 2)})  # same VPC, new subnet
    result = runner.run(fabric.fabric_id)
    assert result.ok and result.plan is not None
    assert [w.action for w in result.plan.changed_writes] == ["update"]
    files = tree(repo)
    assert [p for p in files if "managed/vpcs" in p] == ["gitops/managed/vpcs/vpc-a.yaml"]
    managed = git("show", "main:gitops/managed/vpcs/vpc-a.yaml", cwd=repo)
    assert "10.0.2.0/24" in managed
    provenance = git("show", "main:gitops/.hnp/provenance.json", cwd=repo)
    assert "gitops/raw/b.yaml" in provenance and result.sync.sync_id in provenance


def test_hostile_raw_file_changes_nothing(app: FGDApplication, config: Any, repo: Path) -> None:
    bomb = b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n" + b"".join(
        b"%c: &%c [%s]\n" % (c, c, b",".join([b"*" + bytes([c - 1])] * 9))
        for c in range(ord("c"), ord("k"))
    )
    seed_repo(repo, {"gitops/raw/bomb.yaml": bomb,
                     "gitops/raw/tags.yaml": b"!!python/object:os.system {}\n",
                     "gitops/raw/bad-utf8.yaml": b"kind: VPC\nname: \xff\xfe\n"})
    before = git("rev-parse", "main", cwd=repo).strip()
    fabric = app.register_fabric("lab", str(repo))
    result = runner_for(app, config).run(fabric.fabric_id)
    assert result.ok and result.commit is None
    assert git("rev-parse", "main", cwd=repo).strip() == before
    codes = {e["file"]: e["code"] for e in result.sync.errors}
    assert codes == {"gitops/raw/bomb.yaml": "FGD_1001", "gitops/raw/tags.yaml": "FGD_1001",
                     "gitops/raw/bad-utf8.yaml": "FGD_1001"}


def test_validate_only_reports_the_plan_and_changes_nothing(
    app: FGDApplication, config: Any, repo: Path
) -> None:
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("vpc-a", 1) + b"---\n" + vpc("vpc-b", 2)})
    before = git("rev-parse", "main", cwd=repo).strip()
    fabric = app.register_fabric("lab", str(repo))
    result = runner_for(app, config).run(fabric.fabric_id, options={"validate_only": True})
    assert result.ok and result.commit is None
    assert git("rev-parse", "main", cwd=repo).strip() == before
    plan = result.plan.to_dict()  # type: ignore[union-attr]
    assert {w["path"] for w in plan["writes"]} == {
        "gitops/managed/vpcs/vpc-a.yaml", "gitops/managed/vpcs/vpc-b.yaml"}
    assert plan["archives"] == [{"raw_path": "gitops/raw/a.yaml",
                                 "archived_to": "gitops/raw/a.yaml.archived"}]


class MovingRemote(GitRemote):
    """A remote that someone else pushes to between our fetch and our push."""

    def __init__(self, *args: Any, outsider: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.outsider = outsider

    def push(self, sha: str, branch: str, expected_old_sha: str | None) -> None:
        if self.outsider is not None:
            self.outsider(), setattr(self, "outsider", None)
        super().push(sha, branch, expected_old_sha)


def test_remote_moved_before_push_rebuilds_on_the_new_base(
    app: FGDApplication, config: Any, repo: Path
) -> None:
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
    fabric = app.register_fabric("lab", str(repo))
    outsider = lambda: seed_repo(repo, {"docs/NOTES.md": b"someone else's push\n"})  # noqa: E731
    runner = runner_for(app, config,
                        remote_factory=lambda f: MovingRemote(f.repository, outsider=outsider))
    result = runner.run(fabric.fabric_id)
    assert result.ok and result.pushed
    files = tree(repo)
    assert "docs/NOTES.md" in files and "gitops/managed/vpcs/vpc-a.yaml" in files
    assert commits(repo) == 3  # seed, the outsider's push, ours on top
    assert any(e["code"] == "FGD_3004" for e in result.sync.errors)  # the retry is recorded


def test_cancel_before_push_leaves_the_repository_as_it_was(
    app: FGDApplication, config: Any, repo: Path
) -> None:
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
    before = git("rev-parse", "main", cwd=repo).strip()
    fabric = app.register_fabric("lab", str(repo))

    def cancel_after_ingestion(stored: list) -> None:  # type: ignore[type-arg]
        for _, env in stored:
            payload = env["payload"]
            if env["event_type"] == "stage.completed" and payload["stage"] == "file_ingestion":
                app.cancel_sync(env["payload"]["sync_id"], "operator said stop")

    app.subscribe(cancel_after_ingestion)
    result = runner_for(app, config).run(fabric.fabric_id)
    assert result.sync.state == "cancelled"
    assert git("rev-parse", "main", cwd=repo).strip() == before
    assert app.get_fabric(fabric.fabric_id).running_sync_id is None


def test_timeout_fails_the_sync_with_3002(app: FGDApplication, repo: Path) -> None:
    config = load_settings(environ={"HEDGEHOG_FGD_SYNC_TIMEOUT": "1"}).fgd
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
    before = git("rev-parse", "main", cwd=repo).strip()
    fabric = app.register_fabric("lab", str(repo))

    class SlowRemote(GitRemote):
        def fetch(self, branch: str) -> Any:
            time.sleep(1.2)
            return super().fetch(branch)

    result = runner_for(app, config, remote_factory=lambda f: SlowRemote(f.repository)).run(
        fabric.fabric_id)
    assert result.sync.state == "timed_out"
    assert result.sync.errors[-1]["code"] == "FGD_3002"
    assert git("rev-parse", "main", cwd=repo).strip() == before
    assert app.get_fabric(fabric.fabric_id).failed_sync_count == 1


def test_sync_over_https_with_a_token_sent_only_to_the_token_hosts(
    app: FGDApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "s3cr3t-token-value"
    with GitHTTPServer(tmp_path / "srv", token=token, tls=True) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))  # trust the test server
        bare = init_bare(tmp_path / "srv" / "fabric.git")
        seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
        fabric = app.register_fabric("lab", server.url("fabric.git"))
        host = f"127.0.0.1:{server.port}"
        config = load_settings(environ={"HEDGEHOG_FGD_GITHUB_TOKEN_HOSTS": host}).fgd
        result = runner_for(app, config, token=token).run(fabric.fabric_id)
        assert result.ok and result.pushed
        assert "gitops/managed/vpcs/vpc-a.yaml" in tree(bare)

        denied = runner_for(app, config, token="wrong").run(fabric.fabric_id)
        assert denied.sync.state == "failed"
        assert denied.sync.errors[-1]["code"] == "FGD_4002"

        # The same https server, not among the token hosts (default github.com): no token.
        server.auth_headers.clear()
        default = load_settings(environ={}).fgd
        unsent = runner_for(app, default, token=token).run(fabric.fabric_id)
        assert unsent.sync.errors[-1]["code"] == "FGD_4002"
        assert server.auth_headers and set(server.auth_headers) == {None}
    for recorded in history(app):
        assert token not in str(recorded.envelope)


def test_a_sync_a_worker_began_is_left_to_it(app: FGDApplication, config: Any, repo: Path) -> None:
    """Whoever begins validation owns the sync: the in-process runner neither runs nor fails
    a sync a bus worker already took."""
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
    before = git("rev-parse", "main", cwd=repo).strip()
    fabric = app.register_fabric("lab", str(repo))
    sync = app.start_sync(fabric.fabric_id)
    app.begin_stage(sync.sync_id, "validation")  # a worker got there first
    result = runner_for(app, config).execute(sync.sync_id)
    assert result.sync.state == "processing" and result.sync.errors == []
    assert result.sync.current_stage == "validation"
    assert git("rev-parse", "main", cwd=repo).strip() == before


def test_distributed_steps_decide_conflicts_like_the_embedded_runner(
    app: FGDApplication, config: Any, tmp_path: Path
) -> None:
    """File A defines vpc-x twice (fails on its own), file B defines vpc-x once: embedded,
    A's documents still count in the cross-file check, so B fails too. The distributed
    steps (discover → ingest per file → publish) must decide the same."""
    from fgd_core.application.steps import DONE, SyncSteps

    files = {"gitops/raw/a.yaml": vpc("vpc-x", 1) + b"---\n" + vpc("vpc-x", 2),
             "gitops/raw/b.yaml": vpc("vpc-x", 3) + b"---\n" + vpc("vpc-y", 4),
             "gitops/raw/c.yaml": vpc("vpc-z", 5)}
    embedded_repo, steps_repo = init_bare(tmp_path / "e.git"), init_bare(tmp_path / "s.git")
    seed_repo(embedded_repo, files)
    seed_repo(steps_repo, files)
    embedded = runner_for(app, config).run(app.register_fabric("e", str(embedded_repo)).fabric_id)

    fabric = app.register_fabric("s", str(steps_repo))
    sync_id = app.start_sync(fabric.fabric_id).sync_id
    assert SyncSteps(app, config).discover(sync_id) == DONE
    for path, record in sorted(app.get_sync(sync_id).files.items()):
        assert SyncSteps(app, config).ingest(sync_id, path, record["blob_id"]) == DONE
    assert SyncSteps(app, config).publish(sync_id) == DONE

    distributed = app.get_sync(sync_id)
    status = {p: f["status"] for p, f in distributed.files.items()}
    assert status == {p: f["status"] for p, f in embedded.sync.files.items()}
    assert status == {"gitops/raw/a.yaml": "failed", "gitops/raw/b.yaml": "failed",
                      "gitops/raw/c.yaml": "processed"}
    assert tree(steps_repo) == tree(embedded_repo)


def test_hedgehog_rule_errors_reach_the_recorded_events(
    app: FGDApplication, config: Any, repo: Path
) -> None:
    # A VPC Hedgehog refuses (a subnet without vlan) stays in raw/ with the rule it broke;
    # one Hedgehog accepts only after its defaults (attachment "subnet: vpc-a") lands as
    # written.
    no_vlan = vpc("vpc-b", 2).replace(b"      vlan: 1002\n", b"")
    attach = (
        b"apiVersion: vpc.githedgehog.com/v1beta1\nkind: VPCAttachment\nmetadata:\n"
        b"  name: vpc-a--server-1\nspec:\n  connection: server-1--unbundled--leaf-1\n"
        b"  subnet: vpc-a\n"
    )
    seed_repo(repo, {"gitops/raw/bad.yaml": vpc("vpc-a", 1) + b"---\n" + no_vlan,
                     "gitops/raw/attach.yaml": attach})
    fabric = app.register_fabric("lab", str(repo))
    bus = RecordingEventBus().attach(app)
    result = runner_for(app, config).run(fabric.fabric_id)
    assert result.ok
    files = tree(repo)
    assert "gitops/raw/bad.yaml" in files and "gitops/managed/vpcs/vpc-a.yaml" not in files
    [failed] = bus.of_type("file.failed")
    [error] = failed.payload["errors"]
    assert error["rule"] == "vpc.subnet.vlan-required"
    assert (error["field"], error["index"]) == ("spec.subnets.default.vlan", 1)
    assert error["message"] == "a subnet needs a vlan unless hostBGP is set"
    managed = git("show", "main:gitops/managed/vpc-attachments/vpc-a--server-1.yaml", cwd=repo)
    assert "subnet: vpc-a\n" in managed  # the user's document, not the defaulted one
