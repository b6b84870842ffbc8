"""Hedgehog's single-object rules for a VPC subnet's DHCP: relay or server, the range, the
options and the static leases (on the defaulted spec: ``Default()`` fills the range and the
options' MTU and lease time when DHCP is on, and clears them when it is off)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from fgd_core.ingestion.hedgehog.defaults import DHCP_OPTION_KEYS
from fgd_core.ingestion.hedgehog.issues import FieldIssue, Path
from fgd_core.ingestion.hedgehog.netparse import (
    IPAddress,
    IPNetwork,
    parse_addr,
    parse_mac,
    parse_prefix,
)

DHCP_MTU_MIN, DHCP_MTU_MAX = 96, 9036


def dhcp_rules(
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
        for key in DHCP_OPTION_KEYS:
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
