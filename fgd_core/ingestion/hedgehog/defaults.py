"""Hedgehog's ``Default()`` per kind: what the mutating webhook fills in before validation.

``apply_defaults`` is pure: it returns a defaulted copy and never touches its argument, so
the managed file keeps what the user wrote while the rules see what Hedgehog would see.
It must not fail on a malformed spec (wrong types are reported by the schema check): every
step applies only where the values have the types it expects, as Go's typed structs would.

One deliberate difference: Hedgehog's VLANNamespace ``Default()`` replaces an invalid range
list by an empty one (which then passes validation, and the ranges are lost); here the list
is kept, so the range error is reported instead (docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fgd_core.ingestion.hedgehog.netparse import parse_mac, parse_prefix

DEFAULT_NAMESPACE = "default"  # Hedgehog's default IPv4Namespace and VLANNamespace name
DHCP_DEFAULT_MTU = 9036
DHCP_DEFAULT_LEASE_SECONDS = 3600
LINK_FLAP_DEFAULTS = (("flapThreshold", 3), ("samplingInterval", 30), ("recoveryInterval", 300))
DHCP_OPTION_KEYS = (  # a subnet's DHCP options (cleared, and refused, when DHCP is off)
    "pxeURL",
    "dnsServers",
    "timeServers",
    "interfaceMTU",
    "leaseTimeSeconds",
    "disableDefaultRoute",
    "advertisedRoutes",
)


def _empty(value: Any) -> bool:
    """Go's zero value (what ``omitempty`` leaves out)."""
    return value is None or value == "" or value == 0 or value is False or value == {}


def _default_vpc_subnet(subnet: dict[str, Any], sort: bool) -> None:
    try:
        _, net = parse_prefix(subnet.get("subnet"))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return
    if net.version != 4:
        return
    if _empty(subnet.get("gateway")) and subnet.get("hostBGP") is not True:
        subnet["gateway"] = str(net.network_address + 1)
    if net.prefixlen > 30:
        return
    dhcp = subnet.get("dhcp")
    if not isinstance(dhcp, dict):
        if dhcp is not None:
            return
        dhcp = {}
    if dhcp.get("enable") is not True:
        if "dhcp" in subnet:
            dhcp.pop("range", None)
            dhcp.pop("options", None)
        return
    rng = dhcp.get("range")
    if rng is None:
        rng = dhcp["range"] = {}
    if isinstance(rng, dict):
        if _empty(rng.get("start")):
            rng["start"] = str(net.network_address + 2)
        if _empty(rng.get("end")):
            rng["end"] = str(net.broadcast_address - 1)
    options = dhcp.get("options")
    if isinstance(options, dict):
        if all(_empty(options.get(k)) and options.get(k) != [] for k in DHCP_OPTION_KEYS):
            dhcp.pop("options")
            return  # Hedgehog skips the MAC normalization below in this case
        if _empty(options.get("interfaceMTU")):
            options["interfaceMTU"] = DHCP_DEFAULT_MTU
        if _empty(options.get("leaseTimeSeconds")):
            options["leaseTimeSeconds"] = DHCP_DEFAULT_LEASE_SECONDS
        for key in ("dnsServers", "timeServers", "advertisedRoutes"):
            if options.get(key) is None:
                options[key] = []
        for key in ("dnsServers", "timeServers") if sort else ():
            if isinstance(options[key], list) and all(isinstance(s, str) for s in options[key]):
                options[key] = sorted(options[key])
        routes = options["advertisedRoutes"]
        if sort and isinstance(routes, list) and all(isinstance(r, dict) for r in routes):
            options["advertisedRoutes"] = sorted(
                routes, key=lambda r: (str(r.get("destination", "")), str(r.get("gateway", "")))
            )
    static = dhcp.get("static")
    if isinstance(static, dict):
        normalized: dict[Any, Any] = {}
        for mac, entry in static.items():
            try:
                normalized[parse_mac(mac)] = entry
            except ValueError:
                normalized[mac] = entry
        dhcp["static"] = normalized


def _vpc(spec: dict[str, Any], sort: bool) -> None:
    for key in ("ipv4Namespace", "vlanNamespace"):
        if _empty(spec.get(key)):
            spec[key] = DEFAULT_NAMESPACE
    subnets = spec.get("subnets")
    if isinstance(subnets, dict):
        for subnet in subnets.values():
            if isinstance(subnet, dict):
                _default_vpc_subnet(subnet, sort)


