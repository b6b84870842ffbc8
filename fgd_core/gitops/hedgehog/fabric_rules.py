"""Hedgehog's fabric-wide rules: what its admission webhooks check against OTHER objects
(the part of each kind's ``Validate()`` that needs the cluster), run against the index of
the desired fabric instead of a cluster.

Every rule has a stable id (``rule``), the field it blames and a message in a network
engineer's words. Policy for what Git does not hold: a reference to a kind of which the
fabric's Git holds no object at all cannot be checked — a warning naming it, not an error
(Hedgehog's GitOps demo keeps only VPCs, attachments and peerings in Git; the wiring lives
in the cluster). Built-in switch profiles are known without Git (``switch_profiles``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fgd_core.errors import FGDErrorCodes
from fgd_core.gitops.hedgehog.fabric_index import (
    FabricIndex,
    FabricObject,
    dotted,
    inside,
    mask,
    port_key,
    switch_unique_values,
    v4_prefix,
)
from fgd_core.gitops.hedgehog.switch_profiles import Profile, catalog, profile_from_spec


@dataclass(frozen=True)
class FabricIssue:
    """One fabric-wide problem (an error, or a warning when the check could not be made)."""

    rule: str
    field: str
    message: str
    code: str = FGDErrorCodes.VALIDATION_FAILED
    target_kind: str = ""  # an unchecked reference's kind (warnings are grouped by it)

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "rule": self.rule,
                "message": self.message}


@dataclass(frozen=True)
class FabricWideConfig:
    """The fabric config values the cross-object rules need, at fabricator's defaults.

    D1's fabric_config (fgd_config.yaml) supplies these once merged.
    """

    fabric_subnet: str = "172.30.128.0/17"
    management_subnet: str = "172.30.0.0/21"
    management_dhcp_start: str = "172.30.4.0"
    control_vip: str = "172.30.0.1/32"
    protocol_subnet: str = "172.30.8.0/22"
    vtep_subnet: str = "172.30.12.0/22"
    spine_asn: int = 65100
    leaf_asn_start: int = 65101
    leaf_asn_end: int = 65533


DEFAULT_CONFIG = FabricWideConfig()
UNCHECKED = "fabric.reference-unchecked"
# Objects every Hedgehog installation has (fabricator creates them), in Git or not.
INSTALLER_DEFAULTS = ("IPv4Namespace", "VLANNamespace")


@dataclass
class Findings:
    errors: list[FabricIssue] = field(default_factory=list)
    warnings: list[FabricIssue] = field(default_factory=list)


class _Check:
    """Runs the rules of one object and collects what they find."""

    def __init__(self, obj: FabricObject, index: FabricIndex, cfg: FabricWideConfig) -> None:
        self.obj, self.index, self.cfg = obj, index, cfg
        self.out = Findings()
        self._warned: set[str] = set()

    def error(self, rule: str, field_path: str, message: str) -> None:
        self.out.errors.append(FabricIssue(rule, field_path, message))

    def ref(self, kind: str, name: str, field_path: str, rule: str,
            what: str | None = None) -> FabricObject | None:
        """The referenced object; or an error (missing), or a warning (kind not in Git)."""
        what = what or kind
        target = self.index.get(kind, name)
        if target is not None and target.namespace == self.obj.namespace:
            return target
        failing = self.index.withdrawn.get((kind, name))
        if failing is not None:
            self.error(rule, field_path,
                       f"{what} {name!r} is defined in {failing}, which fails validation")
            return None
        installer_made = name == "default" and kind in INSTALLER_DEFAULTS
        if not self.index.holds_kind(kind) or installer_made:
            if kind not in self._warned:
                self._warned.add(kind)
                why = (f"this fabric's Git holds no {kind} objects"
                       if not self.index.holds_kind(kind)
                       else f"Hedgehog's installer creates {kind} 'default' and this "
                            "fabric's Git does not hold it")
                self.out.warnings.append(FabricIssue(
                    UNCHECKED, field_path, f"{what} {name!r} not checked: {why}",
                    target_kind=kind,
                ))
            return None
        self.error(rule, field_path, f"{what} {name!r} not found")
        return None

    def profile(self, switch: FabricObject, field_path: str, rule: str) -> Profile | None:
        """The switch's profile: a SwitchProfile in Git, else Hedgehog's built-in one."""
        name = switch.facts["profile"]
        if not name:
            return None
        own = self.index.get("SwitchProfile", name)
        if own is not None:
            return profile_from_spec(name, own.facts.get("spec") or {})
        built_in = catalog().get(name)
        if built_in is not None:
            return built_in
        # Hedgehog's default fabric config allows only its built-in profiles (the catalog is
        # known here), so an unknown name is an error even when Git holds no SwitchProfile.
        self.error(rule, field_path, f"switch profile {name!r} is neither one of Hedgehog's "
                   "built-in profiles nor a SwitchProfile in this fabric's Git")
        return None


# ------------------------------------------------------------------------------ VPC


def _vpc(c: _Check) -> None:
    f = c.obj.facts
    ipns = c.ref("IPv4Namespace", f["ipns"], "spec.ipv4Namespace", "vpc.ipv4namespace-exists")
    vlanns = c.ref("VLANNamespace", f["vlanns"], "spec.vlanNamespace",
                   "vpc.vlannamespace-exists")
    for sub_name, (prefix, vlan, host_bgp, relay, start, length) in f["subnets"].items():
        at = f"spec.subnets.{sub_name}"
        if start is None:
            continue
        if ipns is not None and not any(inside(start, length, n) for n in ipns.facts["nets"]):
            c.error("vpc.subnet-in-ipv4namespace", f"{at}.subnet",
                    f"subnet {sub_name} ({prefix}) is outside IPv4Namespace {f['ipns']!r} "
                    f"({', '.join(ipns.facts['subnets']) or 'no subnets'})")
        if vlanns is not None and not host_bgp and not any(
            lo <= vlan <= hi for lo, hi in vlanns.facts["ranges"]
        ):
            c.error("vpc.vlan-in-vlannamespace", f"{at}.vlan",
                    f"VLAN {vlan} of subnet {sub_name} is outside VLANNamespace "
                    f"{f['vlanns']!r} ({_ranges(vlanns.facts['ranges'])})")
        if relay:
            c.ref("VPC", relay, f"{at}.dhcp.relayVPC", "vpc.dhcp-relay-vpc-exists",
                  "DHCP relay VPC")
        for other_net, (okey, osub) in c.index.subnets[f["ipns"]].overlapping(start, length):
            if okey != c.obj.key:
                c.error("vpc.subnet-overlap", f"{at}.subnet",
                        f"subnet {sub_name} ({prefix}) overlaps subnet {osub} ({other_net}) "
                        f"of VPC {okey[1]!r} in IPv4Namespace {f['ipns']!r}")
        if vlan and not host_bgp:
            for okey, osub in c.index.vlans.get((f["vlanns"], vlan), ()):
                if okey != c.obj.key:
                    c.error("vpc.vlan-unique", f"{at}.vlan",
                            f"VLAN {vlan} of subnet {sub_name} is already used by subnet "
                            f"{osub} of VPC {okey[1]!r} (VLANNamespace {f['vlanns']!r})")


def _ranges(ranges: list[list[int]]) -> str:
    return ", ".join(f"{lo}-{hi}" for lo, hi in ranges) or "no ranges"


# -------------------------------------------------------------------- VPCAttachment

_ATTACHABLE = ("unbundled", "bundled", "eslag")


def _vpc_attachment(c: _Check) -> None:
    f = c.obj.facts
    vpc = c.ref("VPC", f["vpc"], "spec.subnet", "vpcattachment.vpc-exists")
    subnet = None
    if vpc is not None:
        subnet = vpc.facts["subnets"].get(f["subnet"])
        if subnet is None:
            c.error("vpcattachment.subnet-exists", "spec.subnet",
                    f"subnet {f['subnet']!r} not found in VPC {f['vpc']!r}")
    conn = c.ref("Connection", f["conn"], "spec.connection", "vpcattachment.connection-exists")
    if conn is not None:
        ctype = conn.facts["type"]
        if ctype not in _ATTACHABLE:
            c.error("vpcattachment.connection-type", "spec.connection",
                    f"a VPC can be attached only to unbundled, bundled or eslag connections; "
                    f"{f['conn']!r} is {ctype or 'of no known type'}")
        elif vpc is not None:
            if ctype == "eslag" and vpc.facts["mode"] != "":
                c.error("vpcattachment.eslag-mode", "spec.connection",
                        f"VPC mode {vpc.facts['mode']} is not supported on eslag connections")
            if subnet is not None and subnet[2] and ctype != "unbundled":
                c.error("vpcattachment.hostbgp-unbundled", "spec.connection",
                        "only unbundled connections can attach to a hostBGP subnet")
            _attachment_switches(c, vpc, conn, subnet)
    for other_key in c.index.attachments_by_conn.get(f["conn"], ()):
        other = c.index.objects.get(other_key)
        if other is None or other is c.obj or other.key == c.obj.key:
            continue
        o = other.facts
        if (o["vpc"], o["subnet"]) == (f["vpc"], f["subnet"]):
            c.error("vpcattachment.unique", "spec.subnet",
                    f"connection {f['conn']!r} is already attached to {f['vpc']}/{f['subnet']} "
                    f"by VPCAttachment {other.name!r}")
        if f["native"] and o["native"]:
            c.error("vpcattachment.native-vlan-unique", "spec.nativeVLAN",
                    f"connection {f['conn']!r} is already attached with the native VLAN by "
                    f"VPCAttachment {other.name!r}")


def _attachment_switches(c: _Check, vpc: FabricObject, conn: FabricObject,
                         subnet: list[Any] | None) -> None:
    mode = vpc.facts["mode"]
    for sw_name in conn.facts["switches"]:
        sw = c.ref("Switch", sw_name, "spec.connection", "vpcattachment.switch-exists",
                   f"switch (of connection {conn.name!r})")
        if sw is None:
            continue
        s = sw.facts
        if vpc.facts["vlanns"] not in s["vlanns"]:
            c.error("vpcattachment.switch-vlannamespace", "spec.connection",
                    f"switch {sw_name!r} of connection {conn.name!r} does not have "
                    f"VLANNamespace {vpc.facts['vlanns']!r} of VPC {vpc.name!r}")
        prof = c.profile(sw, "spec.connection", "vpcattachment.switch-profile-exists")
        if prof is not None:
            l2 = prof.supports("l2vni") and prof.supports("l3vni")
            if (mode == "" and not l2) or (mode in ("l3vni", "l3flat")
                                           and not prof.supports("l3vni")):
                c.error("vpcattachment.switch-profile-mode", "spec.connection",
                        f"VPC mode {mode or 'l2vni'} is not supported by switch profile "
                        f"{prof.name!r} of switch {sw_name!r}")
        if subnet is not None and subnet[2] and s["rgroup"] and s["rtype"] == "mclag":
            c.error("vpcattachment.hostbgp-mclag", "spec.connection",
                    f"a hostBGP subnet cannot attach to switch {sw_name!r}, an MCLAG peer")


# ---------------------------------------------------------------------- VPCPeering


def _vpc_peering(c: _Check) -> None:
    f = c.obj.facts
    if len(f["vpcs"]) != 2:
        return  # a single-object rule (exactly two VPCs) reports this
    vpcs = {}
    for entry_vpc, _subnets, at in f["permit"]:
        if entry_vpc not in vpcs:
            vpcs[entry_vpc] = c.ref("VPC", entry_vpc, at, "vpcpeering.vpc-exists")
    a, b = (vpcs.get(v) for v in f["vpcs"])
    if a is not None and b is not None:
        if a.facts["ipns"] != b.facts["ipns"]:
            c.error("vpcpeering.same-ipv4namespace", "spec.permit",
                    f"VPCs {a.name!r} and {b.name!r} must be in the same IPv4Namespace "
                    f"({a.facts['ipns']!r} ≠ {b.facts['ipns']!r})")
        if a.facts["vlanns"] != b.facts["vlanns"]:
            c.error("vpcpeering.same-vlannamespace", "spec.permit",
                    f"VPCs {a.name!r} and {b.name!r} must be in the same VLANNamespace "
                    f"({a.facts['vlanns']!r} ≠ {b.facts['vlanns']!r})")
    for entry_vpc, subnets, at in f["permit"]:
        vpc = vpcs.get(entry_vpc)
        if vpc is None:
            continue
        for i, sub in enumerate(subnets):
            if sub not in vpc.facts["subnets"]:
                c.error("vpcpeering.subnet-exists", f"{at}.subnets[{i}]",
                        f"subnet {sub!r} not found in VPC {entry_vpc!r}")


# ------------------------------------------------------------------- externals


def _external(c: _Check) -> None:
    c.ref("IPv4Namespace", c.obj.facts["ipns"], "spec.ipv4Namespace",
          "external.ipv4namespace-exists")


def _external_attachment(c: _Check) -> None:
    f = c.obj.facts
    ext = c.ref("External", f["ext"], "spec.external", "externalattachment.external-exists")
    if ext is not None and ext.facts["static"] != f["static"]:
        c.error("externalattachment.static-matches", "spec.static",
                f"the attachment is {'' if f['static'] else 'not '}static but External "
                f"{f['ext']!r} is {'' if ext.facts['static'] else 'not '}static")
    conn = c.ref("Connection", f["conn"], "spec.connection",
                 "externalattachment.connection-exists")
    if conn is not None and conn.facts["type"] != "external":
        c.error("externalattachment.connection-type", "spec.connection",
                f"connection {f['conn']!r} is {conn.facts['type'] or 'of no known type'}, "
                "not external")
    for other_key in c.index.ext_attachments_by_conn.get(f["conn"], ()):
        other = c.index.objects.get(other_key)
        if other is None or other.key == c.obj.key:
            continue
        if other.facts["vlan"] == f["vlan"]:
            field_path = "spec.static.vlan" if f["static"] else "spec.switch.vlan"
            c.error("externalattachment.vlan-unique", field_path,
                    f"connection {f['conn']!r} already has an external attachment with VLAN "
                    f"{f['vlan']} ({other.name!r})")


def _external_peering(c: _Check) -> None:
    f = c.obj.facts
    vpc = c.ref("VPC", f["vpc"], "spec.permit.vpc.name", "externalpeering.vpc-exists")
    ext = c.ref("External", f["ext"], "spec.permit.external.name",
                "externalpeering.external-exists")
    if vpc is not None and ext is not None and vpc.facts["ipns"] != ext.facts["ipns"]:
        c.error("externalpeering.same-ipv4namespace", "spec.permit",
                f"VPC {f['vpc']!r} is in IPv4Namespace {vpc.facts['ipns']!r} but External "
                f"{f['ext']!r} is in {ext.facts['ipns']!r}")
    if vpc is not None:
        for i, sub in enumerate(f["subnets"]):
            if sub not in vpc.facts["subnets"]:
                c.error("externalpeering.subnet-exists", f"spec.permit.vpc.subnets[{i}]",
                        f"VPC {f['vpc']!r} has no subnet {sub!r}")


# ------------------------------------------------------------------- Connection


def _connection(c: _Check) -> None:
    f = c.obj.facts
    ctype = f["type"]
    groups: set[str] = set()
    rtypes: set[str] = set()
    for sw_name in f["switches"]:
        at = next((p[1] for p in f["ports"] if p[0].split("/", 1)[0] == sw_name), "spec")
        sw = c.ref("Switch", sw_name, at, "connection.switch-exists", "switch")
        if sw is None:
            continue
        if ctype == "eslag":
            if sw.facts["rgroup"]:
                groups.add(sw.facts["rgroup"])
            if sw.facts["rtype"]:
                rtypes.add(sw.facts["rtype"])
        prof = c.profile(sw, at, "connection.switch-profile-exists")
        if prof is None:
            continue
        allowed = prof.allowed_ports(sw.facts["breakouts"])
        for port, field_path, role in f["ports"]:
            device, _, local = port.partition("/")
            if role == "switch" and device == sw_name and local not in allowed:
                c.error("connection.port-allowed", field_path,
                        f"port {port} does not exist on switch {sw_name!r} (profile "
                        f"{prof.name!r}{_breakout_hint(local, sw.facts['breakouts'])})")
    if ctype == "eslag" and f["switches"] and all(
        c.index.get("Switch", s) is not None for s in f["switches"]
    ):
        if len(groups) > 1:
            c.error("connection.eslag-same-group", "spec.eslag.links",
                    f"all switches of an eslag connection must be in one redundancy group, "
                    f"found {', '.join(sorted(groups))}")
        elif not groups:
            c.error("connection.eslag-group", "spec.eslag.links",
                    "all switches of an eslag connection need a redundancy group")
        if rtypes != {"eslag"}:
            c.error("connection.eslag-type", "spec.eslag.links",
                    "all switches of an eslag connection need redundancy type eslag, found "
                    f"{', '.join(sorted(rtypes)) or 'none'}")
    for sv in f["servers"]:
        at = next((p[1] for p in f["ports"] if p[2] == "server"
                   and p[0].split("/", 1)[0] == sv), "spec")
        c.ref("Server", sv, at, "connection.server-exists", "server")
    for port, field_path, _role in f["ports"]:
        for other_key in c.index.ports.get(port_key(port), ()):
            if other_key != c.obj.key:
                c.error("connection.port-unique", field_path,
                        f"port {port} is already used by connection {other_key[1]!r}")
    _link_ips(c)


def _breakout_hint(local: str, breakouts: Mapping[str, str]) -> str:
    base = local.rsplit("/", 1)[0]
    mode = breakouts.get(base)
    return f", {base} broken out as {mode}" if mode else ""


def _link_ips(c: _Check) -> None:
    f = c.obj.facts
    fabric = _nets(c.cfg)["fabric"]
    by_link: dict[int, list[tuple[int, int, str]]] = {}
    for ip, field_path, link, addr_text in f["ips"]:
        parsed = v4_prefix(ip, host_bits=True)
        if parsed is None:
            continue
        addr, length = parsed
        by_link.setdefault(link, []).append((addr, length, field_path))
        if length != 31:
            c.error("connection.link-ip-31", field_path, f"link IP {ip} is not a /31")
        if not inside(addr, 32, fabric):
            c.error("connection.link-ip-in-fabric-subnet", field_path,
                    f"link IP {addr_text} is outside the fabric subnet {c.cfg.fabric_subnet}")
        for other_key in c.index.link_ips.get(addr_text, ()):
            if other_key != c.obj.key:
                c.error("connection.link-ip-unique", field_path,
                        f"link IP {addr_text} is already used by connection {other_key[1]!r}")
    for ends in by_link.values():
        (a1, l1, _), (a2, l2, at2) = ends[0], ends[-1]
        if len(ends) == 2 and (a1 & mask(l1), l1) != (a2 & mask(l2), l2):
            c.error("connection.link-ip-same-subnet", at2,
                    f"the two ends of a link must share one /31: {dotted(a1)}/{l1} and "
                    f"{dotted(a2)}/{l2}")


@lru_cache(maxsize=16)
def _nets(cfg: FabricWideConfig) -> dict[str, Any]:
    """The config's prefixes and addresses as ints, parsed once per config."""
    def net(text: str) -> tuple[int, int]:
        parsed = v4_prefix(text)
        assert parsed is not None, text
        return parsed

    return {
        "fabric": net(cfg.fabric_subnet),
        "management": net(cfg.management_subnet),
        "dhcp_start": net(cfg.management_dhcp_start + "/32")[0],
        "vip": net(cfg.control_vip)[0],
        "pip": net(cfg.protocol_subnet),
        "vtep": net(cfg.vtep_subnet),
    }


