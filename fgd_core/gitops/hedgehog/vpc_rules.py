"""Hedgehog's single-object rules for VPC, VPCAttachment and VPCPeering (``Validate()``
without the checks against other objects). Each function gets the *defaulted* spec, whose
types the schema check has already confirmed, and yields issues with document paths."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from fgd_core.gitops.hedgehog.fabric_config import FabricConfig
from fgd_core.gitops.hedgehog.issues import FieldIssue, Path
from fgd_core.gitops.hedgehog.netparse import (
    IPAddress,
    IPNetwork,
    first_overlap,
    parse_addr,
    parse_mac,
    parse_prefix,
)

MAX_VPC_NAME = 11
EXT_PREFIX = "ext."  # names Hedgehog keeps for the VPCs it derives from externals
MAX_VPC_SUBNETS = 20
VPC_MODES = ("", "l3vni", "l3flat")
MAX_VPC_SUBNET_PREFIX = 30
DHCP_MTU_MIN, DHCP_MTU_MAX = 96, 9036
P2P_ANNOTATION = "fabric.githedgehog.com/p2p-link"

_SPEC: Path = ("spec",)


def name_rules(kind: str, name: str) -> Iterator[FieldIssue]:
    """VPC, IPv4Namespace and External names end up in switch object names: 11 at most."""
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
    yield from _dhcp_rules(dhcp, enabled, net, gateway, sub.get("gateway") or "", at + ("dhcp",))


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


def _dhcp_rules(
    dhcp: dict[str, Any], enabled: bool, net: IPNetwork, gateway: Any, gateway_text: str, at: Path
) -> Iterator[FieldIssue]:
    relay = dhcp.get("relay") or ""
    if relay and enabled:
        yield FieldIssue(
            at,
            "DHCP relay and the DHCP server cannot both be on",
            "vpc.subnet.dhcp-relay-and-server",
        )
    if relay:
        try:
            parse_prefix(relay)
        except ValueError:
            yield FieldIssue(
                at + ("relay",),
                f"DHCP relay {relay!r} is not a prefix (a.b.c.d/n)",
                "vpc.subnet.dhcp-relay-invalid",
            )
    elif dhcp.get("relayVPC"):
        yield FieldIssue(
            at + ("relayVPC",), "relayVPC is set but no DHCP relay is", "vpc.subnet.dhcp-relay-vpc"
        )
    options = dhcp.get("options")
    if options is not None and not enabled:
        for key in (
            "pxeURL",
            "dnsServers",
            "timeServers",
            "interfaceMTU",
            "leaseTimeSeconds",
            "disableDefaultRoute",
            "advertisedRoutes",
        ):
            if options.get(key):
                yield FieldIssue(
                    at + ("options", key),
                    f"DHCP option {key} is set but DHCP is disabled",
                    "vpc.subnet.dhcp-options-disabled",
                )
    if not enabled:
        rng = dhcp.get("range") or {}
        if rng.get("start") or rng.get("end"):
            yield FieldIssue(
                at + ("range",),
                "a DHCP range is set but DHCP is disabled",
                "vpc.subnet.dhcp-range-disabled",
            )
        if dhcp.get("static"):
            yield FieldIssue(
                at + ("static",),
                "static DHCP leases need DHCP enabled",
                "vpc.subnet.dhcp-static-disabled",
            )
        return
    rng = dhcp.get("range")
    if rng is None:
        yield FieldIssue(
            at + ("range",), "DHCP is enabled but has no range", "vpc.subnet.dhcp-range-required"
        )
        return
    ends: list[IPAddress | None] = []
    for key in ("start", "end"):
        addr = yield from _range_end(rng.get(key) or "", key, net, gateway, at + ("range", key))
        ends.append(addr)
    start, end = ends
    if start is not None and end is not None and not int(start) < int(end):
        yield FieldIssue(
            at + ("range",),
            f"DHCP range start {start} must come before its end {end}",
            "vpc.subnet.dhcp-range-order",
        )
    if options is not None:
        yield from _option_rules(options, net, at + ("options",))
    yield from _static_lease_rules(dhcp.get("static") or {}, net, gateway_text, at + ("static",))


def _range_end(
    text: str, key: str, net: IPNetwork, gateway: Any, at: Path
) -> Generator[FieldIssue, None, IPAddress | None]:
    if not text:
        yield FieldIssue(at, f"DHCP range {key} is required", "vpc.subnet.dhcp-range-required")
        return None
    try:
        addr = parse_addr(text)
    except ValueError:
        yield FieldIssue(
            at, f"DHCP range {key} {text!r} is not an IP address", "vpc.subnet.dhcp-range-invalid"
        )
        return None
    if addr == net.network_address:
        yield FieldIssue(
            at,
            f"DHCP range {key} {text} is the subnet's network address",
            "vpc.subnet.dhcp-range-network",
        )
    elif gateway is not None and addr == gateway:
        yield FieldIssue(
            at, f"DHCP range {key} {text} is the gateway", "vpc.subnet.dhcp-range-gateway"
        )
    elif addr not in net:
        yield FieldIssue(
            at,
            f"DHCP range {key} {text} is outside the subnet {net}",
            "vpc.subnet.dhcp-range-outside",
        )
    else:
        return addr
    return None


def _option_rules(options: dict[str, Any], net: IPNetwork, at: Path) -> Iterator[FieldIssue]:
    for key, what in (("dnsServers", "DNS server"), ("timeServers", "time server")):
        for i, server in enumerate(options.get(key) or []):
            try:
                parse_addr(server)
            except (ValueError, TypeError):
                yield FieldIssue(
                    at + (key, i),
                    f"{what} {server!r} is not an IP address",
                    "vpc.subnet.dhcp-option-address",
                )
    mtu = options.get("interfaceMTU") or 0
    if not DHCP_MTU_MIN <= mtu <= DHCP_MTU_MAX:
        yield FieldIssue(
            at + ("interfaceMTU",),
            f"DHCP interface MTU must be {DHCP_MTU_MIN}-{DHCP_MTU_MAX} (got {mtu})",
            "vpc.subnet.dhcp-mtu",
        )
    if (options.get("leaseTimeSeconds") or 0) < 1:
        yield FieldIssue(
            at + ("leaseTimeSeconds",),
            "DHCP lease time must be at least 1 second",
            "vpc.subnet.dhcp-lease-time",
        )
    for i, route in enumerate(options.get("advertisedRoutes") or []):
        where = at + ("advertisedRoutes", i)
        dest, gw = route.get("destination") or "", route.get("gateway") or ""
        if not dest or not gw:
            missing = "destination" if not dest else "gateway"
            yield FieldIssue(
                where + (missing,),
                f"an advertised route needs a {missing}",
                "vpc.subnet.dhcp-route",
            )
            continue
        try:
            parse_prefix(dest)
            gw_addr = parse_addr(gw)
        except ValueError as exc:
            yield FieldIssue(where, f"advertised route: {exc}", "vpc.subnet.dhcp-route")
            continue
        if gw_addr not in net:
            yield FieldIssue(
                where + ("gateway",),
                f"advertised route gateway {gw} is outside the subnet {net}",
                "vpc.subnet.dhcp-route",
            )


def _static_lease_rules(
    static: dict[str, Any], net: IPNetwork, gateway_text: str, at: Path
) -> Iterator[FieldIssue]:
    seen: dict[str, str] = {}
    broadcast = str(net.broadcast_address)
    for mac, lease in static.items():
        where = at + (mac,)
        ip = (lease or {}).get("ip") or ""
        if not ip:
            yield FieldIssue(
                where + ("ip",), f"static lease for {mac} has no ip", "vpc.subnet.dhcp-static"
            )
            continue
        try:
            parse_mac(mac)
        except ValueError:
            yield FieldIssue(where, f"{mac!r} is not a MAC address", "vpc.subnet.dhcp-static")
            continue
        try:
            addr = parse_addr(ip)
        except ValueError:
            yield FieldIssue(
                where + ("ip",),
                f"static lease ip {ip!r} is not an IP address",
                "vpc.subnet.dhcp-static",
            )
            continue
        if addr not in net or addr == net.network_address or ip in (gateway_text, broadcast):
            yield FieldIssue(
                where + ("ip",),
                f"static lease ip {ip} must be a host address of {net}, not its network, "
                "gateway or broadcast address",
                "vpc.subnet.dhcp-static",
            )
        elif ip in seen:
            yield FieldIssue(
                where + ("ip",),
                f"static lease ip {ip} is also given to {seen[ip]}",
                "vpc.subnet.dhcp-static-duplicate",
            )
        seen.setdefault(ip, mac)


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
