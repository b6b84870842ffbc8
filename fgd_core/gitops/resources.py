"""Pydantic models of the Hedgehog kinds: the rules a network engineer expects us to check.

Design: pydantic checks types and shapes; cross-field network rules (gateway inside its
subnet, DHCP range order, one connection type …) are plain ``issues()`` methods so each
problem points at the exact field. Spec models allow unknown fields — Hedgehog has many
and adds more per release — so we validate what matters and never reject the unknown.

The managed file is built from the *original* document (defaulted namespace, canonical key
order), not from ``model_dump()``: validation must never rewrite what the user wrote.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pydantic import ValidationError as PydanticValidationError

from fgd_core.errors import ValidationError
from fgd_core.gitops.kinds import KindInfo, lookup_kind, name_problem, resolve_namespace

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class FieldIssue:
    """One problem at one field (path from the document root)."""

    path: Path
    message: str

    @property
    def field(self) -> str:
        return format_path(self.path)


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ------------------------------------------------------------------------ value validators

# A document names the same prefix or address several times (field validator, then the
# cross-field rules: gateway in subnet, DHCP range, overlaps): each string is parsed once.
# The parsed objects are immutable; a failed parse is not cached and raises again.
_PARSE_CACHE = 4096


@lru_cache(maxsize=_PARSE_CACHE)
def _net(value: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(value, strict=True)


@lru_cache(maxsize=_PARSE_CACHE)
def _addr(value: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(value)


@lru_cache(maxsize=_PARSE_CACHE)
def _iface(value: str) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface(value)


def _ipv4_network(value: str) -> str:
    try:
        _net(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 prefix without host bits ({exc})") from None
    return value


def _ipv4_address(value: str) -> str:
    try:
        _addr(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None
    return value


def _ipv4_interface(value: str) -> str:
    # An address with its prefix length ("172.30.30.1/31"): host bits are the point here.
    if "/" not in value:
        raise ValueError(f"{value!r} must be an IPv4 address with prefix length (a.b.c.d/n)")
    try:
        _iface(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address with prefix length") from None
    return value


def _object_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem.replace("metadata.name", "name"))
    return value


_PORT_RE = re.compile(r"^(?P<device>[^/\s]+)/\S+$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_COMMUNITY_RE = re.compile(r"^\d{1,10}:\d{1,10}$")
_VPC_SUBNET_REF_RE = re.compile(r"^[^/\s]+/[^/\s]+$")

IPv4Net = Annotated[str, AfterValidator(_ipv4_network)]
IPv4Addr = Annotated[str, AfterValidator(_ipv4_address)]
IPv4Iface = Annotated[str, AfterValidator(_ipv4_interface)]
ObjectName = Annotated[str, AfterValidator(_object_name)]
Vlan = Annotated[StrictInt, Field(ge=1, le=4094)]
VlanOrUntagged = Annotated[StrictInt, Field(ge=0, le=4094)]  # Hedgehog: 0 = no VLAN
Asn = Annotated[StrictInt, Field(ge=1, le=4294967295)]
Community = Annotated[str, Field(pattern=_COMMUNITY_RE.pattern)]
Mac = Annotated[str, Field(pattern=_MAC_RE.pattern)]


class _Spec(BaseModel):
    """Spec models: unknown fields are kept and never an error."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def issues(self) -> Iterator[FieldIssue]:
        """Cross-field rules; paths are relative to ``spec``."""
        return iter(())


# --------------------------------------------------------------------------------- VPC


class DHCPRange(_Spec):
    start: IPv4Addr | None = None
    end: IPv4Addr | None = None


class DHCP(_Spec):
    enable: StrictBool | None = None
    range: DHCPRange | None = None