# ----------------------------------------------------------------------- Switch


def _switch(c: _Check) -> None:
    f = c.obj.facts
    ranges: list[tuple[int, int, str]] = []
    for i, ns in enumerate(f["vlanns"]):
        target = c.ref("VLANNamespace", ns, f"spec.vlanNamespaces[{i}]",
                       "switch.vlannamespace-exists")
        if target is not None:
            ranges += [(lo, hi, ns) for lo, hi in target.facts["ranges"]]
    ranges.sort()
    for (lo1, hi1, ns1), (lo2, hi2, ns2) in zip(ranges, ranges[1:], strict=False):
        if hi1 >= lo2:
            c.error("switch.vlannamespaces-overlap", "spec.vlanNamespaces",
                    f"VLAN ranges {lo1}-{hi1} ({ns1}) and {lo2}-{hi2} ({ns2}) overlap")
    for i, group in enumerate(f["groups"]):
        c.ref("SwitchGroup", group, f"spec.groups[{i}]", "switch.group-exists", "switch group")
    prof = c.profile(c.obj, "spec.profile", "switch.profile-exists")
    if prof is not None:
        for port, mode in f["breakouts"].items():
            at = f"spec.portBreakouts.{port}"
            if port not in prof.breakouts:
                c.error("switch.breakout-port", at,
                        f"port {port} cannot be broken out on profile {prof.name!r}")
            elif mode not in prof.breakouts[port][1]:
                c.error("switch.breakout-mode", at,
                        f"port {port} does not support breakout {mode} (supported: "
                        f"{', '.join(prof.breakouts[port][1])})")
        if f["rtype"] == "eslag" and not prof.supports("eslag"):
            c.error("switch.profile-eslag", "spec.redundancy.type",
                    f"ESLAG is not supported on switch profile {prof.name!r}")
        if f["roce"] and not prof.supports("roce"):
            c.error("switch.profile-roce", "spec.roce",
                    f"RoCEv2 is not supported on switch profile {prof.name!r}")
    _switch_hydration(c)


