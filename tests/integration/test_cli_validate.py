"""``fgd validate`` as CI runs it: the real CLI in a subprocess, offline (the environment
points at a database that does not exist, which it must never open)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from fgd_core.ingestion.yaml_safe import iter_documents
from tests.integration.test_fabric_sync import DANGLING, EXAMPLES
from tests.paths import HEDGEHOG_FIXTURES

DOC_KEYS = {"index", "line", "kind", "name", "valid", "errors", "warnings"}


def fgd_validate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ,
           "HEDGEHOG_FGD_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "HEDGEHOG_FGD_BROKER_URL": "amqp://nobody@127.0.0.1:1//"}
    return subprocess.run([sys.executable, "-m", "fgd_core.cli", "validate", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def test_the_shipped_example_is_valid_and_json_has_one_line_per_file() -> None:
    run = fgd_validate(EXAMPLES / "wiring.yaml", EXAMPLES / "vpcs.yaml", "--json")
    assert run.returncode == 0, run.stderr
    results = lines(run.stdout)
    assert [r["file"] for r in results] == [str(EXAMPLES / "wiring.yaml"),
                                            str(EXAMPLES / "vpcs.yaml")]
    for r in results:
        assert set(r) == {"file", "valid", "documents"} and r["valid"] is True
        assert all(set(d) == DOC_KEYS and d["valid"] and not d["errors"]
                   for d in r["documents"])
    vpcs = results[1]["documents"]
    assert [(d["index"], d["line"], d["kind"], d["name"]) for d in vpcs][:2] == [
        (0, 1, "VPC", "demo-vpc-1"), (1, 17, "VPC", "demo-vpc-2")]


def test_files_given_together_are_one_set_and_a_broken_one_exits_1(tmp_path: Path) -> None:
    # The demo attachments name connections the wiring does not have.
    demo = HEDGEHOG_FIXTURES / "demogitops_env-1_pre-demo.yaml"
    run = fgd_validate(demo, EXAMPLES / "wiring.yaml", "--json")
    assert run.returncode == 1
    by_file = {r["file"]: r for r in lines(run.stdout)}
    assert by_file[str(EXAMPLES / "wiring.yaml")]["valid"] is True
    bad = by_file[str(demo)]
    assert bad["valid"] is False
    broken = [d for d in bad["documents"] if not d["valid"]]
    assert [(d["index"], d["kind"]) for d in broken] == [(2, "VPCAttachment"),
                                                          (3, "VPCAttachment")]
    error = broken[0]["errors"][0]
    assert set(error) == {"code", "field", "rule", "message"}
    assert (error["code"], error["field"], error["rule"]) == (
        "FGD_1003", "spec.connection", "vpcattachment.connection-exists")
    # Alone, the same file only warns: this Git holds no Connection to check against.
    alone = fgd_validate(demo, "--json")
    assert alone.returncode == 0
    (result,) = lines(alone.stdout)
    assert any(d["warnings"] for d in result["documents"])
    # The human report names the field and the rule.
    human = fgd_validate(demo, EXAMPLES / "wiring.yaml")
    assert human.returncode == 1
    assert "spec.connection" in human.stdout and "[vpcattachment.connection-exists]" in human.stdout


def test_a_gitops_directory_is_one_fabric_as_a_sync_sees_it(tmp_path: Path) -> None:
    root = tmp_path / "gitops"
    # managed/: the example wiring and VPCs, one object per file, as a sync writes them
    for source in ("wiring.yaml", "vpcs.yaml"):
        for doc in iter_documents((EXAMPLES / source).read_bytes()):
            kind_dir = {"VLANNamespace": "vlan-namespaces", "IPv4Namespace": "ipv4-namespaces",
                        "SwitchGroup": "switch-groups", "Switch": "switches",
                        "Server": "servers", "Connection": "connections", "VPC": "vpcs",
                        "VPCAttachment": "vpc-attachments"}[doc.data["kind"]]
            path = root / "managed" / kind_dir / f"{doc.data['metadata']['name']}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc.data))  # JSON is YAML
    (root / "raw").mkdir()
    (root / "raw" / "lonely.yaml").write_bytes(DANGLING)
    (root / "raw" / "README.md").write_text("not ingested")
    run = fgd_validate(root, "--json")
    assert run.returncode == 1, run.stderr
    by_file = {Path(r["file"]).name: r for r in lines(run.stdout)}
    assert "README.md" not in by_file
    assert by_file["lonely.yaml"]["valid"] is False
    assert all(r["valid"] for name, r in by_file.items() if name != "lonely.yaml")

    # A managed tree broken by hand: the attachment's connection file is gone.
    (root / "raw" / "lonely.yaml").unlink()
    (root / "managed" / "connections" / "server-03--unbundled--leaf-01.yaml").unlink()
    run = fgd_validate(root, "--json")
    assert run.returncode == 1
    (bad,) = [r for r in lines(run.stdout) if not r["valid"]]
    assert bad["file"].endswith("vpc-attachments/demo-vpc-1--server-03--unbundled--leaf-01.yaml")
    assert bad["documents"][0]["errors"][0]["rule"] == "vpcattachment.connection-exists"
    shutil.rmtree(root / "managed" / "vpc-attachments")
    assert fgd_validate(root).returncode == 0


def test_usage_errors_exit_2() -> None:
    assert fgd_validate().returncode == 2
    assert fgd_validate("/no/such/path").returncode == 2
    assert fgd_validate(EXAMPLES, "--no-such-flag").returncode == 2


def test_the_fabric_config_comes_from_fgd_config_yaml(tmp_path: Path) -> None:
    # The example's leaves have ASNs 65101…; a fabric whose leaf range starts elsewhere
    # refuses them: fgd.hedgehog reaches the fabric-wide rules (and nothing else is read).
    config = tmp_path / "fgd_config.yaml"
    config.write_text("fgd:\n  hedgehog:\n    leaf_asn_start: 64000\n    leaf_asn_end: 64100\n")
    run = fgd_validate(EXAMPLES / "wiring.yaml", "--json", "--config", config)
    assert run.returncode == 1, run.stderr
    rules = {e["rule"] for r in lines(run.stdout) for d in r["documents"] for e in d["errors"]}
    assert rules == {"switch.leaf-asn-range"}
    # ./fgd_config.yaml is read when present, like every fgd command
    here = subprocess.run([sys.executable, "-m", "fgd_core.cli", "validate",
                           str(EXAMPLES / "wiring.yaml")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120,
                          env={k: v for k, v in os.environ.items()
                               if k != "HEDGEHOG_FGD_CONFIG"})
    assert here.returncode == 1 and "switch.leaf-asn-range" in here.stdout
    config.write_text("fgd:\n  hedgehog:\n    leaf_asn_start: 70000\n    leaf_asn_end: 1\n")
    bad = fgd_validate(EXAMPLES / "wiring.yaml", "--config", config)
    assert bad.returncode == 2 and "leaf_asn_start" in bad.stderr


def test_worker_processes_find_exactly_what_one_process_finds(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Large inputs are drafted in worker processes: the verdicts are the same."""
    from fgd_core.cli import validate as cli_validate

    for i, name in enumerate(["labci_env-ci-1_wiring.yaml", "hnp_vlab_prepop_wiring.yaml",
                              "demogitops_env-1_pre-demo.yaml", "demogitops_env-1_demo.yaml",
                              "docs_user-guide_connections_examples.yaml",
                              "labci_env-ci-1_wiring-gateway.yaml"]):
        (tmp_path / f"{i}-{name}").write_bytes((HEDGEHOG_FIXTURES / name).read_bytes())
    monkeypatch.setattr(cli_validate.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(cli_validate, "PARALLEL_MIN_BYTES", 10**12)
    alone = cli_validate.validate_paths([tmp_path])
    monkeypatch.setattr(cli_validate, "PARALLEL_MIN_BYTES", 0)
    pooled = cli_validate.validate_paths([tmp_path])
    assert pooled == alone
    assert [r["valid"] for r in alone].count(False) >= 2
