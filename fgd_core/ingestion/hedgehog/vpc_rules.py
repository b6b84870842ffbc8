"""Hedgehog's single-object rules for VPC (``Validate()`` without the checks against other
objects; the DHCP part is in ``vpc_dhcp_rules``). Each function gets the *defaulted* spec,
whose types the schema check has already confirmed, and yields issues with document paths."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from fgd_core.ingestion.hedgehog.fabric_config import FabricConfig
from fgd_core.ingestion.hedgehog.issues import FieldIssue, Path
from fgd_core.ingestion.hedgehog.netparse import (
    IPAddress,
    IPNetwork,
    first_overlap,
    parse_addr,
    parse_prefix,
)
from fgd_core.ingestion.hedgehog.vpc_dhcp_rules import dhcp_rules

MAX_VPC_NAME = 11
EXT_PREFIX = "ext."  # a prefix Hedgehog keeps for its own (external) VPC names
MAX_VPC_SUBNETS = 20
VPC_MODES = ("", "l3vni", "l3flat")
MAX_VPC_SUBNET_PREFIX = 30

_SPEC: Path = ("spec",)


def name_rules(kind: str, name: str) -> Iterator[FieldIssue]:
    """Hedgehog limits VPC, IPv4Namespace and External names to 11 characters."""
    if len(name) > MAX_VPC_NAME:
        yield FieldIssue(
            ("metadata", "name"),
            f"a {kind} name must be at most {MAX_VPC_NAME} characters ({name!r} has {len(name)})",
            f"{kind.lower()}.name-length",
        )


def vpc_rules(name: str, spec: dict[str, Any], cfg: FabricConfig) -> Iterator[FieldIssue]:
    yield from name_rules("VPC", name)
    if name.startswith(EXT_PREFIX):
        yield FieldIssue(
            ("metadata", "name"),
            f"a VPC name must not start with {EXT_PREFIX!r} (kept for externals)",
            "vpc.name-ext-prefix",
        )
    subnets: dict[str, dict[str, Any]] = spec.get("subnets") or {}
    if not subnets:
        yield FieldIssue(
            _SPEC + ("subnets",), "a VPC needs at least one subnet", "vpc.subnets-required"
        )
    elif len(subnets) > MAX_VPC_SUBNETS:
        yield FieldIssue(
            _SPEC + ("subnets",),
            f"a VPC can have at most {MAX_VPC_SUBNETS} subnets (found {len(subnets)})",
            "vpc.subnets-max",
        )
    mode = spec.get("mode") or ""
    if mode not in VPC_MODES:
        yield FieldIssue(
            _SPEC + ("mode",),
            f"VPC mode {mode!r} is not one of l3vni or empty (the default, L2VNI)",
            "vpc.mode-invalid",
        )
    elif mode == "l3flat":
        yield FieldIssue(
            _SPEC + ("mode",), "VPC mode l3flat is not supported yet", "vpc.mode-l3flat"
        )

    nets: list[IPNetwork] = []
    net_names: list[str] = []
    vlans: dict[int, str] = {}
    for sub_name, sub in subnets.items():
        at: Path = _SPEC + ("subnets", sub_name)
        net = None
        for issue_or_net in _subnet_rules(sub, at, cfg):
            if isinstance(issue_or_net, FieldIssue):
                yield issue_or_net
            else:
                net = issue_or_net
        if net is not None:
            nets.append(net)
            net_names.append(sub_name)
        vlan = sub.get("vlan") or 0
        if not sub.get("hostBGP") and vlan:
            if vlan in vlans:
                yield FieldIssue(
                    at + ("vlan",),
                    f"VLAN {vlan} is used by subnets {vlans[vlan]} and {sub_name}: each "
                    "subnet of a VPC needs its own VLAN",
                    "vpc.subnet.vlan-duplicate",
                )
            vlans.setdefault(vlan, sub_name)
    pair = first_overlap(nets)
    if pair is not None:
        a, b = pair
        yield FieldIssue(
            _SPEC + ("subnets", net_names[b], "subnet"),
            f"subnet {nets[b]} of {net_names[b]} overlaps {nets[a]} of {net_names[a]}",
            "vpc.subnet.overlap",
        )
    yield from _permit_rules(spec.get("permit") or [], subnets)
    yield from _static_route_rules(spec.get("staticRoutes") or [])


def _subnet_rules(
    sub: dict[str, Any], at: Path, cfg: FabricConfig
) -> Iterator[FieldIssue | IPNetwork]:
    text = sub.get("subnet") or ""
    if not text:
        yield FieldIssue(
            at + ("subnet",),
            "a subnet needs its prefix (subnet: a.b.c.d/n)",
            "vpc.subnet.subnet-required",
        )
        return
    try:
        _, net = parse_prefix(text)
    except ValueError:
        yield FieldIssue(
            at + ("subnet",),
            f"subnet {text!r} is not a prefix (a.b.c.d/n)",
            "vpc.subnet.subnet-invalid",
        )
        return
    if net.prefixlen > MAX_VPC_SUBNET_PREFIX:
        yield FieldIssue(
            at + ("subnet",),
            f"subnet {text} is too small: the prefix length must be "
            f"/{MAX_VPC_SUBNET_PREFIX} or shorter",
            "vpc.subnet.prefix-too-long",
        )
        return
    reserved = cfg.reserved_overlap(net)
    if reserved is not None:
        yield FieldIssue(
            at + ("subnet",),
            f"subnet {text} overlaps {reserved}, which the fabric reserves for itself",
            "vpc.subnet.reserved",
        )
    yield net
    dhcp: dict[str, Any] = sub.get("dhcp") or {}
    enabled = dhcp.get("enable") is True
    gateway = None
    if sub.get("hostBGP"):
        if enabled:
            yield FieldIssue(
                at + ("dhcp", "enable"),
                "DHCP cannot be enabled on a hostBGP subnet",
                "vpc.subnet.hostbgp-dhcp",
            )
    else:
        gateway = yield from _gateway_rules(sub, net, at)
        vlan = sub.get("vlan") or 0
        if vlan == 0:
            yield FieldIssue(
                at + ("vlan",),
                "a subnet needs a vlan unless hostBGP is set",
                "vpc.subnet.vlan-required",
            )
    vlan = sub.get("vlan") or 0
    if vlan > 4094:
        yield FieldIssue(
            at + ("vlan",),
            f"VLAN {vlan} is outside 1-4094, so no VLANNamespace can hold it",
            "vpc.subnet.vlan-range",
        )
    yield from dhcp_rules(dhcp, enabled, net, gateway, sub.get("gateway") or "", at + ("dhcp",))


def _gateway_rules(
    sub: dict[str, Any], net: IPNetwork, at: Path
) -> Generator[FieldIssue, None, IPAddress | None]:
    text = sub.get("gateway") or ""
    if not text:
        yield FieldIssue(
            at + ("gateway",),
            "a subnet without hostBGP needs a gateway",
            "vpc.subnet.gateway-required",
        )
        return None
    try:
        gateway = parse_addr(text)
    except ValueError:
        yield FieldIssue(
            at + ("gateway",),
            f"gateway {text!r} is not an IP address",
            "vpc.subnet.gateway-invalid",
        )
        return None
    if gateway not in net:
        yield FieldIssue(
            at + ("gateway",),
            f"gateway {text} is outside the subnet {net}",
            "vpc.subnet.gateway-outside",
        )
    return gateway


def _permit_rules(permit: list[list[str]], subnets: dict[str, Any]) -> Iterator[FieldIssue]:
    for i, group in enumerate(permit):
        at: Path = _SPEC + ("permit", i)
        if len(group) < 2:
            yield FieldIssue(at, "a permit policy needs at least two subnets", "vpc.permit.too-few")
        for j, sub_name in enumerate(group):
            if sub_name not in subnets:
                yield FieldIssue(
                    at + (j,),
                    f"permit names unknown subnet {sub_name!r}",
                    "vpc.permit.unknown-subnet",
                )
        if len(set(group)) != len(group):
            yield FieldIssue(at, "a permit policy names a subnet twice", "vpc.permit.duplicate")


def _static_route_rules(routes: list[dict[str, Any]]) -> Iterator[FieldIssue]:
    for i, route in enumerate(routes):
        at: Path = _SPEC + ("staticRoutes", i)
        prefix = route.get("prefix") or ""
        if not prefix:
            yield FieldIssue(
                at + ("prefix",), "a static route needs a prefix", "vpc.static-route.prefix"
            )
        else:
            try:
                addr, net = parse_prefix(prefix)
            except ValueError:
                yield FieldIssue(
                    at + ("prefix",),
                    f"static route prefix {prefix!r} is not a prefix",
                    "vpc.static-route.prefix",
                )
            else:
                if addr != net.network_address:
                    yield FieldIssue(
                        at + ("prefix",),
                        f"static route prefix {prefix} has host bits set (use {net})",
                        "vpc.static-route.prefix",
                    )
        if not route.get("nextHops"):
            yield FieldIssue(
                at + ("nextHops",),
                "a static route needs at least one next hop",
                "vpc.static-route.next-hops",
            )