_UNIQUE_FIELDS = {"asn": ("spec.asn", "leaf ASN"), "vtep": ("spec.vtepIP", "VTEP IP"),
                  "pip": ("spec.protocolIP", "protocol IP"), "ip": ("spec.ip", "management IP")}


def _switch_hydration(c: _Check) -> None:
    f, cfg = c.obj.facts, c.cfg
    for kind_value in switch_unique_values(f):
        if kind_value[0] == "asn" and f["rtype"] == "mclag":
            continue  # Hedgehog still lets MCLAG peers share an ASN
        for other_key in c.index.switch_values.get(kind_value, ()):
            if other_key != c.obj.key:
                field_path, what = _UNIQUE_FIELDS[kind_value[0]]
                c.error(f"switch.{kind_value[0]}-unique", field_path,
                        f"{what} {kind_value[1]} is already used by switch {other_key[1]!r}")
    nets = _nets(cfg)
    ip = v4_prefix(f["ip"], host_bits=True) if f["ip"] else None
    if ip is not None:
        addr = ip[0]
        if not inside(addr, 32, nets["management"]):
            c.error("switch.ip-in-management-subnet", "spec.ip",
                    f"management IP {dotted(addr)} is outside the management subnet "
                    f"{cfg.management_subnet}")
        elif addr >= nets["dhcp_start"]:
            c.error("switch.ip-below-dhcp", "spec.ip",
                    f"management IP {dotted(addr)} is in the management DHCP range starting "
                    f"at {cfg.management_dhcp_start}")
        if addr == nets["vip"]:
            c.error("switch.ip-unique", "spec.ip",
                    f"management IP {dotted(addr)} is the control node's VIP")
    for key, subnet, what in (("pip", cfg.protocol_subnet, "protocol"),
                              ("vtep", cfg.vtep_subnet, "VTEP")):
        parsed = v4_prefix(f[key], host_bits=True) if f[key] else None
        field_path = _UNIQUE_FIELDS[key][0]
        if parsed is None:
            continue
        if parsed[1] != 32:
            c.error(f"switch.{key}-32", field_path, f"{what} IP {f[key]} must be a /32")
        if not inside(parsed[0], 32, nets[key]):
            c.error(f"switch.{key}-in-subnet", field_path,
                    f"{what} IP {dotted(parsed[0])} is outside the {what} subnet {subnet}")
    if f["asn"]:
        if f["role"].endswith("leaf") and not (
            cfg.leaf_asn_start <= f["asn"] <= cfg.leaf_asn_end
        ):
            c.error("switch.leaf-asn-range", "spec.asn",
                    f"leaf ASN {f['asn']} is outside the fabric's leaf ASN range "
                    f"{cfg.leaf_asn_start}-{cfg.leaf_asn_end}")
        if f["role"] == "spine" and f["asn"] != cfg.spine_asn:
            c.error("switch.spine-asn", "spec.asn",
                    f"spine ASN {f['asn']} is not the fabric's spine ASN {cfg.spine_asn}")


