"""The ``fgd`` command line as a person and a script use it: one output option everywhere,
help for every command and option, readable errors on a terminal, the spec's body otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from fgd_core.cli.main import main


def walk(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, click.Command]]:
    found = [(" ".join(path) or "fgd", command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += walk(sub, (*path, name))
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    for name, command in walk(main):
        if not (command.help or command.short_help):
            missing.append(name)
        for param in command.params:
            if isinstance(param, click.Option) and not param.help and "--help" not in param.opts:
                missing.append(f"{name} {param.opts[-1]}")
    assert missing == []


def test_top_level_help_lists_whole_sentences() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    assert "(e.g.\n" not in out and "Ingest one raw file (e.g." not in out


@pytest.fixture
def synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HEDGEHOG_FGD_SQLITE_PATH", str(tmp_path / "fgd.sqlite3"))
    monkeypatch.delenv("HEDGEHOG_FGD_DATABASE_URL", raising=False)
    runner = CliRunner()
    repo = tmp_path / "repo.git"
    assert runner.invoke(main, ["example-repo", str(repo)]).exit_code == 0
    done = runner.invoke(main, ["sync", "--repo", str(repo), "--json"])
    assert done.exit_code == 0, done.output
    return runner


def test_output_formats(synced: CliRunner) -> None:
    lines = synced.invoke(main, ["history", "1", "-o", "json"]).output.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["state"] == "completed"
    listed = yaml.safe_load(synced.invoke(main, ["fabric", "list", "-o", "yaml"]).output)
    assert listed[0]["id"] == 1 and listed[0]["last_sync_status"] == "completed"
    table = synced.invoke(main, ["fabric", "list", "-o", "table"]).output
    assert "repository" in table and "completed" in table and not table.startswith("{")
    # Not a terminal and no -o: JSON, one document per line.
    status = json.loads(synced.invoke(main, ["status", json.loads(lines[0])["sync_id"]]).output)
    assert status["state"] == "completed"
    config = json.loads(synced.invoke(main, ["config", "check"]).output)
    assert "fgd" in config and "sqlite_path" in config


def test_events_hide_bookkeeping_unless_all(synced: CliRunner) -> None:
    shown = [json.loads(x)["event_type"] for x in
             synced.invoke(main, ["events", "-o", "json"]).output.splitlines()]
    every = [json.loads(x)["event_type"] for x in
             synced.invoke(main, ["events", "--all", "-o", "json"]).output.splitlines()]
    assert "fabric.syncing" not in shown and "capacity.acquired" not in shown
    assert "fabric.syncing" in every and "sync.completed" in shown
    assert len(every) > len(shown)
    table = synced.invoke(main, ["events", "--fabric", "1", "-o", "table"]).output
    assert "stage.started" in table and "file_ingestion" in table and "raw/vpcs.yaml" in table


def test_errors_readable_on_a_terminal_json_for_scripts(synced: CliRunner) -> None:
    from fgd_core.cli.common import error_line
    from fgd_core.errors import NotFoundError, ValidationError

    piped = synced.invoke(main, ["status", "no-such-sync"])
    assert piped.exit_code == 1
    assert json.loads(piped.stderr)["error"]["code"] == "FGD_1003"
    assert error_line(NotFoundError("sync x not found")) == (
        "error FGD_1003 (not found): sync x not found"
    )
    named = ValidationError("must be a branch name", details={"field": "branch"})
    assert error_line(named) == "error FGD_1003: must be a branch name [field branch]"


def test_audit_lists_entries_newest_first_with_filters(
    synced: CliRunner, tmp_path: Path
) -> None:
    from fgd_core.application.audit_log import audit_entry
    from fgd_core.bootstrap import build_app

    app = build_app()
    try:
        for user, fabric in (("alice", 1), ("bob", 2), ("alice", 2)):
            app.save(audit_entry(user=None, action=f"act-{user}-{fabric}", fabric_id=fabric,
                                 ip_address="127.0.0.1", user_agent="t", sync_id=None,
                                 details={}, success=True, error_message="",
                                 correlation_id=None))
    finally:
        app.close()
    rows = [json.loads(x) for x in synced.invoke(main, ["audit", "-o", "json"]).output.splitlines()]
    assert [r["action"] for r in rows][:3] == ["act-alice-2", "act-bob-2", "act-alice-1"]
    only = [json.loads(x) for x in
            synced.invoke(main, ["audit", "--fabric", "2", "--limit", "1", "-o", "json"])
            .output.splitlines()]
    assert [r["action"] for r in only] == ["act-alice-2"]


BAD_VPC = b"""apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: broken
spec:
  subnets:
    default:
      subnet: 10.0.0.0/24
      gateway: 10.0.0.1
      vlan: 99999
