"""Hedgehog's single-object rules for Connection and Switch (Server, SwitchGroup and
ServerProfile have none beyond their metadata)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fgd_core.ingestion.hedgehog.fabric_config import FabricConfig
from fgd_core.ingestion.hedgehog.issues import FieldIssue, Path, format_path
from fgd_core.ingestion.hedgehog.netparse import (
    IPNetwork,
    first_overlap,
    parse_addr,
    parse_prefix,
)

_SPEC: Path = ("spec",)
# The connection types, and for each: where its links are, and which link ends are
# switches ("sw"), servers ("srv") or gateways ("gw").
_LINK_ENDS: dict[str, tuple[tuple[str, str], ...]] = {
    "unbundled": (("switch", "sw"), ("server", "srv")),
    "bundled": (("switch", "sw"), ("server", "srv")),
    "eslag": (("switch", "sw"), ("server", "srv")),
    "fabric": (("spine", "sw"), ("leaf", "sw")),
    "mesh": (("leaf1", "sw"), ("leaf2", "sw")),
    "gateway": (("switch", "sw"), ("gateway", "gw")),
    "vpcLoopback": (("switch1", "sw"), ("switch2", "sw")),
    "external": (("switch", "sw"),),
    "staticExternal": (("switch", "sw"),),
}
SINGLE_LINK = ("unbundled", "external", "staticExternal")  # "link:" instead of "links:"
MCLAG_TYPES = ("mclag", "mclagDomain")
CONNECTION_TYPES = tuple(_LINK_ENDS) + MCLAG_TYPES
SERVER_FACING_MTU = ("unbundled", "bundled")
MAX_ESLAG_SWITCHES = 4
# The CRD's patterns for fabric, mesh, gateway and staticExternal addresses (IPv4 only).
IPV4_CIDR_RE = re.compile(
    r"^((25[0-5]|(2[0-4]|1\d|[1-9]|)\d)\.?\b){4}/([1-2]?[0-9]|3[0-2])$", re.ASCII
)
IPV4_RE = re.compile(r"^((25[0-5]|(2[0-4]|1\d|[1-9]|)\d)\.?\b){4}$", re.ASCII)


def connection_type(spec: dict[str, Any]) -> list[str]:
    """The connection types a spec sets (Hedgehog wants exactly one)."""
    return [t for t in CONNECTION_TYPES if spec.get(t) is not None]


def connection_rules(name: str, spec: dict[str, Any], cfg: FabricConfig) -> Iterator[FieldIssue]:
    found = connection_type(spec)
    if len(found) != 1:
        what = ", ".join(found) if found else "none"
        yield FieldIssue(
            _SPEC,
            f"a Connection needs exactly one connection type (found: {what}; one of "
            f"{', '.join(CONNECTION_TYPES)})",
            "connection.one-type",
        )
        return
    kind = found[0]
    body: dict[str, Any] = spec[kind]
    if kind in MCLAG_TYPES:
        yield FieldIssue(
            _SPEC + (kind,),
            "MCLAG is deprecated and no longer supported",
            "connection.mclag",
            warning=True,
        )
        return
    at: Path = _SPEC + (kind,)
    if kind in SERVER_FACING_MTU and (body.get("mtu") or 0) > cfg.max_server_mtu:
        yield FieldIssue(
            at + ("mtu",),
            f"a server-facing MTU can be at most {cfg.max_server_mtu} (fabric MTU "
            f"{cfg.fabric_mtu} minus the server-facing offset {cfg.server_facing_mtu_offset})",
            "connection.mtu",
        )
    links = [body.get("link") or {}] if kind in SINGLE_LINK else body.get("links") or []
    yield from _endpoint_rules(kind, links, at)
    if kind == "staticExternal":
        yield from _static_external_rules(body.get("link") or {}, at + ("link",), cfg)


def _endpoint_rules(kind: str, links: list[dict[str, Any]], at: Path) -> Iterator[FieldIssue]:
    devices: dict[str, set[str]] = {"sw": set(), "srv": set(), "gw": set()}
    ports: dict[str, Path] = {}
    for i, link in enumerate(links):
        where = at + (("link",) if kind in SINGLE_LINK else ("links", i))
        for end, role in _LINK_ENDS[kind]:
            port = (link.get(end) or {}).get("port") or ""
            path = where + (end, "port")
            device, sep, local = port.partition("/")
            if not sep or not device or not local:
                yield FieldIssue(
                    path,
                    f"port {port!r} must be written <device>/<port>, e.g. leaf-01/E1/1",
                    "connection.port-format",
                )
                continue
            devices[role].add(device)
            if port in ports:
                yield FieldIssue(
                    path,
                    f"port {port} is used twice in this connection (also at "
                    f"{format_path(ports[port])})",
                    "connection.port-unique",
                )
            ports.setdefault(port, path)
            if kind in ("fabric", "mesh", "gateway"):
                ip = (link.get(end) or {}).get("ip")
                if ip and not IPV4_CIDR_RE.match(ip):
                    yield FieldIssue(
                        where + (end, "ip"),
                        f"ip {ip!r} must be an IPv4 address with prefix length",
                        "connection.ip-format",
                    )
    yield from _device_counts(kind, devices, at)


def _device_counts(kind: str, devices: dict[str, set[str]], at: Path) -> Iterator[FieldIssue]:
    switches, servers = len(devices["sw"]), len(devices["srv"])
    need = None
    if kind in ("unbundled", "bundled", "gateway", "vpcLoopback") and switches > 1:
        need = "all its links on one switch"
    elif kind in ("fabric", "mesh") and switches != 2:
        need = "exactly two switches"
    elif kind == "eslag" and switches > MAX_ESLAG_SWITCHES:
        need = f"at most {MAX_ESLAG_SWITCHES} switches (found {switches})"
    if need:
        yield FieldIssue(at, f"a {kind} connection needs {need}", f"connection.{kind}-switches")
    if kind in ("unbundled", "bundled", "eslag") and servers > 1:
        yield FieldIssue(
            at, f"a {kind} connection needs all its links on one server", "connection.one-server"
        )


def _static_external_rules(
    link: dict[str, Any], at: Path, cfg: FabricConfig
) -> Iterator[FieldIssue]:
    switch: dict[str, Any] = link.get("switch") or {}
    where = at + ("switch",)
    ip, next_hop = switch.get("ip") or "", switch.get("nextHop") or ""
    net = None
    if not IPV4_CIDR_RE.match(ip):
        yield FieldIssue(
            where + ("ip",),
            f"ip {ip!r} must be an IPv4 address with prefix length (a.b.c.d/n)",
            "connection.static-external-ip",
        )
    else:
        net = parse_prefix(ip)[1]
    if not IPV4_RE.match(next_hop):
        yield FieldIssue(
            where + ("nextHop",),
            f"nextHop {next_hop!r} must be an IPv4 address",
            "connection.static-external-next-hop",
        )
    elif net is not None and parse_addr(next_hop) not in net:
        yield FieldIssue(
            where + ("nextHop",),
            f"next hop {next_hop} is outside the switch's subnet {net}",
            "connection.static-external-next-hop",
        )
    subnets: list[str] = switch.get("subnets") or []
    nets: list[IPNetwork] = []
    for i, text in enumerate(subnets):
        try:
            addr, snet = parse_prefix(text)
        except ValueError:
            yield FieldIssue(
                where + ("subnets", i), f"{text!r} is not a prefix", "connection.static-subnet"
            )
            continue
        if text == "0.0.0.0/0":
            if len(subnets) > 1:
                yield FieldIssue(
                    where + ("subnets",),
                    "the default route 0.0.0.0/0 must be the only subnet",
                    "connection.static-subnet",
                )
            return
        if addr != snet.network_address:
            yield FieldIssue(
                where + ("subnets", i),
                f"subnet {text} has host bits set (use {snet})",
                "connection.static-subnet",
            )
            continue
        nets.append(snet)
    pair = first_overlap(nets)
    if pair is not None:
        yield FieldIssue(
            where + ("subnets",),
            f"subnets {nets[pair[0]]} and {nets[pair[1]]} overlap",
            "connection.static-subnet-overlap",
        )
    for snet in nets:
        reserved = cfg.reserved_overlap(snet)
        if reserved is not None:
            yield FieldIssue(
                where + ("subnets",),
                f"subnet {snet} overlaps {reserved}, which the fabric reserves for itself",
                "connection.static-subnet-reserved",
            )


# ------------------------------------------------------------------------------- Switch

REDUNDANCY_TYPES = ("", "mclag", "eslag")


def switch_rules(name: str, spec: dict[str, Any], cfg: FabricConfig) -> Iterator[FieldIssue]:
    # ASN, ip, protocolIP and vtepIP are left to hydration (hhfab fills them in before
    # Hedgehog validates); only what hydration never changes is checked here.
    role = spec.get("role") or ""
    if role == "spine" and spec.get("vtepIP"):
        yield FieldIssue(
            _SPEC + ("vtepIP",), "a spine switch takes no vtepIP", "switch.spine-vtep-ip"
        )
    if not spec.get("profile"):
        yield FieldIssue(
            _SPEC + ("profile",),
            "a Switch needs a profile (its SwitchProfile)",
            "switch.profile-required",
        )
    redundancy: dict[str, Any] = spec.get("redundancy") or {}
    group, rtype = redundancy.get("group") or "", redundancy.get("type") or ""
    if group and not rtype:
        yield FieldIssue(
            _SPEC + ("redundancy", "type"),
            "a redundancy group needs a redundancy type (eslag or mclag)",
            "switch.redundancy-type",
        )
    if rtype and not group:
        yield FieldIssue(
            _SPEC + ("redundancy", "group"),
            f"{rtype} redundancy needs a group",
            "switch.redundancy-group",
        )
