"""Fabric-wide validation through real syncs on real git repositories (the embedded
runner; the distributed engine is driven in test_workers.py), directory validation of a
managed/ tree broken by hand, and the README's ``fgd example-repo`` flow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fgd_core.adapters.git_repo import GitRemote
from fgd_core.application.app import FGDApplication
from fgd_core.application.directory import validate_directory
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.config import load_settings
from tests.gitserver import git, init_bare, seed_repo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DANGLING = b"""\
apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: lonely
spec:
  subnets:
    default:
      subnet: 10.10.200.0/24
      vlan: 1200
---
apiVersion: vpc.githedgehog.com/v1beta1
kind: VPCAttachment
metadata:
  name: lonely--server-99
spec:
  connection: server-99--unbundled--leaf-01
  subnet: lonely/default
"""


@pytest.fixture
def config() -> Any:
    return load_settings(environ={}).fgd


def tree(bare: Path) -> list[str]:
    return git("ls-tree", "-r", "--name-only", "main", cwd=bare).split()


def test_a_raw_file_with_a_dangling_reference_stays_in_raw_while_the_rest_lands(
    app: FGDApplication, config: Any, tmp_path: Path
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/wiring.yaml": (EXAMPLES / "wiring.yaml").read_bytes(),
                     "gitops/raw/vpcs.yaml": (EXAMPLES / "vpcs.yaml").read_bytes(),
                     "gitops/raw/lonely.yaml": DANGLING})
    fabric = app.register_fabric("lab", str(repo))
    result = SyncRunner(app, config).run(fabric.fabric_id)
    assert result.ok and result.pushed
    files = {f["file_path"]: f for f in result.sync.files.values()}
    lonely = files["gitops/raw/lonely.yaml"]
    assert lonely["status"] == "failed"
    (error,) = lonely["validation_errors"]
    assert error == {
        "index": 1, "line": 11, "code": "FGD_1003", "field": "spec.connection",
        "rule": "vpcattachment.connection-exists",
        "message": "VPCAttachment 'lonely--server-99': Connection "
                   "'server-99--unbundled--leaf-01' not found",
    }
    assert {files[p]["status"] for p in ("gitops/raw/wiring.yaml", "gitops/raw/vpcs.yaml")} \
        == {"processed"}
    landed = tree(repo)
    assert "gitops/raw/lonely.yaml" in landed  # untouched, for the author to fix
    assert "gitops/managed/vpcs/lonely.yaml" not in landed  # the file lands whole or not
    assert "gitops/managed/vpc-attachments/demo-vpc-1--server-03--unbundled--leaf-01.yaml" \
        in landed

    # Someone deletes a connection file by hand: directory validation names what broke.
    work = tmp_path / "work"
    git("clone", "-q", str(repo), str(work), cwd=tmp_path)
    git("rm", "-q", "gitops/managed/connections/server-03--unbundled--leaf-01.yaml", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "oops", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    snapshot = GitRemote(str(repo)).fetch("main")
    report = validate_directory(snapshot, "gitops")
    broken = [i for i in report["issues"] if i["issue"] == "fabric_rule_broken"]
    assert not report["valid"] and len(broken) == 1
    assert broken[0]["path"] == ("/gitops/managed/vpc-attachments/"
                                 "demo-vpc-1--server-03--unbundled--leaf-01.yaml")
    assert "vpcattachment.connection-exists" in broken[0]["message"]

    # Fixing the raw file (a connection that exists, a free port) lets it land next sync.
    fixed = DANGLING.replace(b"server-99--unbundled--leaf-01", b"server-07--unbundled--leaf-03")
    seed_repo(repo, {"gitops/raw/lonely.yaml": fixed}, message="fix")
    again = SyncRunner(app, config).run(fabric.fabric_id)
    assert again.ok
    assert again.sync.files["gitops/raw/lonely.yaml"]["status"] == "processed"


def test_the_readme_example_repo_syncs_as_a_valid_fabric(
    app: FGDApplication, config: Any, tmp_path: Path
) -> None:
    target = tmp_path / "demo.git"
    env = {**os.environ, "HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "cli.sqlite3")}
    subprocess.run([sys.executable, "-m", "fgd_core.cli", "example-repo", str(target)],
                   check=True, capture_output=True, env=env)
    fabric = app.register_fabric("demo", str(target))
    result = SyncRunner(app, config).run(fabric.fabric_id)
    assert result.ok and result.pushed
    assert {f["status"] for f in result.sync.files.values()} == {"processed"}
    assert result.sync.warnings == []  # every reference could be checked, and holds
    snapshot = GitRemote(str(target)).fetch("main")
    assert validate_directory(snapshot, "gitops")["valid"]


def test_the_managed_index_follows_the_tree_and_forgets_what_never_landed(
    tmp_path: Path,
) -> None:
    from fgd_core.adapters.fabric_tree import managed_index
    from fgd_core.ingestion.hedgehog.fabric_check import fabric_verdict
    from fgd_core.ingestion.yaml_safe import iter_documents
    from tests.unit.test_fabric_rules import obj

    repo = init_bare(tmp_path / "f.git")
    managed = {}
    for doc in iter_documents((EXAMPLES / "wiring.yaml").read_bytes()):
        if doc.data["kind"] == "Connection":
            name = doc.data["metadata"]["name"]
            managed[f"gitops/managed/connections/{name}.yaml"] = json_bytes(doc.data)
    seed_repo(repo, managed)
    remote = GitRemote(str(repo))
    first = remote.fetch("main")
    prefix = "gitops/managed/"
    with managed_index(first, prefix) as index:
        assert len(index) == len(managed)
        before = {k: o.facts for k, o in index.objects.items()}
        # A verdict gives a shared index back as it was, landing aside.
        vpc_doc = next(iter_documents((EXAMPLES / "vpcs.yaml").read_bytes())).data
        incoming = obj(vpc_doc, "raw/x.yaml")
        incoming.landing_at = ("gitops/managed/vpcs/demo-vpc-1.yaml", "0" * 40)
        fabric_verdict(index, {"raw/x.yaml": [incoming]})
        assert ("VPC", "demo-vpc-1") in index.objects  # it passed: it is about to land
    with managed_index(first, prefix) as index:  # ... but the commit never came
        assert {k: o.facts for k, o in index.objects.items()} == before
    gone = next(iter(managed))
    work = tmp_path / "work"
    git("clone", "-q", str(repo), str(work), cwd=tmp_path)
    git("rm", "-q", gone, cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "rm", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    with managed_index(remote.fetch("main"), prefix) as index:
        assert len(index) == len(managed) - 1
        assert ("Connection", Path(gone).stem) not in index.objects


def json_bytes(data: Any) -> bytes:
    import json

    return json.dumps(data).encode()


def test_a_fresh_process_takes_the_managed_index_from_the_fabric_cache(
    app: FGDApplication, config: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from fgd_core.adapters import fabric_tree
    from fgd_core.adapters.fabric_tree_store import FILE_NAME
    from fgd_core.ingestion.hedgehog import fabric_check

    def fresh_process() -> None:
        fabric_tree._TREES.clear()
        fabric_check._FACTS_BY_BLOB.clear()

    monkeypatch.setattr(fabric_tree, "SAVE_AFTER", 1)  # the example is small: save anyway
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/wiring.yaml": (EXAMPLES / "wiring.yaml").read_bytes()})
    fabric = app.register_fabric("lab", str(repo))
    cache = tmp_path / "cache"
    runner = SyncRunner(app, config, cache_root=cache)
    assert runner.run(fabric.fabric_id).ok
    kept = cache / f"fabric-{fabric.fabric_id}" / FILE_NAME
    assert kept.is_file()

    reads: list[str] = []
    original = fabric_tree.facts_for_blob
    monkeypatch.setattr(fabric_tree, "facts_for_blob",
                        lambda blob, read: reads.append(blob) or original(blob, read))
    fresh_process()
    seed_repo(repo, {"gitops/raw/vpcs.yaml": (EXAMPLES / "vpcs.yaml").read_bytes()},
              message="vpcs")
    result = runner.run(fabric.fabric_id)
    assert result.ok and result.sync.files["gitops/raw/vpcs.yaml"]["status"] == "processed"
    assert reads == []  # the wiring's objects came from the kept index, not from managed/

    # A kept index that cannot be read is only a cache: ignored, and written anew.
    kept.write_bytes(b"{not json")
    fresh_process()
    seed_repo(repo, {"gitops/raw/lonely.yaml": DANGLING}, message="lonely")
    result = runner.run(fabric.fabric_id)
    assert result.sync.files["gitops/raw/lonely.yaml"]["status"] == "failed"  # still checked
    assert len(reads) > 30  # managed/ was read instead
    assert kept.read_bytes().startswith(b"{\"format\"")


def test_the_fabric_config_of_fgd_config_reaches_the_sync_fabric_wide_rules(
    app: FGDApplication, tmp_path: Path
) -> None:
    # The example's leaves have ASNs 65101…: valid under fabricator's defaults (the test
    # above), refused by a fabric whose leaf range is elsewhere — the wiring stays in raw/.
    from fgd_core.config import parse_config

    config = parse_config({"fgd": {"hedgehog": {"leaf_asn_start": 64000,
                                                "leaf_asn_end": 64100}}}, environ={})
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/wiring.yaml": (EXAMPLES / "wiring.yaml").read_bytes()})
    fabric = app.register_fabric("lab", str(repo))
    result = SyncRunner(app, config).run(fabric.fabric_id)
    assert result.ok
    (wiring,) = result.sync.files.values()
    assert wiring["status"] == "failed"
    assert {e["rule"] for e in wiring["validation_errors"]} == {"switch.leaf-asn-range"}
    assert not any(p.startswith("gitops/managed/switches/") for p in tree(repo))
