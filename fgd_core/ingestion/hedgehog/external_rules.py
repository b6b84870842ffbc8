"""Hedgehog's single-object rules for External, ExternalAttachment and ExternalPeering."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fgd_core.ingestion.hedgehog.fabric_config import FabricConfig
from fgd_core.ingestion.hedgehog.issues import FieldIssue, Path
from fgd_core.ingestion.hedgehog.netparse import IPNetwork, first_overlap, parse_addr, parse_prefix
from fgd_core.ingestion.hedgehog.vpc_rules import name_rules

_SPEC: Path = ("spec",)
# A standard BGP community "asn:value", both halves 0-65535, no leading zeros.
_U16 = (
    r"(6553[0-5]|655[0-2][0-9]|654[0-9]{2}|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}"
    r"|[1-9][0-9]{1,3}|[0-9])"
)
COMMUNITY_RE = re.compile(rf"^{_U16}:{_U16}$")
ACL_ACTIONS = ("permit", "deny", "discard", "transit")
ACL_PROTOCOLS = ("ip", "tcp", "udp", "icmp")
ACL_MIN_SEQ = 10
ACL_ANY = "any"
_TCP_FLAGS = ("fin", "syn", "rst", "psh", "ack", "urg")


def external_rules(name: str, spec: dict[str, Any], cfg: FabricConfig) -> Iterator[FieldIssue]:
    yield from name_rules("External", name)
    static = spec.get("static")
    communities = ("inboundCommunity", "outboundCommunity")
    if static is None:
        for key in communities:
            value = spec.get(key) or ""
            if value and not COMMUNITY_RE.match(value):
                yield FieldIssue(
                    _SPEC + (key,),
                    f"{key} {value!r} is not a BGP community (asn:value, each 0-65535, "
                    "e.g. 50000:50001)",
                    "external.community",
                )
        return
    for key in communities:
        if spec.get(key):
            yield FieldIssue(
                _SPEC + (key,),
                "a static External takes no BGP communities",
                "external.static-communities",
            )
    prefixes = static.get("prefixes") or []
    if not prefixes:
        yield FieldIssue(
            _SPEC + ("static", "prefixes"),
            "a static External needs at least one prefix",
            "external.static-prefixes-required",
        )
    nets: list[IPNetwork] = []
    for i, text in enumerate(prefixes):
        try:
            nets.append(parse_prefix(text)[1])
        except ValueError:
            yield FieldIssue(
                _SPEC + ("static", "prefixes", i),
                f"{text!r} is not a prefix (a.b.c.d/n)",
                "external.static-prefix-invalid",
            )
    if len(nets) == len(prefixes) and (pair := first_overlap(nets)) is not None:
        a, b = pair
        yield FieldIssue(
            _SPEC + ("static", "prefixes", b),
            f"static prefixes {nets[a]} and {nets[b]} overlap",
            "external.static-prefix-overlap",
        )


# ------------------------------------------------------------------- ExternalAttachment


def _cidr_ok(text: str) -> bool:
    try:
        parse_prefix(text)
    except ValueError:
        return False
    return True


def external_attachment_rules(
    name: str, spec: dict[str, Any], cfg: FabricConfig
) -> Iterator[FieldIssue]:
    for key in ("external", "connection"):
        if not spec.get(key):
            yield FieldIssue(
                _SPEC + (key,), f"an ExternalAttachment needs {key}", f"extattach.{key}-required"
            )
    switch: dict[str, Any] = spec.get("switch") or {}
    neighbor: dict[str, Any] = spec.get("neighbor") or {}
    static = spec.get("static")
    if static is None:
        yield from _bgp_attachment(switch, neighbor)
    else:
        yield from _static_attachment(switch, neighbor, static)
    acl = spec.get("inboundACL")
    if acl is not None:
        yield from _acl_rules(acl.get("statements") or [], _SPEC + ("inboundACL", "statements"))


def _bgp_attachment(switch: dict[str, Any], neighbor: dict[str, Any]) -> Iterator[FieldIssue]:
    ip = switch.get("ip") or ""
    if not ip:
        yield FieldIssue(
            _SPEC + ("switch", "ip"),
            "a BGP ExternalAttachment needs switch.ip (address/prefix length)",
            "extattach.switch-ip",
        )
    elif not _cidr_ok(ip):
        yield FieldIssue(
            _SPEC + ("switch", "ip"),
            f"switch.ip {ip!r} must be an address with prefix length (a.b.c.d/n)",
            "extattach.switch-ip",
        )
    if not neighbor.get("asn"):
        yield FieldIssue(
            _SPEC + ("neighbor", "asn"),
            "a BGP ExternalAttachment needs the neighbor's ASN",
            "extattach.neighbor-asn",
        )
    nip = neighbor.get("ip") or ""
    if not nip:
        yield FieldIssue(
            _SPEC + ("neighbor", "ip"),
            "a BGP ExternalAttachment needs the neighbor's IP",
            "extattach.neighbor-ip",
        )
    else:
        try:
            parse_addr(nip)
        except ValueError:
            yield FieldIssue(
                _SPEC + ("neighbor", "ip"),
                f"neighbor.ip {nip!r} is not an IP address",
                "extattach.neighbor-ip",
            )


def _static_attachment(
    switch: dict[str, Any], neighbor: dict[str, Any], static: dict[str, Any]
) -> Iterator[FieldIssue]:
    if switch.get("ip") or switch.get("vlan"):
        yield FieldIssue(
            _SPEC + ("switch",),
            "a static ExternalAttachment takes no switch ip or vlan (they go under static)",
            "extattach.static-switch",
        )
    if neighbor.get("asn") or neighbor.get("ip"):
        yield FieldIssue(
            _SPEC + ("neighbor",),
            "a static ExternalAttachment has no BGP neighbor",
            "extattach.static-neighbor",
        )
    remote = static.get("remoteIP") or ""
    try:
        parse_addr(remote)
    except ValueError:
        yield FieldIssue(
            _SPEC + ("static", "remoteIP"),
            "a static ExternalAttachment needs static.remoteIP, an IP address",
            "extattach.static-remote-ip",
        )
    ip, proxy = static.get("ip") or "", static.get("proxy") is True
    if bool(ip) == proxy:
        yield FieldIssue(
            _SPEC + ("static",),
            "a static ExternalAttachment needs exactly one of static.ip and static.proxy",
            "extattach.static-ip-or-proxy",
        )
    if ip and not _cidr_ok(ip):
        yield FieldIssue(
            _SPEC + ("static", "ip"),
            f"static.ip {ip!r} must be an address with prefix length (a.b.c.d/n)",
            "extattach.static-ip",
        )


def _acl_rules(statements: list[dict[str, Any]], at: Path) -> Iterator[FieldIssue]:
    seen: set[int] = set()
    for i, stmt in enumerate(statements):
        where = at + (i,)
        seq, proto = stmt.get("seq") or 0, stmt.get("protocol") or ""
        if seq < ACL_MIN_SEQ:
            yield FieldIssue(
                where + ("seq",),
                f"ACL sequence numbers below {ACL_MIN_SEQ} are reserved (got {seq})",
                "extattach.acl-seq",
            )
        elif seq in seen:
            yield FieldIssue(
                where + ("seq",), f"ACL sequence number {seq} is used twice", "extattach.acl-seq"
            )
        seen.add(seq)
        if (stmt.get("action") or "") not in ACL_ACTIONS:
            yield FieldIssue(
                where + ("action",),
                f"ACL action must be one of {', '.join(ACL_ACTIONS)}",
                "extattach.acl-action",
            )
        if proto not in ACL_PROTOCOLS:
            yield FieldIssue(
                where + ("protocol",),
                f"ACL protocol must be one of {', '.join(ACL_PROTOCOLS)}",
                "extattach.acl-protocol",
            )
        for key in ("srcPrefix", "dstPrefix"):
            value = stmt.get(key) or ""
            if value != ACL_ANY and not _cidr_ok(value):
                yield FieldIssue(
                    where + (key,),
                    f"{key} must be 'any' or a prefix (a.b.c.d/n)",
                    "extattach.acl-prefix",
                )
        yield from _acl_match_rules(stmt, proto, where)


def _acl_match_rules(stmt: dict[str, Any], proto: str, where: Path) -> Iterator[FieldIssue]:
    tcp = stmt.get("tcpFilters")
    if tcp is not None:
        if proto != "tcp":
            yield FieldIssue(
                where + ("tcpFilters",), "tcpFilters need protocol tcp", "extattach.acl-tcp"
            )
        flags = [f for f in _TCP_FLAGS if tcp.get(f)] + [
            f for f in _TCP_FLAGS if tcp.get("not" + f.capitalize())
        ]
        if tcp.get("established") and flags:
            yield FieldIssue(
                where + ("tcpFilters",),
                "established excludes the individual TCP flags",
                "extattach.acl-tcp",
            )
        if any(tcp.get(f) and tcp.get("not" + f.capitalize()) for f in _TCP_FLAGS):
            yield FieldIssue(
                where + ("tcpFilters",),
                "a TCP flag and its negation contradict each other",
                "extattach.acl-tcp",
            )
    if (stmt.get("icmpType") is not None or stmt.get("icmpCode") is not None) and proto != "icmp":
        yield FieldIssue(where, "icmpType/icmpCode need protocol icmp", "extattach.acl-icmp")
    begin, end = stmt.get("portRangeBegin") or 0, stmt.get("portRangeEnd") or 0
    if begin or end:
        if proto not in ("tcp", "udp"):
            yield FieldIssue(
                where, "a port range needs protocol tcp or udp", "extattach.acl-port-range"
            )
        if begin == 0 or begin > end:
            yield FieldIssue(
                where,
                f"port range {begin}-{end} must start at 1 or more and not after its end",
                "extattach.acl-port-range",
            )


# ---------------------------------------------------------------------- ExternalPeering


def external_peering_rules(
    name: str, spec: dict[str, Any], cfg: FabricConfig
) -> Iterator[FieldIssue]:
    permit: dict[str, Any] = spec.get("permit") or {}
    for side in ("vpc", "external"):
        if not (permit.get(side) or {}).get("name"):
            yield FieldIssue(
                _SPEC + ("permit", side, "name"),
                f"an ExternalPeering needs permit.{side}.name",
                f"extpeering.{side}-name",
            )
    for i, prefix in enumerate((permit.get("external") or {}).get("prefixes") or []):
        if not prefix.get("prefix"):
            yield FieldIssue(
                _SPEC + ("permit", "external", "prefixes", i, "prefix"),
                "each external prefix entry needs a prefix",
                "extpeering.prefix-required",
            )
