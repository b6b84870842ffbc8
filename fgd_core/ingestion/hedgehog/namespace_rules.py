"""Hedgehog's single-object rules for IPv4Namespace and VLANNamespace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fgd_core.ingestion.hedgehog.fabric_config import FabricConfig
from fgd_core.ingestion.hedgehog.issues import FieldIssue, Path
from fgd_core.ingestion.hedgehog.netparse import IPNetwork, first_overlap, parse_prefix
from fgd_core.ingestion.hedgehog.vpc_rules import name_rules

_SPEC: Path = ("spec",)
# Hedgehog needs ACLs between every pair of a namespace's subnets, and ACLs are scarce.
MAX_IPV4_NAMESPACE_SUBNETS = 10


def ipv4_namespace_rules(
    name: str, spec: dict[str, Any], cfg: FabricConfig
) -> Iterator[FieldIssue]:
    yield from name_rules("IPv4Namespace", name)
    subnets: list[str] = spec.get("subnets") or []
    nets: list[IPNetwork] = []
    for i, text in enumerate(subnets):
        try:
            nets.append(parse_prefix(text)[1])
        except ValueError:
            yield FieldIssue(
                _SPEC + ("subnets", i),
                f"{text!r} is not a prefix (a.b.c.d/n)",
                "ipv4ns.subnet-invalid",
            )
    if len(nets) != len(subnets):
        return
    if len(nets) > MAX_IPV4_NAMESPACE_SUBNETS:
        yield FieldIssue(
            _SPEC + ("subnets",),
            f"an IPv4Namespace can have at most {MAX_IPV4_NAMESPACE_SUBNETS} subnets "
            f"(found {len(nets)})",
            "ipv4ns.subnets-max",
        )
    pair = first_overlap(nets)
    if pair is not None:
        a, b = pair
        yield FieldIssue(
            _SPEC + ("subnets", b),
            f"subnets {nets[a]} and {nets[b]} overlap",
            "ipv4ns.subnet-overlap",
        )
        return
    for i, net in enumerate(nets):
        reserved = cfg.reserved_overlap(net)
        if reserved is not None:
            yield FieldIssue(
                _SPEC + ("subnets", i),
                f"subnet {net} overlaps {reserved}, which the fabric reserves for itself",
                "ipv4ns.subnet-reserved",
            )


def vlan_namespace_rules(
    name: str, spec: dict[str, Any], cfg: FabricConfig
) -> Iterator[FieldIssue]:
    ranges: list[dict[str, Any]] = spec.get("ranges") or []
    valid: list[tuple[int, int, int]] = []  # (from, to, index)
    for i, r in enumerate(ranges):
        low, high = r.get("from") or 0, r.get("to") or 0
        at: Path = _SPEC + ("ranges", i)
        if low > high:
            yield FieldIssue(at, f"VLAN range from {low} is after to {high}", "vlanns.range-order")
        elif not (1 <= low <= 4094 and 1 <= high <= 4094):
            yield FieldIssue(
                at, f"VLAN range {low}-{high} must lie within 1-4094", "vlanns.range-bounds"
            )
        else:
            valid.append((low, high, i))
    if len(valid) != len(ranges):
        return
    ordered = sorted(valid)
    for (a_low, a_high, a_i), (b_low, b_high, b_i) in zip(ordered, ordered[1:], strict=False):
        if a_high >= b_low:
            yield FieldIssue(
                _SPEC + ("ranges", max(a_i, b_i)),
                f"VLAN ranges {a_low}-{a_high} and {b_low}-{b_high} overlap",
                "vlanns.range-overlap",
            )
    for reserved, what in (
        (cfg.vpc_irb_vlans, "the fabric reserves for VPC IRB interfaces"),
        (cfg.th5_workaround_vlans, "the fabric reserves for the Tomahawk 5 workaround"),
    ):
        for low, high, i in valid:
            for r_low, r_high in reserved:
                if low <= r_high and r_low <= high:
                    yield FieldIssue(
                        _SPEC + ("ranges", i),
                        f"VLAN range {low}-{high} overlaps {r_low}-{r_high}, which {what}",
                        "vlanns.range-reserved",
                    )