def _vpc_attachment(spec: dict[str, Any], sort: bool) -> None:
    subnet = spec.get("subnet")
    if isinstance(subnet, str) and subnet and "/" not in subnet:
        spec["subnet"] = f"{subnet}/default"


def _external(spec: dict[str, Any], sort: bool) -> None:
    if _empty(spec.get("ipv4Namespace")):
        spec["ipv4Namespace"] = DEFAULT_NAMESPACE


def _sorted_strings(container: Any, key: str) -> None:
    if isinstance(container, dict):
        items = container.get(key)
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            container[key] = sorted(items)


def _external_peering(spec: dict[str, Any], sort: bool) -> None:
    permit = spec.get("permit")
    if not sort or not isinstance(permit, dict):
        return
    _sorted_strings(permit.get("vpc"), "subnets")
    ext = permit.get("external")
    prefixes = ext.get("prefixes") if isinstance(ext, dict) else None
    if isinstance(ext, dict) and isinstance(prefixes, list):
        ext["prefixes"] = sorted(
            prefixes, key=lambda p: str(p.get("prefix", "")) if isinstance(p, dict) else ""
        )


def _ipv4_namespace(spec: dict[str, Any], sort: bool) -> None:
    if sort:
        _sorted_strings(spec, "subnets")


def _vlan_namespace(spec: dict[str, Any], sort: bool) -> None:
    ranges = spec.get("ranges")
    if not isinstance(ranges, list) or not all(isinstance(r, dict) for r in ranges):
        return
    for r in ranges:
        if _empty(r.get("to")) and "from" in r:
            r["to"] = r["from"]
    bounds = [(r.get("from"), r.get("to")) for r in ranges]
    if sort and all(type(a) is int and type(b) is int and 1 <= a <= b <= 4094 for a, b in bounds):
        spec["ranges"] = sorted(ranges, key=lambda r: (r["from"], r["to"]))


def _switch(spec: dict[str, Any], sort: bool) -> None:
    for key in ("portGroupSpeeds", "portSpeeds"):
        speeds = spec.get(key)
        if isinstance(speeds, dict):
            spec[key] = {
                k: v.removeprefix("SPEED_") if isinstance(v, str) else v for k, v in speeds.items()
            }
    if not spec.get("vlanNamespaces"):
        spec["vlanNamespaces"] = [DEFAULT_NAMESPACE]
    redundancy = spec.get("redundancy")
    group = redundancy.get("group") if isinstance(redundancy, dict) else None
    groups = spec.get("groups")
    known = (groups or []) if groups is None or isinstance(groups, list) else None
    if isinstance(group, str) and group and known is not None and group not in known:
        spec["groups"] = [*known, group]
    flap = spec.get("linkFlapErrDisable")
    if isinstance(flap, dict):
        for key, value in LINK_FLAP_DEFAULTS:
            if flap.get(key) is None:
                flap[key] = value
    if sort:
        _sorted_strings(spec, "groups")
        _sorted_strings(spec, "vlanNamespaces")


_DEFAULTERS: dict[str, Callable[[dict[str, Any], bool], None]] = {
    "VPC": _vpc,
    "VPCAttachment": _vpc_attachment,
    "External": _external,
    "ExternalPeering": _external_peering,
    "IPv4Namespace": _ipv4_namespace,
    "VLANNamespace": _vlan_namespace,
    "Switch": _switch,
}


def tree_copy(value: Any) -> Any:
    """A deep copy of a parsed YAML tree (dicts, lists, scalars): several times faster
    than ``copy.deepcopy``, which matters on the sync's hot path."""
    t = type(value)
    if t is dict:
        return {k: tree_copy(v) for k, v in value.items()}
    if t is list:
        return [tree_copy(v) for v in value]
    return value


def has_defaults(kind: str) -> bool:
    """Whether ``Default()`` of ``kind`` can change its spec (others need no copy)."""
    return kind in _DEFAULTERS


def apply_defaults(kind: str, spec: dict[str, Any], *, sort_lists: bool = True) -> dict[str, Any]:
    """A copy of ``spec`` with Hedgehog's ``Default()`` for ``kind`` applied.

    Kinds whose ``Default()`` only touches metadata (labels, namespace) come back as an
    equal copy. ``spec`` itself is never changed. ``sort_lists=False`` leaves out the
    sorting Hedgehog does (subnets, prefixes, ranges, groups): validation uses it so that
    list indexes in error paths are the ones the user wrote.
    """
    defaulter = _DEFAULTERS.get(kind)
    out = tree_copy(spec)
    if defaulter is not None and isinstance(out, dict):
        defaulter(out, sort_lists)
    return out  # type: ignore[no-any-return]