class VPCSubnet(_Spec):
    subnet: IPv4Net
    gateway: IPv4Addr | None = None
    vlan: Vlan | None = None
    dhcp: DHCP | None = None
    isolated: StrictBool | None = None
    restricted: StrictBool | None = None

    def issues_at(self, at: Path) -> Iterator[FieldIssue]:
        net = _net(self.subnet)
        if self.gateway is not None:
            gw = _addr(self.gateway)
            if gw not in net:
                yield FieldIssue(at + ("gateway",), f"gateway {gw} is outside subnet {net}")
            elif net.prefixlen <= 30 and gw in (net.network_address, net.broadcast_address):
                yield FieldIssue(
                    at + ("gateway",), f"gateway {gw} is the network or broadcast address"
                )
        rng = self.dhcp.range if self.dhcp else None
        if rng is not None:
            where = at + ("dhcp", "range")
            ends = {"start": rng.start, "end": rng.end}
            for key, value in ends.items():
                if value is not None and _addr(value) not in net:
                    yield FieldIssue(where + (key,), f"DHCP {key} {value} is outside {net}")
            if rng.start is not None and rng.end is not None and _addr(rng.start) > _addr(rng.end):
                yield FieldIssue(where, f"DHCP range start {rng.start} is after end {rng.end}")


class VPCSpec(_Spec):
    subnets: Annotated[dict[str, VPCSubnet], Field(min_length=1)]
    permit: list[list[str]] | None = None

    def issues(self) -> Iterator[FieldIssue]:
        seen_vlans: dict[int, str] = {}
        nets: list[tuple[str, ipaddress.IPv4Network]] = []
        for name, sub in self.subnets.items():
            at: Path = ("subnets", name)
            if not name or "/" in name:
                yield FieldIssue(at, f"subnet name {name!r} must be non-empty without '/'")
            yield from sub.issues_at(at)
            if sub.vlan is not None:
                if sub.vlan in seen_vlans:
                    yield FieldIssue(
                        at + ("vlan",), f"VLAN {sub.vlan} is also used by {seen_vlans[sub.vlan]}"
                    )
                seen_vlans.setdefault(sub.vlan, name)
            net = _net(sub.subnet)
            for other, other_net in nets:
                if net.overlaps(other_net):
                    yield FieldIssue(
                        at + ("subnet",), f"subnet {net} overlaps {other} ({other_net})"
                    )
            nets.append((name, net))
        for i, group in enumerate(self.permit or []):
            for j, sub_name in enumerate(group):
                if sub_name not in self.subnets:
                    yield FieldIssue(("permit", i, j), f"permit names unknown subnet {sub_name!r}")


class VPCAttachmentSpec(_Spec):
    connection: ObjectName
    subnet: Annotated[str, Field(pattern=_VPC_SUBNET_REF_RE.pattern)]  # "<vpc>/<subnet>"
    nativeVLAN: StrictBool | None = None


class VPCPeeringSpec(_Spec):
    # Each permit entry pairs exactly two VPCs: {vpc-a: {subnets: …}, vpc-b: {…}}.
    permit: list[dict[str, dict[str, Any] | None]]

    def issues(self) -> Iterator[FieldIssue]:
        for i, entry in enumerate(self.permit):
            if len(entry) != 2:
                yield FieldIssue(("permit", i), "each permit entry must name exactly two VPCs")


class ExternalStatic(_Spec):
    prefixes: list[IPv4Net] | None = None


class ExternalSpec(_Spec):
    ipv4Namespace: str | None = None
    inboundCommunity: Community | None = None
    outboundCommunity: Community | None = None
    static: ExternalStatic | None = None


class ExternalAttachmentSwitch(_Spec):
    vlan: VlanOrUntagged | None = None
    ip: IPv4Iface | None = None


class ExternalAttachmentNeighbor(_Spec):
    asn: Asn | None = None
    ip: IPv4Addr | None = None


class ExternalAttachmentStatic(_Spec):
    remoteIP: IPv4Addr | None = None
    vlan: VlanOrUntagged | None = None
    ip: IPv4Iface | None = None


