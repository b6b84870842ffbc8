"""Every real Hedgehog sample plans as a network engineer would expect.

Expected counts were taken by reading the files (uncommented ``kind:`` lines), not by
running the planner.
"""

from __future__ import annotations

from collections import Counter

import pytest

from fgd_core.errors import FGDErrorCodes
from fgd_core.ingestion import IngestionRules, load_documents, plan_sync
from tests.paths import HEDGEHOG_FIXTURES

FIXTURES = HEDGEHOG_FIXTURES

EXPECTED: dict[str, dict[str, int]] = {
    "demogitops_env-1_demo.reset.yaml": {},
    "demogitops_env-1_demo.yaml": {
        "VPC": 1,
        "VPCAttachment": 1,
        "VPCPeering": 1,
        "ExternalPeering": 1,
    },
    "demogitops_env-1_pre-demo.yaml": {"VPC": 2, "VPCAttachment": 2},
    "demogitops_env-1_vpc-test.yaml": {"VPC": 1},
    "docs_user-guide_connections_examples.yaml": {"Connection": 7},
    "hnp_vlab_prepop_wiring.yaml": {"SwitchGroup": 3, "Switch": 7, "Server": 10, "Connection": 26},
    "labci_env-ci-1_wiring.yaml": {
        "VLANNamespace": 1,
        "IPv4Namespace": 1,
        "SwitchGroup": 3,
        "Switch": 6,
        "External": 3,
        "ExternalAttachment": 5,
        "Connection": 24,
        "Server": 8,
    },
}
DIRS = {
    "VPC": "vpcs",
    "VPCAttachment": "vpc-attachments",
    "VPCPeering": "vpc-peerings",
    "ExternalPeering": "external-peerings",
    "External": "externals",
    "ExternalAttachment": "external-attachments",
    "IPv4Namespace": "ipv4-namespaces",
    "VLANNamespace": "vlan-namespaces",
    "Connection": "connections",
    "Server": "servers",
    "Switch": "switches",
    "SwitchGroup": "switch-groups",
}


def raw(name: str) -> str:
    return f"gitops/raw/{name}"


def plan_one(name: str):
    content = (FIXTURES / name).read_bytes()
    plan = plan_sync({raw(name): content}, {}, [], {}, "sync-1")
    return plan, plan.file(raw(name))


