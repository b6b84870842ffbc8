"""The spec's directory errors where they belong, against real repositories:

- FGD_2002: a local repository this process may not write (a real sync through ``fgd sync``,
  run without the capability that lets root ignore file permissions);
- FGD_2003 / FGD_2004: initialize / repair whose commit the remote refuses (a non-bare
  repository with the branch checked out), over REST and from the service;
- FGD_2001: a GitOps directory missing at the branch head (``require_gitops_directory``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fgd_api.container import Container
from fgd_core.adapters.git_repo import GitRemote
from fgd_core.application.auth import create_token
from fgd_core.application.raw_path import require_gitops_directory
from fgd_core.errors import DirectoryNotFoundError, FGDErrorCodes
from fgd_core.ingestion.plan_inputs import IngestionRules
from tests.gitserver import git, init_bare, seed_repo
from tests.resources import vpc

API = "/api/plugins/hedgehog"
FGD = [sys.executable, "-c", "from fgd_core.cli.main import main; main()"]  # the `fgd` command


def checked_out(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A non-bare repository with ``main`` checked out: git refuses pushes to it."""
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", str(work))
    for path, data in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(data)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "seed", cwd=work)
    return work


def test_repair_and_initialize_whose_push_is_refused_are_fgd_2004_and_2003(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    work = checked_out(tmp_path, {"gitops/raw/a.yaml": vpc("vpc-1", 1)})
    fabric = container.app.register_fabric("lab", str(work))
    key, _ = create_token(container.app, "admin", superuser=True)
    headers = {"Authorization": f"Token {key}"}
    base = f"{API}/fabrics/{fabric.fabric_id}/gitops-directory"
    repaired = client.post(f"{base}/repair/", headers=headers, json={"auto_detect": True})
    assert repaired.status_code == 409, repaired.text
    error = repaired.json()["error"]
    assert error["code"] == FGDErrorCodes.DIRECTORY_REPAIR_FAILED
    assert error["details"]["cause"] == FGDErrorCodes.GITHUB_AUTHENTICATION_FAILED
    assert "checked out" in error["message"]
    initialized = client.post(f"{base}/initialize/", headers=headers, json={})
    assert initialized.status_code == 409, initialized.text
    assert initialized.json()["error"]["code"] == FGDErrorCodes.DIRECTORY_INITIALIZATION_FAILED
    assert git("log", "--oneline", cwd=work).count("\n") == 1  # nothing was pushed


def test_a_local_repository_we_may_not_write_is_fgd_2002(tmp_path: Path) -> None:
    if shutil.which("setpriv") is None:
        raise AssertionError("the test needs setpriv (util-linux)")
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-1", 1)})
    for path in [bare / "objects", *(bare / "objects").rglob("*")]:
        os.chown(path, 65534, 65534)  # nobody's, mode 755: we may read, not write
    env = {**os.environ, "HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"),
           "HOME": str(tmp_path)}
    env.pop("HEDGEHOG_FGD_DATABASE_URL", None)
    # Root ignores file permissions through CAP_DAC_OVERRIDE: run the CLI without it.
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    if os.geteuid() != 0:
        drop = []
    run = subprocess.run([*drop, *FGD, "sync", "--repo", str(bare), "--json"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    status = json.loads(run.stdout)
    assert status["state"] == "failed"
    [error] = [e for e in status["errors"] if e["code"] == "FGD_2002"]
    assert "permission denied" in error["message"] and error["details"]["path"]
    assert not any(e["code"] == "FGD_4001" for e in status["errors"])  # not retried as an outage


def test_a_missing_gitops_directory_is_fgd_2001(tmp_path: Path) -> None:
    bare = init_bare(tmp_path / "fabric.git")
    remote = GitRemote(str(bare))
    rules = IngestionRules(gitops_dir="gitops")
    with pytest.raises(DirectoryNotFoundError) as empty:
        require_gitops_directory(remote.fetch("main"), rules)  # no branch yet
    assert empty.value.code == FGDErrorCodes.DIRECTORY_NOT_FOUND
    seed_repo(bare, {"README.md": b"x\n"})
    with pytest.raises(DirectoryNotFoundError) as missing:
        require_gitops_directory(remote.fetch("main"), rules)
    assert missing.value.details["path"] == "/gitops"
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-1", 1)})
    require_gitops_directory(remote.fetch("main"), rules)
    require_gitops_directory(remote.fetch("main"), rules, "raw")
    with pytest.raises(DirectoryNotFoundError):
        require_gitops_directory(remote.fetch("main"), rules, "managed")