class ExternalAttachmentSpec(_Spec):
    external: ObjectName
    connection: ObjectName
    switch: ExternalAttachmentSwitch | None = None
    neighbor: ExternalAttachmentNeighbor | None = None
    static: ExternalAttachmentStatic | None = None


class ExternalPrefix(_Spec):
    prefix: IPv4Net


class ExternalPeeringExternal(_Spec):
    name: ObjectName
    prefixes: list[ExternalPrefix] | None = None


class ExternalPeeringVPC(_Spec):
    name: ObjectName
    subnets: list[str] | None = None


class ExternalPeeringPermit(_Spec):
    external: ExternalPeeringExternal
    vpc: ExternalPeeringVPC


class ExternalPeeringSpec(_Spec):
    permit: ExternalPeeringPermit


class IPv4NamespaceSpec(_Spec):
    subnets: Annotated[list[IPv4Net], Field(min_length=1)]

    def issues(self) -> Iterator[FieldIssue]:
        nets = [_net(s) for s in self.subnets]
        for i, net in enumerate(nets):
            for j in range(i):
                if net.overlaps(nets[j]):
                    yield FieldIssue(("subnets", i), f"{net} overlaps {nets[j]}")


# ------------------------------------------------------------------------------ wiring


class VLANRange(_Spec):
    from_: Vlan = Field(alias="from")
    to: Vlan


class VLANNamespaceSpec(_Spec):
    ranges: Annotated[list[VLANRange], Field(min_length=1)]

    def issues(self) -> Iterator[FieldIssue]:
        for i, r in enumerate(self.ranges):
            if r.from_ > r.to:
                yield FieldIssue(("ranges", i), f"range from {r.from_} is after to {r.to}")
            for j in range(i):
                o = self.ranges[j]
                if r.from_ <= o.to and o.from_ <= r.to:
                    yield FieldIssue(("ranges", i), f"range overlaps ranges[{j}]")


# The connection types Hedgehog's Connection spec defines (one per Connection).
CONNECTION_TYPES = (
    "unbundled",
    "bundled",
    "mclag",
    "eslag",
    "mclagDomain",
    "fabric",
    "mesh",
    "vpcLoopback",
    "external",
    "staticExternal",
    "gateway",
)


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _port_issues(value: Any, at: Path) -> Iterator[FieldIssue]:
    """Every ``port`` inside a connection must be "<device>/<port>" with a valid device."""
    if type(value) in _SCALAR_TYPES:  # neither a mapping nor a list: nothing inside
        return
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if key == "port":
                m = _PORT_RE.match(sub) if isinstance(sub, str) else None
                if m is None or name_problem(m.group("device")):
                    yield FieldIssue(at + (key,), f"port {sub!r} must be '<device>/<port>'")
            elif key == "ip" and isinstance(sub, str):
                try:
                    _ipv4_interface(sub)
                except ValueError as exc:
                    yield FieldIssue(at + (key,), str(exc))
            else:
                yield from _port_issues(sub, at + (str(key),))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _port_issues(item, at + (i,))


class ConnectionSpec(_Spec):
    def issues(self) -> Iterator[FieldIssue]:
        extra = self.model_extra or {}
        found = [t for t in CONNECTION_TYPES if t in extra]
        if len(found) != 1:
            what = ", ".join(found) if found else "none"
            yield FieldIssue(
                (),
                f"a Connection needs exactly one connection type in spec (found: {what}; "
                f"one of {', '.join(CONNECTION_TYPES)})",
            )
            return
        body = extra[found[0]]
        if not isinstance(body, Mapping):
            yield FieldIssue((found[0],), f"spec.{found[0]} must be a mapping")
            return
        yield from _port_issues(body, (found[0],))


SWITCH_ROLES = ("spine", "server-leaf", "border-leaf", "mixed-leaf", "virtual-edge")


class SwitchBoot(_Spec):
    mac: Mac | None = None
    serial: str | None = None


class SwitchRedundancy(_Spec):
    group: ObjectName | None = None
    type: Literal["mclag", "eslag"] | None = None


