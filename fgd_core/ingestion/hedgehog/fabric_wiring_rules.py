"""Fabric-wide rules of the wiring.githedgehog.com kinds: Connection (switches, servers,
ports on the switch profile, port and link IP reuse) and Switch (namespaces, groups,
profile, breakouts, hydrated ASNs and IPs)."""

from __future__ import annotations

from collections.abc import Mapping

from fgd_core.ingestion.hedgehog.fabric_index import (
    dotted,
    inside,
    mask,
    port_key,
    switch_unique_values,
    v4_prefix,
)
from fgd_core.ingestion.hedgehog.fabric_rule_base import Check, config_nets

# ------------------------------------------------------------------- Connection


def check_connection(c: Check) -> None:
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


def _link_ips(c: Check) -> None:
    f = c.obj.facts
    fabric = config_nets(c.cfg)["fabric"]
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


# ----------------------------------------------------------------------- Switch


def check_switch(c: Check) -> None:
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


def _switch_hydration(c: Check) -> None:
    f, cfg = c.obj.facts, c.cfg
    for kind_value in switch_unique_values(f):
        if kind_value[0] == "asn" and f["rtype"] == "mclag":
            continue  # Hedgehog still lets MCLAG peers share an ASN
        for other_key in c.index.switch_values.get(kind_value, ()):
            if other_key != c.obj.key:
                field_path, what = _UNIQUE_FIELDS[kind_value[0]]
                c.error(f"switch.{kind_value[0]}-unique", field_path,
                        f"{what} {kind_value[1]} is already used by switch {other_key[1]!r}")
    nets = config_nets(cfg)
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