_RULES = {
    "VPC": _vpc,
    "VPCAttachment": _vpc_attachment,
    "VPCPeering": _vpc_peering,
    "External": _external,
    "ExternalAttachment": _external_attachment,
    "ExternalPeering": _external_peering,
    "Connection": _connection,
    "Switch": _switch,
}


def check_object(obj: FabricObject, index: FabricIndex,
                 cfg: FabricWideConfig = DEFAULT_CONFIG) -> Findings:
    """The fabric-wide findings for one object of ``index``."""
    rule = _RULES.get(obj.kind)
    if rule is None:
        return Findings()
    check = _Check(obj, index, cfg)
    rule(check)
    return check.out


def update_findings(old: FabricObject, new: FabricObject) -> Iterator[FabricIssue]:
    """Rules about replacing ``old`` by ``new`` (Hedgehog's ValidateUpdate)."""
    if old.kind == "Connection" and old.facts["type"] != new.facts["type"]:
        yield FabricIssue("connection.type-immutable", f"spec.{new.facts['type']}",
                          f"a connection's type cannot change (Git has {old.name!r} as "
                          f"{old.facts['type'] or 'no known type'})")
    elif old.kind == "Connection" and old.facts.get("within") != new.facts.get("within"):
        yield FabricIssue("connection.within-vpc-immutable", "spec.staticExternal.withinVPC",
                          "a static external connection's withinVPC cannot change")
    elif old.kind == "Switch" and (old.facts["roce"] or new.facts["roce"]) and (
        old.facts["breakouts"] != new.facts["breakouts"]
    ):
        yield FabricIssue("switch.breakouts-roce", "spec.portBreakouts",
                          "port breakouts cannot change while RoCEv2 is enabled")
