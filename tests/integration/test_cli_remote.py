"""Remote mode: ``fgd --api URL`` with ``HEDGEHOG_FGD_TOKEN`` runs the commands through a real
``fgd serve`` (uvicorn on 127.0.0.1, embedded SQLite) — the CLI processes have no database
settings, and the test checks they never opened a database of their own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fgd_core.adapters.persistence import persistence_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from tests.gitserver import git, init_bare, seed_repo
from tests.integration.test_console import BAD_VPC
from tests.resources import vpc

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    repo: Path
    client_home: Path

    def fgd(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        """``fgd --api URL ARGS`` as an operator's laptop runs it: a token, no database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEHOG_FGD_")}
        env.update({
            "PYTHONPATH": str(ROOT),
            "HOME": str(self.client_home),
            "HEDGEHOG_FGD_SQLITE_PATH": str(self.client_home / "never.sqlite3"),
            "HEDGEHOG_FGD_TOKEN": token or self.token,
        })
        return subprocess.run(
            [sys.executable, "-m", "fgd_core.cli", "--api", self.url, *args],
            env=env, cwd=self.client_home, capture_output=True, text=True, timeout=120,
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("remote")
    repo = init_bare(tmp / "lab.git")
    seed_repo(repo, {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1) + b"---\n" + vpc("vpc-2", 2)})
    app = FGDApplication(env=persistence_env(None, tmp / "fgd.sqlite3"))
    key, _ = create_token(app, "operator", superuser=True)
    app.close()
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HEDGEHOG_FGD_")},
        "HOME": str(tmp),
        "HEDGEHOG_FGD_SQLITE_PATH": str(tmp / "fgd.sqlite3"),
        "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": f"{tmp}/",
        "PYTHONPATH": str(ROOT),
    }
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115 — closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "fgd_core.cli", "serve", "--port", str(port),
         "--log-level", "warning"],
        env=environ, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp / "serve.log").read_text()
        assert time.monotonic() < deadline, "fgd serve did not come up"
        try:
            if httpx.get(f"{url}/api/plugins/hedgehog/health/").is_success:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    home = tmp / "laptop"
    home.mkdir()
    try:
        yield Server(url, key, repo, home)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        # The CLI processes never made a database of their own.
        assert not (home / "never.sqlite3").exists()
        assert not list(home.rglob("*.sqlite3"))