"""


def test_sync_exit_status_tells_ci_about_failing_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fgd_core.adapters.git_repo import GitRemote

    monkeypatch.setenv("HEDGEHOG_FGD_SQLITE_PATH", str(tmp_path / "fgd.sqlite3"))
    monkeypatch.delenv("HEDGEHOG_FGD_DATABASE_URL", raising=False)
    runner = CliRunner()
    repo = tmp_path / "repo.git"
    assert runner.invoke(main, ["example-repo", str(repo)]).exit_code == 0
    remote = GitRemote(str(repo))
    base = remote.fetch("main")
    sha = remote.commit(base, {"gitops/raw/bad.yaml": BAD_VPC}, "a bad file", "t <t@t>")
    remote.push(sha, "main", base.head)

    first = runner.invoke(main, ["sync", "--repo", str(repo)])
    assert first.exit_code == 3, first.output  # the good files landed, bad.yaml did not
    assert "still failing" in first.stderr and "gitops/raw/bad.yaml" in first.stderr
    again = runner.invoke(main, ["sync", "--repo", str(repo)])
    assert again.exit_code == 3, again.output  # skipped as unchanged: still failing
    # ... shown again with its earlier error, and counted as a warning of the sync.
    assert "still failing gitops/raw/bad.yaml: FGD_1003" in " ".join(again.stderr.split())
    assert "less than or equal to" in " ".join(again.stderr.split())

    base = remote.fetch("main")
    sha = remote.commit(base, {"gitops/raw/bad.yaml": None}, "drop it", "t <t@t>")
    remote.push(sha, "main", base.head)
    clean = runner.invoke(main, ["sync", "--repo", str(repo)])
    assert clean.exit_code == 0, clean.output


def test_status_watch_follows_a_running_sync_to_its_end(synced: CliRunner) -> None:
    import threading
    import time

    from fgd_core.bootstrap import build_app

    app = build_app()
    try:
        sync = app.start_sync(1, "manual", {})

        def run_it() -> None:
            time.sleep(0.6)  # the watcher is following by now
            for stage in ("validation", "discovery"):
                app.begin_stage(sync.sync_id, stage)
                app.complete_stage(sync.sync_id, stage, {})
            app.fail_sync(sync.sync_id, "FGD_4001", "git host unreachable")

        worker = threading.Thread(target=run_it)
        worker.start()
        watched = synced.invoke(main, ["status", sync.sync_id, "--watch", "-o", "table"])
        worker.join()
    finally:
        app.close()
    assert watched.exit_code == 1, watched.output
    lines = watched.output.splitlines()
    events = [line.split()[1] for line in lines if line[:2].isdigit()]
    assert events[0] == "sync.started" and events[-1] == "sync.failed"
    assert "stage.started" in events and "stage.completed" in events
    assert "failed" in watched.output.split("sync.failed", 1)[1]  # then the final status


def test_fabric_lifecycle_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """register runs the fabric_created sync here (embedded default); suspend refuses a
    sync; delete needs --yes off a terminal, keeps the history, frees the place."""
    from tests.gitserver import git

    monkeypatch.setenv("HEDGEHOG_FGD_SQLITE_PATH", str(tmp_path / "fgd.sqlite3"))
    monkeypatch.delenv("HEDGEHOG_FGD_DATABASE_URL", raising=False)
    monkeypatch.delenv("HEDGEHOG_FGD_BROKER_URL", raising=False)
    runner = CliRunner()
    repo = tmp_path / "repo.git"
    assert runner.invoke(main, ["example-repo", str(repo)]).exit_code == 0
    before = git("rev-parse", "main", cwd=repo).strip()

    done = runner.invoke(main, ["fabric", "register", "lab", "--repo", str(repo), "-o", "json"])
    assert done.exit_code == 0, done.output
    fabric = json.loads(done.output)
    first = fabric["initial_sync"]
    assert (first["trigger"], first["state"]) == ("fabric_created", "completed")
    assert fabric["last_sync_status"] == "completed"
    pushed = git("rev-parse", "main", cwd=repo).strip()
    assert pushed != before

    assert runner.invoke(main, ["fabric", "suspend", "1", "-o", "json"]).exit_code == 0
    refused = runner.invoke(main, ["sync", "--repo", str(repo), "--json"])
    assert refused.exit_code == 1
    assert json.loads(refused.output.strip().splitlines()[-1])["error"]["code"] == "FGD_3004"
    resumed = runner.invoke(main, ["fabric", "resume", "1", "-o", "json"])
    assert json.loads(resumed.output)["sync_enabled"] is True

    unconfirmed = runner.invoke(main, ["fabric", "delete", "1"])
    assert unconfirmed.exit_code != 0 and "--yes" in unconfirmed.output
    listed = runner.invoke(main, ["fabric", "list", "-o", "json"]).output.splitlines()
    assert [json.loads(line)["id"] for line in listed] == [1]  # not deleted unconfirmed
    deleted = runner.invoke(main, ["fabric", "delete", "1", "--yes", "-o", "json"])
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.output) == {"fabric_id": 1, "name": "lab", "deleted": True,
                                          "cancelled_sync_id": None}
    assert runner.invoke(main, ["fabric", "list", "-o", "json"]).output == ""
    missing = runner.invoke(main, ["fabric", "delete", "1", "--yes"])
    assert missing.exit_code == 1 and json.loads(missing.output)["error"]["code"] == "FGD_1003"
    # Its history stays; its repository is untouched.
    kept = runner.invoke(main, ["history", "1", "-o", "json"]).output.splitlines()
    assert [json.loads(line)["trigger"] for line in kept] == ["fabric_created"]
    shown = runner.invoke(main, ["events", "--fabric", "1", "-o", "json"]).output
    assert '"fabric.deleted"' in shown and '"fabric.registered"' in shown
    assert git("rev-parse", "main", cwd=repo).strip() == pushed
    # Its place can be registered again: a new fabric, a new id.
    again = runner.invoke(main, ["fabric", "register", "lab", "--repo", str(repo),
                                 "--sync-disabled", "-o", "json"])
    assert again.exit_code == 0, again.output
    assert (json.loads(again.output)["id"], json.loads(again.output)["initial_sync"]) == (2, None)
