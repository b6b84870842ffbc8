"""An index of the desired fabric, so that fabric-wide checks are lookups, never pairwise.

Each object is reduced to its *facts*: the few values other objects' rules look at (a
VPC's namespaces and subnets, a Connection's switches and ports, …), as plain JSON-safe
data — cheap to keep for 10,000 objects, and cacheable by the content they came from.
``FabricIndex`` holds the objects by kind and name plus the secondary maps the rules
query: subnets per IPv4Namespace, VLANs per VLANNamespace, switch ports in use, fabric
link IPs, switch ASNs and IPs, attachments per connection, and who refers to whom.
Objects can be added, replaced and removed, so the sync can take a failing file out of
the desired fabric and check again.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fgd_core.ingestion.hedgehog.defaults import apply_defaults, has_defaults

Key = tuple[str, str]  # (kind, name)



@dataclass(eq=False)
class FabricObject:
    """One object of the desired fabric: who it is, its facts, and where it came from."""

    kind: str
    name: str
    namespace: str
    facts: dict[str, Any]
    source: str = ""  # the file it lives in (raw or managed path)
    index: int | None = None  # document index within that file
    line: int | None = None  # line where the document starts
    # For an incoming object: the managed path and blob id it will be written as.
    landing_at: tuple[str, str] | None = None
    key: Key = field(init=False)  # (kind, name): looked up thousands of times per sync

    def __post_init__(self) -> None:
        self.key = (self.kind, self.name)


# --------------------------------------------------------------------------- facts


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _m(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _i(value: Any) -> int:
    return value if type(value) is int else 0


def _port(value: Any) -> str:
    return _s(_m(value).get("port"))


# Where each connection type keeps its ports: (links key, is a list, [(endpoint, role)]).
# role: "switch" | "server" | "gateway"; the device is the part of the port before "/".
_CONNECTION_PORTS: Mapping[str, tuple[str, bool, tuple[tuple[str, str], ...]]] = {
    "unbundled": ("link", False, (("switch", "switch"), ("server", "server"))),
    "bundled": ("links", True, (("switch", "switch"), ("server", "server"))),
    "eslag": ("links", True, (("switch", "switch"), ("server", "server"))),
    "fabric": ("links", True, (("spine", "switch"), ("leaf", "switch"))),
    "mesh": ("links", True, (("leaf1", "switch"), ("leaf2", "switch"))),
    "gateway": ("links", True, (("switch", "switch"), ("gateway", "gateway"))),
    "vpcLoopback": ("links", True, (("switch1", "switch"), ("switch2", "switch"))),
    "external": ("link", False, (("switch", "switch"),)),
    "staticExternal": ("link", False, (("switch", "switch"),)),
}
# Connection types whose links carry point-to-point fabric IPs (checked for reuse).
IP_LINK_TYPES = ("fabric", "mesh", "gateway")
CONNECTION_TYPE_ORDER = (
    "unbundled", "bundled", "eslag", "fabric", "mesh", "gateway", "vpcLoopback",
    "external", "staticExternal", "mclag", "mclagDomain",
)


def _connection_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    ctype = next((t for t in CONNECTION_TYPE_ORDER if spec.get(t) is not None), "")
    facts: dict[str, Any] = {"type": ctype, "switches": [], "servers": [], "ports": [],
                             "ips": []}
    shape = _CONNECTION_PORTS.get(ctype)
    if shape is None:  # mclag / mclagDomain: Hedgehog no longer looks at their endpoints
        return facts
    body = _m(spec.get(ctype))
    key, many, ends = shape
    links = _l(body.get(key)) if many else [body.get(key)]
    switches: dict[str, None] = {}
    servers: dict[str, None] = {}
    for i, link in enumerate(links):
        link = _m(link)
        base = f"spec.{ctype}.{key}" + (f"[{i}]" if many else "")
        for end, role in ends:
            port = _port(link.get(end))
            if not port:
                continue
            device = port.split("/", 1)[0]
            field_path = f"{base}.{end}.port"
            facts["ports"].append([port, field_path, role])
            if role == "switch":
                switches[device] = None
            elif role == "server":
                servers[device] = None
            ip = _s(_m(link.get(end)).get("ip"))
            if ip and ctype in IP_LINK_TYPES:
                addr = v4_prefix(ip, host_bits=True)
                facts["ips"].append([ip, f"{base}.{end}.ip", i,
                                     dotted(addr[0]) if addr else ""])
    facts["switches"], facts["servers"] = list(switches), list(servers)
    if ctype == "staticExternal":
        facts["within"] = _s(body.get("withinVPC"))
    return facts


def _vpc_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    # subnet name → [prefix, vlan, hostBGP, relayVPC, network start (int), prefix length]
    subnets: dict[str, list[Any]] = {}
    for name, sub in _m(spec.get("subnets")).items():
        sub = _m(sub)
        dhcp = _m(sub.get("dhcp"))
        prefix = _s(sub.get("subnet"))
        start, length = v4_prefix(prefix) or (None, None)
        subnets[str(name)] = [
            prefix,
            _i(sub.get("vlan")),
            sub.get("hostBGP") is True,
            _s(dhcp.get("relayVPC")),
            start,
            length,
        ]
    return {
        "ipns": _s(spec.get("ipv4Namespace")),
        "vlanns": _s(spec.get("vlanNamespace")),
        "mode": _s(spec.get("mode")),
        "subnets": subnets,
    }


def _attachment_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    ref = _s(spec.get("subnet"))
    vpc, _, subnet = ref.partition("/")  # Default() made "vpc-1" "vpc-1/default"
    return {"vpc": vpc, "subnet": subnet, "conn": _s(spec.get("connection")),
            "native": spec.get("nativeVLAN") is True}


def _peering_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    entries: list[list[Any]] = []  # [vpc, [subnets], field]
    for i, permit in enumerate(_l(spec.get("permit"))):
        for vpc, body in _m(permit).items():
            subnets = [s for s in _l(_m(body).get("subnets")) if isinstance(s, str)]
            entries.append([str(vpc), subnets, f"spec.permit[{i}].{vpc}"])
    vpcs = sorted({e[0] for e in entries})
    return {"vpcs": vpcs, "permit": entries}


def _switch_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    redundancy = _m(spec.get("redundancy"))
    groups = [g for g in _l(spec.get("groups")) if isinstance(g, str)]
    rgroup = _s(redundancy.get("group"))  # Default() added it to the groups
    vlanns = [v for v in _l(spec.get("vlanNamespaces")) if isinstance(v, str)]
    breakouts = {str(k): str(v) for k, v in _m(spec.get("portBreakouts")).items()}
    return {
        "role": _s(spec.get("role")),
        "profile": _s(spec.get("profile")),
        "groups": groups,
        "vlanns": vlanns,
        "rgroup": rgroup,
        "rtype": _s(redundancy.get("type")),
        "asn": _i(spec.get("asn")),
        "ip": _s(spec.get("ip")),
        "ipaddr": dotted(a[0]) if (a := v4_prefix(_s(spec.get("ip")), host_bits=True)) else "",
        "pip": _s(spec.get("protocolIP")),
        "vtep": _s(spec.get("vtepIP")),
        "breakouts": breakouts,
        "roce": spec.get("roce") is True,
    }


def object_facts(kind: str, spec: Any, *, defaulted: bool = False) -> dict[str, Any]:
    """The facts of one object, never raising. They are read off the spec after Hedgehog's
    ``Default()`` (``apply_defaults``, applied here unless the caller already did: the
    sync's per-object validation hands over the copy it defaulted)."""
    if not defaulted and type(spec) is dict and has_defaults(kind):
        spec = apply_defaults(kind, spec, sort_lists=False)
    spec = _m(spec)
    if kind == "VPC":
        return _vpc_facts(spec)
    if kind == "VPCAttachment":
        return _attachment_facts(spec)
    if kind == "VPCPeering":
        return _peering_facts(spec)
    if kind == "External":
        return {"ipns": _s(spec.get("ipv4Namespace")),
                "static": spec.get("static") is not None}
    if kind == "ExternalAttachment":
        static = spec.get("static")
        vlan = _i(_m(static).get("vlan")) if static is not None else _i(
            _m(spec.get("switch")).get("vlan")
        )
        return {"ext": _s(spec.get("external")), "conn": _s(spec.get("connection")),
                "static": static is not None, "vlan": vlan}
    if kind == "ExternalPeering":
        permit = _m(spec.get("permit"))
        vpc = _m(permit.get("vpc"))
        return {"vpc": _s(vpc.get("name")), "ext": _s(_m(permit.get("external")).get("name")),
                "subnets": [s for s in _l(vpc.get("subnets")) if isinstance(s, str)]}
    if kind == "IPv4Namespace":
        subnets = [s for s in _l(spec.get("subnets")) if isinstance(s, str)]
        return {"subnets": subnets, "nets": [p for s in subnets if (p := v4_prefix(s))]}
    if kind == "VLANNamespace":
        ranges = []
        for r in _l(spec.get("ranges")):
            ranges.append([_i(_m(r).get("from")), _i(_m(r).get("to"))])
        return {"ranges": ranges}
    if kind == "Connection":
        return _connection_facts(spec)
    if kind == "Switch":
        return _switch_facts(spec)
    if kind == "SwitchProfile":
        return {"spec": dict(spec)}  # rare, small: kept whole for its port table
    return {}


# --------------------------------------------------------------------------- helpers


def v4_prefix(value: str, host_bits: bool = False) -> tuple[int, int] | None:
    """(address as int, prefix length) of "a.b.c.d/n" — without ipaddress objects, which
    cost more than everything else when 10,000 objects are indexed. Host bits are masked
    off unless ``host_bits`` (an interface address such as a link IP)."""
    addr, slash, bits = value.partition("/")
    parts = addr.split(".")
    if not slash or len(parts) != 4 or not bits.isdigit() or not 0 <= int(bits) <= 32:
        return None
    n = 0
    for part in parts:
        if not part.isdigit() or len(part) > 3 or (len(part) > 1 and part[0] == "0"):
            return None
        octet = int(part)
        if octet > 255:
            return None
        n = (n << 8) | octet
    length = int(bits)
    if not host_bits:
        n &= (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0
    return n, length


def dotted(value: int) -> str:
    """An IPv4 address (int) as text."""
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def port_key(port: str) -> str:
    """Hedgehog treats ``sw/E1/4`` as an alias of ``sw/E1/4/1`` (a breakout's first lane)."""
    return port + "/1" if port.count("/") == 2 else port


class _Prefixes:
    """Prefixes of one IPv4Namespace: which of them overlap a given one, by lookup.

    Prefixes either nest or are disjoint, so Q overlaps P iff Q contains P (one of P's at
    most 32 supernets, found in a dict) or P contains Q (Q starts inside P: a bisect on
    the sorted starts, rebuilt lazily after changes).
    """

    def __init__(self) -> None:
        self.exact: dict[tuple[int, int], list[tuple[Key, str]]] = defaultdict(list)
        self._starts: list[tuple[int, int]] | None = None  # (start, prefixlen), sorted
        self._lengths: dict[int, int] = defaultdict(int)  # prefix length → how many

    def add(self, k: tuple[int, int], owner: tuple[Key, str]) -> None:
        self.exact[k].append(owner)
        self._lengths[k[1]] += 1
        self._starts = None

    def remove(self, k: tuple[int, int], owner: tuple[Key, str]) -> None:
        owners = self.exact.get(k)
        if owners and owner in owners:
            owners.remove(owner)
            self._lengths[k[1]] -= 1
            if not owners:
                del self.exact[k]
            self._starts = None

    def overlapping(self, start: int, length: int) -> Iterator[tuple[str, tuple[Key, str]]]:
        for bits, count in self._lengths.items():  # P itself and its supernets
            if bits > length or not count:
                continue
            up = start & mask(bits)
            for owner in self.exact.get((up, bits), ()):
                yield (_fmt(up, bits), owner)
        if self._starts is None:
            self._starts = sorted(self.exact)
        end = start + (1 << (32 - length)) - 1
        i = bisect.bisect_left(self._starts, (start, length + 1))
        while i < len(self._starts) and self._starts[i][0] <= end:
            k = self._starts[i]
            if k[1] > length:
                for owner in self.exact.get(k, ()):
                    yield (_fmt(*k), owner)
            i += 1


def _fmt(start: int, bits: int) -> str:
    return f"{dotted(start)}/{bits}"


def mask(bits: int) -> int:
    return (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF if bits else 0


def inside(start: int, length: int, outer: tuple[int, int] | list[int]) -> bool:
    """Whether prefix (start, length) lies within ``outer`` (start, length)."""
    return length >= outer[1] and (start & mask(outer[1])) == outer[0]


# --------------------------------------------------------------------------- the index


@dataclass
class FabricIndex:
    """The desired fabric. ``add`` replaces an object of the same kind and name."""

    objects: dict[Key, FabricObject] = field(default_factory=dict)
    count_by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Keys taken out of the fabric because their file fails: (kind, name) → that file.
    withdrawn: dict[Key, str] = field(default_factory=dict)
    subnets: dict[str, _Prefixes] = field(default_factory=lambda: defaultdict(_Prefixes))
    vlans: dict[tuple[str, int], list[tuple[Key, str]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    ports: dict[str, list[Key]] = field(default_factory=lambda: defaultdict(list))
    link_ips: dict[str, list[Key]] = field(default_factory=lambda: defaultdict(list))
    attachments_by_conn: dict[str, list[Key]] = field(default_factory=lambda: defaultdict(list))
    ext_attachments_by_conn: dict[str, list[Key]] = field(
        default_factory=lambda: defaultdict(list)
    )
    switch_values: dict[tuple[str, Any], list[Key]] = field(
        default_factory=lambda: defaultdict(list)
    )
    referrers: dict[Key, set[Key]] = field(default_factory=lambda: defaultdict(set))
    # Set by an index that follows a git tree: told of each object a sync is about to write
    # (``landing_at``), which stays indexed, so the next sync need not read it again.
    landing: Callable[[FabricObject], None] | None = None
    # Built for one verdict and dropped after it: nothing to give back (``fgd validate``).
    disposable: bool = False

    @classmethod
    def of(cls, objects: Iterable[FabricObject]) -> FabricIndex:
        index = cls()
        for obj in objects:
            index.add(obj)
        return index

    def get(self, kind: str, name: str) -> FabricObject | None:
        return self.objects.get((kind, name))

    def holds_kind(self, kind: str) -> bool:
        return self.count_by_kind.get(kind, 0) > 0

    def __len__(self) -> int:
        return len(self.objects)

    # -- changes ---------------------------------------------------------------------------

    def add(self, obj: FabricObject) -> FabricObject | None:
        """Put ``obj`` in the fabric; the object it replaces (same kind and name), if any."""
        old = self.objects.get(obj.key)
        if old is not None:
            self.remove(old)
        self.objects[obj.key] = obj
        self.count_by_kind[obj.kind] += 1
        self.withdrawn.pop(obj.key, None)
        self._secondary(obj, add=True)
        return old

    def remove(self, obj: FabricObject) -> None:
        if self.objects.get(obj.key) is not obj:
            return
        del self.objects[obj.key]
        self.count_by_kind[obj.kind] -= 1
        self._secondary(obj, add=False)

    def _put(self, table: dict[Any, list[Any]], key: Any, value: Any, add: bool) -> None:
        if add:
            table[key].append(value)
            return
        values = table.get(key)
        if values and value in values:
            values.remove(value)
            if not values:
                del table[key]

    def _secondary(self, obj: FabricObject, *, add: bool) -> None:
        f, key = obj.facts, obj.key
        for target in references(obj):
            if add:
                self.referrers[target].add(key)
            else:
                self.referrers.get(target, set()).discard(key)
        if obj.kind == "VPC":
            for sub_name, (_prefix, vlan, host_bgp, _relay, start, length) in f[
                "subnets"
            ].items():
                if start is not None:
                    prefixes = self.subnets[f["ipns"]]
                    (prefixes.add if add else prefixes.remove)((start, length), (key, sub_name))
                if vlan and not host_bgp:
                    self._put(self.vlans, (f["vlanns"], vlan), (key, sub_name), add)
        elif obj.kind == "Connection":
            for port, _field, _role in f["ports"]:
                self._put(self.ports, port_key(port), key, add)
            for _ip, _field, _link, addr in f["ips"]:
                if addr:
                    self._put(self.link_ips, addr, key, add)
        elif obj.kind == "VPCAttachment":
            self._put(self.attachments_by_conn, f["conn"], key, add)
        elif obj.kind == "ExternalAttachment":
            self._put(self.ext_attachments_by_conn, f["conn"], key, add)
        elif obj.kind == "Switch":
            for value_key in switch_unique_values(f):
                self._put(self.switch_values, value_key, key, add)


def switch_unique_values(f: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The values of a Switch that no other switch may share (Hedgehog's hydration checks)."""
    out: list[tuple[str, Any]] = []
    if f["asn"] and f["role"].endswith("leaf"):
        out.append(("asn", f["asn"]))
    if f["vtep"]:
        out.append(("vtep", f["vtep"]))
    if f["pip"]:
        out.append(("pip", f["pip"]))
    if f["ipaddr"]:
        out.append(("ip", f["ipaddr"]))
    return out


def references(obj: FabricObject) -> list[Key]:
    """The objects ``obj`` refers to (its rules look them up)."""
    f, kind = obj.facts, obj.kind
    if kind == "VPC":
        refs = [("IPv4Namespace", f["ipns"]), ("VLANNamespace", f["vlanns"])]
        refs += [("VPC", s[3]) for s in f["subnets"].values() if s[3]]
        return refs
    if kind == "VPCAttachment":
        return [("VPC", f["vpc"]), ("Connection", f["conn"])]
    if kind == "VPCPeering":
        return [("VPC", v) for v in f["vpcs"]]
    if kind == "External":
        return [("IPv4Namespace", f["ipns"])]
    if kind == "ExternalAttachment":
        return [("External", f["ext"]), ("Connection", f["conn"])]
    if kind == "ExternalPeering":
        return [("VPC", f["vpc"]), ("External", f["ext"])]
    if kind == "Connection":
        return [("Switch", s) for s in f["switches"]] + [("Server", s) for s in f["servers"]]
    if kind == "Switch":
        refs = [("VLANNamespace", v) for v in f["vlanns"]]
        refs += [("SwitchGroup", g) for g in f["groups"]]
        if f["profile"]:
            refs.append(("SwitchProfile", f["profile"]))
        return refs
    return []