def test_every_fixture_is_covered() -> None:
    names = {p.name for p in FIXTURES.glob("*.yaml")}
    assert names == set(EXPECTED) | {
        "labci_env-ci-1_wiring-gateway.yaml",
        "docs_user-guide_vpcs_examples.yaml",
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_plans_alone(name: str) -> None:
    plan, result = plan_one(name)
    expected = EXPECTED[name]
    total = sum(expected.values())
    assert result.status == "processed", result.errors
    assert result.errors == ()
    assert result.documents_found == total
    assert result.documents_extracted == total
    assert Counter(r.kind for r in result.resources) == Counter(expected)
    assert len(plan.writes) == total
    assert all(w.action == "create" for w in plan.writes)
    for ref in result.resources:
        assert ref.managed_path == f"gitops/managed/{DIRS[ref.kind]}/{ref.name}.yaml"
    assert result.archived_to == raw(name) + ".archived"
    assert [(a.raw_path, a.archived_path) for a in plan.archives] == [
        (raw(name), raw(name) + ".archived")
    ]
    assert {p.managed_path for p in plan.provenance} == set(result.target_files)
    assert all(p.raw_path == raw(name) and p.sync_id == "sync-1" for p in plan.provenance)


def test_zero_document_file_is_processed_and_archived() -> None:
    plan, result = plan_one("demogitops_env-1_demo.reset.yaml")
    assert result.status == "processed"
    assert (result.documents_found, result.documents_extracted) == (0, 0)
    assert plan.writes == ()
    assert result.archived_to == raw("demogitops_env-1_demo.reset.yaml") + ".archived"


def test_gateway_file_fails_whole_with_unsupported_kinds() -> None:
    plan, result = plan_one("labci_env-ci-1_wiring-gateway.yaml")
    assert result.status == "failed"
    assert result.documents_found == 5
    assert result.documents_extracted == 0
    assert [(e.index, e.code) for e in result.errors] == [
        (0, FGDErrorCodes.UNSUPPORTED_RESOURCE),
        (1, FGDErrorCodes.UNSUPPORTED_RESOURCE),
        (2, FGDErrorCodes.UNSUPPORTED_RESOURCE),
    ]
    assert "GatewayGroup" in result.errors[0].message
    assert "Gateway" in result.errors[1].message
    assert [e.line for e in result.errors] == [5, 12, 22]  # the "kind:" lines
    # The two valid "gateway" Connections do not land either: the file is all or nothing.
    assert plan.writes == () and plan.archives == () and plan.provenance == ()
    assert plan.failures_to_record == {result.path: result.content_id}


def test_gateway_connections_are_valid_on_their_own() -> None:
    docs = load_documents((FIXTURES / "labci_env-ci-1_wiring-gateway.yaml").read_bytes())
    conns = b"---\n".join(
        (FIXTURES / "labci_env-ci-1_wiring-gateway.yaml").read_bytes().split(b"---\n")[3:]
    )
    assert len(docs) == 5
    plan = plan_sync({"gitops/raw/gw.yaml": conns}, {}, [], {}, "s")
    assert plan.files[0].status == "processed"
    assert len(plan.writes) == 2


def test_within_file_duplicate_is_a_conflict_on_both_documents() -> None:
    plan, result = plan_one("docs_user-guide_vpcs_examples.yaml")
    assert result.status == "failed"
    assert result.documents_found == 5
    conflicts = [e for e in result.errors if "conflict" in e.message]
    assert [(e.index, e.line, e.code) for e in conflicts] == [
        (1, 13, FGDErrorCodes.VALIDATION_FAILED),
        (2, 23, FGDErrorCodes.VALIDATION_FAILED),
    ]
    assert all("vpc-1--vpc-2" in e.message for e in conflicts)
    assert plan.writes == () and plan.archives == ()
    assert raw("docs_user-guide_vpcs_examples.yaml") in plan.failures_to_record


def all_fixtures() -> dict[str, bytes]:
    return {raw(p.name): p.read_bytes() for p in sorted(FIXTURES.glob("*.yaml"))}


def test_all_fixtures_together_report_cross_file_conflicts() -> None:
    plan = plan_sync(all_fixtures(), {}, [], {}, "sync-all")
    status = {f.path.removeprefix("gitops/raw/"): f.status for f in plan.files}
    # Same kind/name in two files: IPv4Namespace/default and VLANNamespace/default
    # (docs vpcs vs lab-ci wiring), SwitchGroup/eslag-1 (hnp prepop vs lab-ci wiring).
    # The demo-gitops files share no kind/name (demo.reset.yaml has zero documents).
    assert status == {
        "demogitops_env-1_demo.reset.yaml": "processed",
        "demogitops_env-1_demo.yaml": "processed",
        "demogitops_env-1_pre-demo.yaml": "processed",
        "demogitops_env-1_vpc-test.yaml": "processed",
        "docs_user-guide_connections_examples.yaml": "processed",
        "docs_user-guide_vpcs_examples.yaml": "failed",
        "hnp_vlab_prepop_wiring.yaml": "failed",
        "labci_env-ci-1_wiring-gateway.yaml": "failed",
        "labci_env-ci-1_wiring.yaml": "failed",
    }

    def conflicts(name: str) -> set[tuple[str, str]]:
        out = set()
        for e in plan.file(raw(name)).errors:
            if e.message.startswith("conflict:"):
                kind, rname = e.message.split()[1], e.message.split()[2].strip("'")
                out.add((kind, rname))
        return out

    assert conflicts("labci_env-ci-1_wiring.yaml") == {
        ("IPv4Namespace", "default"),
        ("VLANNamespace", "default"),
        ("SwitchGroup", "eslag-1"),
    }
    assert conflicts("hnp_vlab_prepop_wiring.yaml") == {("SwitchGroup", "eslag-1")}
    assert conflicts("docs_user-guide_vpcs_examples.yaml") == {
        ("IPv4Namespace", "default"),
        ("VLANNamespace", "default"),
        ("VPCPeering", "vpc-1--vpc-2"),
    }
    # Each cross-file conflict names the other file.
    err = next(
        e for e in plan.file(raw("hnp_vlab_prepop_wiring.yaml")).errors if "eslag-1" in e.message
    )
    assert "labci_env-ci-1_wiring.yaml" in err.message

    # Nothing from a failed file is written; everything from processed files is.
    written_sources = {p.raw_path for p in plan.provenance}
    assert written_sources == {f.path for f in plan.files if f.status == "processed"} - {
        raw("demogitops_env-1_demo.reset.yaml")
    }
    assert {a.raw_path for a in plan.archives} == {
        f.path for f in plan.files if f.status == "processed"
    }
    assert len(plan.writes) == 4 + 4 + 1 + 7
    # Cross-file conflicts are not sticky failures (fixing the other file must retry them);
    # intrinsic ones (unsupported kinds, the within-file duplicate) are.
    assert set(plan.failures_to_record) == {
        raw("labci_env-ci-1_wiring-gateway.yaml"),
        raw("docs_user-guide_vpcs_examples.yaml"),
    }


def test_reingesting_identical_content_is_unchanged() -> None:
    files = {k: v for k, v in all_fixtures().items() if "demogitops" in k}
    first = plan_sync(files, {}, [], {}, "s1")
    managed = {w.path: w.content for w in first.writes}
    second = plan_sync(files, managed, list(managed), {}, "s2")
    assert {w.action for w in second.writes} == {"unchanged"}
    assert second.changed_writes == ()
    assert [w.content for w in second.writes] == [w.content for w in first.writes]
    # Managed output re-ingests to itself (normalization is a fixed point).
    as_raw = {f"gitops/raw/{i}.yaml": c for i, c in enumerate(managed.values())}
    third = plan_sync(as_raw, managed, list(managed), {}, "s3")
    assert {w.action for w in third.writes} == {"unchanged"}


def test_rules_with_extra_kind_accept_gateway_kinds() -> None:
    from fgd_core.ingestion import KindInfo

    rules = IngestionRules(
        extra_kinds=(
            KindInfo("GatewayGroup", "gateway.githedgehog.com/v1alpha1", "gateway-groups"),
            KindInfo("Gateway", "gateway.githedgehog.com/v1alpha1", "gateways"),
        )
    )
    name = "labci_env-ci-1_wiring-gateway.yaml"
    plan = plan_sync({raw(name): (FIXTURES / name).read_bytes()}, {}, [], {}, "s", rules)
    assert plan.files[0].status == "processed"
    assert "gitops/managed/gateways/gateway-1.yaml" in {w.path for w in plan.writes}