class SwitchSpec(_Spec):
    role: Literal["spine", "server-leaf", "border-leaf", "mixed-leaf", "virtual-edge"]
    boot: SwitchBoot | None = None
    redundancy: SwitchRedundancy | None = None
    groups: list[ObjectName] | None = None
    asn: Asn | None = None
    ip: IPv4Iface | None = None
    vtepIP: IPv4Iface | None = None
    protocolIP: IPv4Iface | None = None

    def issues(self) -> Iterator[FieldIssue]:
        r = self.redundancy
        if r is not None and r.type is not None and r.group is None:
            yield FieldIssue(("redundancy", "group"), f"{r.type} redundancy needs a group")


class AnySpec(_Spec):
    """Kinds without rules beyond metadata (Server, SwitchGroup, profiles, extra kinds)."""


# ---------------------------------------------------------------------------- documents

_LABEL_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
_LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?" + _LABEL_NAME + "$"
)
_LABEL_VALUE_RE = re.compile(r"^(" + _LABEL_NAME + ")?$")


def _label_map(value: dict[str, str]) -> dict[str, str]:
    for k, v in value.items():
        if not _LABEL_KEY_RE.match(k):
            raise ValueError(f"label key {k!r} is not a valid Kubernetes label key")
        if not _LABEL_VALUE_RE.match(v):
            raise ValueError(f"label value {v!r} (key {k!r}) is not a valid label value")
    return value


def _annotation_map(value: dict[str, str]) -> dict[str, str]:
    for k in value:
        if not _LABEL_KEY_RE.match(k):
            raise ValueError(f"annotation key {k!r} is not a valid Kubernetes key")
    return value


class Metadata(BaseModel):
    # Server-populated fields (uid, resourceVersion …) from "kubectl get -o yaml" are
    # tolerated here and dropped from the managed file (with a warning).
    model_config = ConfigDict(extra="allow")

    name: ObjectName
    namespace: str | None = None
    labels: Annotated[dict[str, str], AfterValidator(_label_map)] | None = None
    annotations: Annotated[dict[str, str], AfterValidator(_annotation_map)] | None = None


class HedgehogResource(BaseModel):
    """A whole document. Unknown top-level keys are typos ("specs:") and are errors."""

    model_config = ConfigDict(extra="forbid")
    spec_required: ClassVar[bool] = False

    apiVersion: str
    kind: str
    metadata: Metadata
    spec: AnySpec | None = None
    status: Any = None  # observed state; never written to managed files


def _resource(name: str, spec_model: type[_Spec], required: bool) -> type[HedgehogResource]:
    annotation: Any = spec_model if required else spec_model | None
    namespace = {"__annotations__": {"spec": annotation}, "spec_required": required}
    if not required:
        namespace["spec"] = None
    return type(name, (HedgehogResource,), namespace)


MODELS: Mapping[str, type[HedgehogResource]] = {
    "VPC": _resource("VPC", VPCSpec, True),
    "VPCAttachment": _resource("VPCAttachment", VPCAttachmentSpec, True),
    "VPCPeering": _resource("VPCPeering", VPCPeeringSpec, True),
    "External": _resource("External", ExternalSpec, False),
    "ExternalAttachment": _resource("ExternalAttachment", ExternalAttachmentSpec, True),
    "ExternalPeering": _resource("ExternalPeering", ExternalPeeringSpec, True),
    "IPv4Namespace": _resource("IPv4Namespace", IPv4NamespaceSpec, True),
    "Connection": _resource("Connection", ConnectionSpec, True),
    "Server": _resource("Server", AnySpec, False),
    "Switch": _resource("Switch", SwitchSpec, True),
    "SwitchGroup": _resource("SwitchGroup", AnySpec, False),
    "VLANNamespace": _resource("VLANNamespace", VLANNamespaceSpec, True),
    "SwitchProfile": _resource("SwitchProfile", AnySpec, False),
    "ServerProfile": _resource("ServerProfile", AnySpec, False),
}
_GENERIC = _resource("GenericResource", AnySpec, False)


