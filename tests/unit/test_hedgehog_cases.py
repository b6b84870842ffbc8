"""The verdict table (tests/fixtures/hedgehog_cases/): real Hedgehog samples changed into
and just outside each rule's forbidden zone, with the verdict Hedgehog gives."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hedgehog_samples import case_document, load_cases, verdict

CASES = load_cases()


@pytest.mark.parametrize(("name", "case"), CASES, ids=[n for n, _ in CASES])
def test_verdict_matches_hedgehog(name: str, case: dict[str, Any]) -> None:
    rules = verdict(case_document(case))
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
