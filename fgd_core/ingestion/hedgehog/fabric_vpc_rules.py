"""Fabric-wide rules of the vpc.githedgehog.com kinds: VPC, VPCAttachment, VPCPeering,
External, ExternalAttachment, ExternalPeering (the part of their ``Validate()`` that
needs other objects)."""

from __future__ import annotations

from typing import Any

from fgd_core.ingestion.hedgehog.fabric_index import (
    FabricObject,
    inside,
)
from fgd_core.ingestion.hedgehog.fabric_rule_base import Check

# ------------------------------------------------------------------------------ VPC


def check_vpc(c: Check) -> None:
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


def check_vpc_attachment(c: Check) -> None:
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


def _attachment_switches(c: Check, vpc: FabricObject, conn: FabricObject,
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


def check_vpc_peering(c: Check) -> None:
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


def check_external(c: Check) -> None:
    c.ref("IPv4Namespace", c.obj.facts["ipns"], "spec.ipv4Namespace",
          "external.ipv4namespace-exists")


def check_external_attachment(c: Check) -> None:
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


def check_external_peering(c: Check) -> None:
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