@dataclass(frozen=True)
class ValidatedResource:
    info: KindInfo
    name: str
    namespace: str
    normalized: dict[str, Any]  # what the managed file holds, in canonical order
    warnings: tuple[str, ...] = ()


def _fail(issues: list[FieldIssue]) -> ValidationError:
    first = issues[0]
    more = f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""
    return ValidationError(
        f"{first.field or 'document'}: {first.message}{more}",
        details={
            "field": first.field,
            "issues": [
                {"path": list(i.path), "field": i.field, "message": i.message} for i in issues
            ],
        },
    )


def _by_key(item: tuple[Any, Any]) -> tuple[str, str]:
    return (type(item[0]).__name__, str(item[0]))


def _canonical(value: Any) -> Any:
    """Mappings with sorted keys, recursively: equal content ⇒ byte-equal managed file."""
    t = type(value)
    if t in _SCALAR_TYPES:
        return value
    if t is dict:
        # All-str keys (every Kubernetes object) sort as their text, which is what the
        # (type name, text) order gives them.
        if all(type(k) is str for k in value):
            return {k: _canonical(value[k]) for k in sorted(value)}
        return {k: _canonical(v) for k, v in sorted(value.items(), key=_by_key)}
    if t is list:
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in sorted(value.items(), key=_by_key)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def validate_resource(
    doc: Mapping[Any, Any],
    *,
    enforce_namespaces: bool = True,
    require_labels: bool = False,
    extra_kinds: Mapping[str, KindInfo] | None = None,
) -> ValidatedResource:
    """Validate one document; UnsupportedResourceError (FGD_1002) or ValidationError (1003).

    Validation errors carry ``details["issues"]``: every problem found, each with its path.
    """
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc.get(key):
            raise _fail([FieldIssue((key,), f"{key} is required and must be a string")])
    info = lookup_kind(doc["apiVersion"], doc["kind"], extra_kinds)
    model = MODELS.get(info.kind, _GENERIC)
    issues: list[FieldIssue] = []
    try:
        resource = model.model_validate(dict(doc))
    except PydanticValidationError as exc:
        for err in exc.errors(include_url=False):
            msg = err["msg"].removeprefix("Value error, ")
            issues.append(FieldIssue(tuple(err["loc"]), msg))
        raise _fail(issues) from None
    meta = resource.metadata
    try:
        namespace = resolve_namespace(meta.namespace, enforce=enforce_namespaces)
    except ValidationError as exc:
        issues.append(FieldIssue(("metadata", "namespace"), exc.message))
        namespace = ""
    if require_labels and not meta.labels:
        issues.append(FieldIssue(("metadata", "labels"), "labels are required (require_labels)"))
    if resource.spec is not None:
        issues.extend(FieldIssue(("spec",) + i.path, i.message) for i in resource.spec.issues())
    if issues:
        raise _fail(issues)

    warnings: list[str] = []
    dropped = sorted(str(k) for k in (meta.model_extra or {}))
    if dropped:
        warnings.append(f"metadata fields not kept in the managed file: {', '.join(dropped)}")
    if "status" in doc:
        warnings.append("status is observed state and is not kept in the managed file")
    raw_meta = doc["metadata"]
    out_meta: dict[str, Any] = {"name": meta.name, "namespace": namespace}
    for key in ("labels", "annotations"):
        if raw_meta.get(key):
            out_meta[key] = _canonical(raw_meta[key])
    normalized: dict[str, Any] = {
        "apiVersion": info.api_version,
        "kind": info.kind,
        "metadata": out_meta,
    }
    if "spec" in doc and doc["spec"] is not None:
        normalized["spec"] = _canonical(doc["spec"])
    return ValidatedResource(info, meta.name, namespace, normalized, tuple(warnings))