def lines(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_the_commands_go_through_the_api(server: Server) -> None:
    # Without scheduled syncs: only this test's own syncs run on the fabric.
    registered = lines(server.fgd("fabric", "register", "lab", "--repo", str(server.repo),
                                  "--sync-disabled"))
    assert registered[0]["id"] == 1 and registered[0]["repository"] == str(server.repo)
    assert registered[0]["sync_enabled"] is False
    listed = lines(server.fgd("fabric", "list", "-o", "json"))
    assert [f["name"] for f in listed] == ["lab"]
    shown = yaml.safe_load(server.fgd("fabric", "show", "1", "-o", "yaml").stdout)
    assert shown["id"] == 1 and shown["branch"] == "main"
    updated = lines(server.fgd("fabric", "update", "1", "--interval", "30"))
    assert updated[0]["sync_enabled"] is False
    assert updated[0]["sync_interval_minutes"] == 30
    table = server.fgd("fabric", "list", "-o", "table")
    assert "lab" in table.stdout and "repository" in table.stdout
    # A suspended fabric syncs not at all, not even by hand: resume it (its first sync may
    # then come from the scheduler; fgd sync follows that one when it is running).
    refused = server.fgd("sync", "--repo", str(server.repo), "--json")
    assert refused.returncode == 1 and "FGD_3004" in refused.stderr
    assert lines(server.fgd("fabric", "resume", "1", "-o", "json"))[0]["sync_enabled"] is True

    # fgd sync: finds the fabric by its repository, triggers, follows, prints the status.
    synced = server.fgd("sync", "--repo", str(server.repo), "--json")
    assert synced.returncode == 0, synced.stderr
    status = json.loads(synced.stdout)
    assert status["state"] == "completed" and status["fabric_id"] == 1
    sync_id = str(status["sync_id"])
    assert git("ls-tree", "-r", "--name-only", "main", "gitops/managed",
               cwd=server.repo).split() == ["gitops/managed/vpcs/vpc-1.yaml",
                                            "gitops/managed/vpcs/vpc-2.yaml"]
    summary = server.fgd("sync", "--repo", str(server.repo))  # again: nothing to do
    assert summary.returncode == 0 and "completed" in summary.stderr

    history = lines(server.fgd("history", "1", "-o", "json"))
    # the two of fgd sync, newest first (and the fabric_created one, when the scheduler ran it)
    assert [h["trigger"] for h in history[:2]] == ["manual", "manual"]
    assert history[1]["sync_id"] == sync_id or history[0]["sync_id"] == sync_id
    assert lines(server.fgd("status", sync_id))[0]["state"] == "completed"
    watched = server.fgd("status", sync_id, "--watch", "-o", "json")
    assert watched.returncode == 0 and json.loads(watched.stdout.splitlines()[-1])["state"] \
        == "completed"

    files = lines(server.fgd("files", "1", "--directory", "managed", "-o", "json"))[0]
    assert {f["path"] for f in files["files"]} >= {"/gitops/managed/vpcs/vpc-1.yaml"}
    validated = lines(server.fgd("directory", "validate", "1"))[0]
    assert validated["structure"]["raw"]["exists"] is True

    # fgd process: one new good file (0), then a bad one (3, the file failed).
    seed_repo(server.repo, {"gitops/raw/vpc-3.yaml": vpc("vpc-3", 3),
                            "gitops/raw/bad.yaml": BAD_VPC})
    good = lines(server.fgd("process", "1", "/gitops/raw/vpc-3.yaml"))[0]
    assert good["status"] == "processed" and good["success"] is True
    bad = server.fgd("process", "1", "/gitops/raw/bad.yaml")
    assert bad.returncode == 3, bad.stderr
    assert json.loads(bad.stdout)["status"] == "failed"

    # The audit log is a read model (eventually consistent): wait for the last entry.
    wanted = {"create_fabric", "update_fabric", "trigger_sync", "process_file"}
    deadline = time.monotonic() + 30
    while True:
        audit = lines(server.fgd("audit", "--fabric", "1", "-o", "json"))
        if wanted <= {str(entry["action"]) for entry in audit}:
            break
        assert time.monotonic() < deadline, audit
        time.sleep(0.2)
    assert all(entry["user"] == "operator" for entry in audit)


def test_errors_are_the_apis_readable_and_never_show_the_token(server: Server) -> None:
    wrong = "wrong-" + "x" * 40
    denied = server.fgd("fabric", "list", token=wrong)
    assert denied.returncode == 1
    body = json.loads(denied.stderr)["error"]  # not a terminal: the spec's error body
    assert "HTTP 401" in body["message"]
    assert wrong not in denied.stdout + denied.stderr
    assert server.token not in denied.stdout + denied.stderr

    missing = server.fgd("status", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1
    assert "HTTP 404" in json.loads(missing.stderr)["error"]["message"]

    # Cancelling a sync that has ended: the API's refusal, as an error with its code.
    ended = lines(server.fgd("history", "1", "-o", "json"))[-1]["sync_id"]
    late = server.fgd("cancel", str(ended))
    assert late.returncode == 1, late.stdout
    refusal = json.loads(late.stderr)["error"]
    assert refusal["code"].startswith("FGD_") and "(HTTP 4" in refusal["message"]

    no_token = server.fgd("fabric", "list", token=" ")
    assert no_token.returncode != 0


def test_commands_without_a_remote_form_refuse_api(server: Server) -> None:
    for args in (["config", "check"], ["events"], ["worker", "relay"], ["token", "list"]):
        refused = server.fgd(*args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert "has no remote form" in refused.stderr
    # fgd validate is offline: --api does not concern it.
    assert server.fgd("validate", "--help").returncode == 0
