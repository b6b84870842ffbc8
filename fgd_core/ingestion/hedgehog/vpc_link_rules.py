"""Hedgehog's single-object rules for VPCAttachment and VPCPeering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fgd_core.ingestion.hedgehog.fabric_config import FabricConfig
from fgd_core.ingestion.hedgehog.issues import FieldIssue, Path
from fgd_core.ingestion.hedgehog.netparse import parse_prefix

_SPEC: Path = ("spec",)
P2P_ANNOTATION = "fabric.githedgehog.com/p2p-link"


# ------------------------------------------------------------------------ VPCAttachment


def vpc_attachment_rules(
    name: str, spec: dict[str, Any], annotations: dict[str, str], cfg: FabricConfig
) -> Iterator[FieldIssue]:
    subnet = spec.get("subnet") or ""
    if not subnet:
        yield FieldIssue(
            _SPEC + ("subnet",),
            "an attachment needs a subnet (<vpc>/<subnet>)",
            "vpcattachment.subnet-required",
        )
    elif subnet.startswith("/"):
        yield FieldIssue(
            _SPEC + ("subnet",),
            f"subnet {subnet!r} must be <vpc>/<subnet>: the VPC is missing",
            "vpcattachment.subnet-format",
        )
    if not spec.get("connection"):
        yield FieldIssue(
            _SPEC + ("connection",),
            "an attachment needs a connection",
            "vpcattachment.connection-required",
        )
    p2p = annotations.get(P2P_ANNOTATION)
    if p2p is not None:
        try:
            _, net = parse_prefix(p2p)
            ok = net.version == 4 and net.prefixlen == 31
        except ValueError:
            ok = False
        if not ok:
            yield FieldIssue(
                ("metadata", "annotations", P2P_ANNOTATION),
                f"the p2p link annotation must be an IPv4 /31 prefix (got {p2p!r})",
                "vpcattachment.p2p-link",
            )


# --------------------------------------------------------------------------- VPCPeering


def vpc_peering_rules(name: str, spec: dict[str, Any], cfg: FabricConfig) -> Iterator[FieldIssue]:
    if cfg.vpc_peering_disabled:
        yield FieldIssue(
            _SPEC,
            "VPC peering is disabled on this fabric (fgd.hedgehog.vpc_peering_disabled)",
            "vpcpeering.disabled",
        )
    if spec.get("remote"):
        yield FieldIssue(
            _SPEC + ("remote",), "remote is deprecated and no longer supported", "vpcpeering.remote"
        )
    permit: list[dict[str, Any]] = spec.get("permit") or []
    vpcs: dict[str, None] = {}
    pairs_ok = True
    for i, entry in enumerate(permit):
        if len(entry) != 2:
            pairs_ok = False
            yield FieldIssue(
                _SPEC + ("permit", i),
                f"each permit entry must name exactly two VPCs (found {len(entry)})",
                "vpcpeering.permit-pair",
            )
        vpcs.update(dict.fromkeys(entry))
    if pairs_ok and len(vpcs) != 2:
        yield FieldIssue(
            _SPEC + ("permit",),
            f"a VPCPeering must peer exactly two VPCs (found {len(vpcs)})",
            "vpcpeering.two-vpcs",
        )
