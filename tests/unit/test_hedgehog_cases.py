"""The verdict table (tests/fixtures/hedgehog_cases/): real Hedgehog samples changed into
and just outside each rule's forbidden zone, with the verdict Hedgehog gives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.hedgehog_samples import case_document, case_fabric, load_cases, verdict

CASES = load_cases()
HEDGEHOG_PACKAGE = Path(__file__).resolve().parents[2] / "fgd_core" / "ingestion" / "hedgehog"


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_verdict_matches_hedgehog(name: str, case: dict[str, Any]) -> None:
    rules = verdict(case_document(case), fabric=case_fabric(case))
    if case["verdict"] == "accepted":
        assert rules == [], f"{name}: refused with {rules}"
    else:
        assert case["verdict"] == "refused"
        assert rules, f"{name}: accepted, Hedgehog refuses it"
        missing = set(case["rules"]) - set(rules)
        assert not missing, f"{name}: refused with {rules}, expected {case['rules']}"


def test_the_table_covers_every_kind_both_ways() -> None:
    kinds: dict[str, set[str]] = {}
    for _, case in CASES:
        kind = (
            case["inline"]["kind"] if "inline" in case else case["base"].split("#")[1].split("/")[0]
        )
        kinds.setdefault(kind, set()).add(case["verdict"])
    for kind in (
        "VPC",
        "VPCAttachment",
        "VPCPeering",
        "External",
        "ExternalAttachment",
        "ExternalPeering",
        "IPv4Namespace",
        "VLANNamespace",
        "Connection",
        "Switch",
        "SwitchProfile",
        "Server",
        "SwitchGroup",
        "ServerProfile",
    ):
        assert kinds.get(kind) == {"accepted", "refused"}, kind


# Rule ids no case of the table refuses, and why.
NOT_IN_TABLE = {
    "connection.mclag": "a warning, not a refusal (test_hedgehog_defaults)",
    "vpcpeering.disabled": "needs a fabric config with peering off (test_hedgehog_defaults)",
    # Default() fills these in for every IPv4 subnet; they guard IPv6 subnets, which
    # Default() leaves alone.
    "vpc.subnet.gateway-required": "",
    "vpc.subnet.dhcp-range-required": "",
    "vpc.subnet.dhcp-range-disabled": "",
    "vpc.subnet.dhcp-options-disabled": "",
    "vpc.subnet.dhcp-lease-time": "",
}


def _rule_ids_in_code() -> set[str]:
    ids: set[str] = set()
    for module in HEDGEHOG_PACKAGE.glob("*_rules.py"):
        if module.name.startswith("fabric_"):  # cross-object rules: tests/unit/test_fabric_rules
            continue
        text = module.read_text()
        ids |= set(
            re.findall(
                r'"((?:vpc|vpcattachment|vpcpeering|external|extattach|extpeering'
                r'|ipv4ns|vlanns|connection|switch)\.[a-z0-9.-]+)"',
                text,
            )
        )
        ids |= {f"switchprofile.{m}" for m in re.findall(r'_issue\([^)]*?"([a-z-]+)"\)', text)}
        ids |= {f"{m.lower()}.name-length" for m in re.findall(r'name_rules\("(\w+)"', text)}
    return ids


def test_every_rule_is_refused_by_some_case() -> None:
    refused = {rule for _, case in CASES for rule in case.get("rules", [])}
    in_code = _rule_ids_in_code()
    assert len(in_code) > 80
    assert in_code - refused == set(NOT_IN_TABLE)
