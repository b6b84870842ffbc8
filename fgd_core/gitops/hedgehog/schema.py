"""The CRD schema of each kind, as pydantic models: field types, enums, bounds, required
fields and list sizes (the ``+kubebuilder:validation`` markers) — what the Kubernetes API
server checks before Hedgehog's webhooks run.

Types follow Hedgehog's Go structs: ``uint16`` fields take 0-65535, strings must be strings,
booleans booleans (no "yes" for true). Unknown fields are kept and never an error (Hedgehog
adds fields per release). Value rules (is this a prefix, is the gateway inside it …) are
not here but in the per-kind rule modules, which see the defaulted spec.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

U8 = Annotated[StrictInt, Field(ge=0, le=255)]
U16 = Annotated[StrictInt, Field(ge=0, le=65535)]
U32 = Annotated[StrictInt, Field(ge=0, le=4294967295)]
Str = str | None
Bool = StrictBool | None
StrList = list[str] | None


class Spec(BaseModel):
    """Spec models: unknown fields are kept and never an error."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --------------------------------------------------------------------------------- VPC


class DHCPRange(Spec):
    start: Str = None
    end: Str = None


class DHCPRoute(Spec):
    destination: Str = None
    gateway: Str = None


class DHCPOptions(Spec):
    pxeURL: Str = None
    dnsServers: StrList = None
    timeServers: StrList = None
    interfaceMTU: U16 | None = None
    leaseTimeSeconds: U32 | None = None
    disableDefaultRoute: Bool = None
    advertisedRoutes: list[DHCPRoute] | None = None


class DHCPStatic(Spec):
    ip: Str = None


class DHCP(Spec):
    relay: Str = None
    relayVPC: Str = None
    enable: Bool = None
    range: DHCPRange | None = None
    options: DHCPOptions | None = None
    static: dict[str, DHCPStatic] | None = None


class VPCSubnet(Spec):
    subnet: Str = None
    gateway: Str = None
    dhcp: DHCP | None = None
    vlan: U16 | None = None
    isolated: Bool = None
    restricted: Bool = None
    hostBGP: Bool = None


class StaticRoute(Spec):
    prefix: Str = None
    nextHops: StrList = None


class VPCSpec(Spec):
    mode: Str = None
    subnets: dict[str, VPCSubnet] | None = None
    ipv4Namespace: Str = None
    vlanNamespace: Str = None
    defaultIsolated: Bool = None
    defaultRestricted: Bool = None
    permit: list[list[str]] | None = None
    staticRoutes: list[StaticRoute] | None = None


class VPCAttachmentSpec(Spec):
    subnet: Str = None
    connection: Str = None
    nativeVLAN: Bool = None


class VPCPeer(Spec):
    subnets: Annotated[list[str], Field(min_length=1, max_length=10)] | None = None


class VPCPeeringSpec(Spec):
    remote: Str = None
    permit: (
        Annotated[list[dict[str, VPCPeer | None]], Field(min_length=1, max_length=10)] | None
    ) = None


# ---------------------------------------------------------------------------- externals


class ExternalStatic(Spec):
    prefixes: StrList = None


class ExternalSpec(Spec):
    ipv4Namespace: Str = None
    inboundCommunity: Str = None
    outboundCommunity: Str = None
    static: ExternalStatic | None = None


class ExternalAttachmentSwitch(Spec):
    vlan: U16 | None = None
    ip: Str = None


class ExternalAttachmentNeighbor(Spec):
    asn: U32 | None = None
    ip: Str = None


class ExternalAttachmentStatic(Spec):
    remoteIP: Str = None
    vlan: U16 | None = None
    ip: Str = None
    proxy: Bool = None


class ACLStatement(Spec):
    seq: U16 | None = None
    action: Str = None
    protocol: Str = None
    srcPrefix: Str = None
    dstPrefix: Str = None
    portRangeBegin: U16 | None = None
    portRangeEnd: U16 | None = None
    tcpFilters: dict[str, StrictBool] | None = None
    icmpType: U8 | None = None
    icmpCode: U8 | None = None


class ACLSpec(Spec):
    statements: list[ACLStatement] | None = None


class ExternalAttachmentSpec(Spec):
    external: Str = None
    connection: Str = None
    # The CRD lists switch and neighbor as required only because their Go fields lack
    # omitempty; Hedgehog's own tools (hhfab) accept a static attachment without them, as
    # Hedgehog's lab wiring has it. Fields the Go code reads as zero values are optional.
    switch: ExternalAttachmentSwitch | None = None
    neighbor: ExternalAttachmentNeighbor | None = None
    static: ExternalAttachmentStatic | None = None
    inboundACL: ACLSpec | None = None


class ExternalPeeringPrefix(Spec):
    prefix: Str = None


class ExternalPeeringExternal(Spec):
    name: Str = None
    prefixes: list[ExternalPeeringPrefix] | None = None


class ExternalPeeringVPC(Spec):
    name: Str = None
    subnets: StrList = None


class ExternalPeeringPermit(Spec):
    vpc: ExternalPeeringVPC | None = None
    external: ExternalPeeringExternal | None = None


class ExternalPeeringSpec(Spec):
    permit: ExternalPeeringPermit | None = None


class IPv4NamespaceSpec(Spec):
    subnets: Annotated[list[str], Field(min_length=1, max_length=20)] | None = None


# ------------------------------------------------------------------------------ wiring


class VLANRange(Spec):
    from_: U16 | None = Field(default=None, alias="from")
    to: U16 | None = None


class VLANNamespaceSpec(Spec):
    ranges: Annotated[list[VLANRange], Field(min_length=1, max_length=20)] | None = None


class Port(Spec):
    port: Str = None


class IPPort(Port):
    ip: Str = None


class ServerToSwitchLink(Spec):
    server: Port | None = None
    switch: Port | None = None


class SwitchToSwitchLink(Spec):
    switch1: Port | None = None
    switch2: Port | None = None


class ServerFacing(Spec):
    mtu: U16 | None = None


class ConnUnbundled(ServerFacing):
    link: ServerToSwitchLink | None = None


class ConnBundled(ServerFacing):
    links: list[ServerToSwitchLink] | None = None
    fallback: Bool = None


class ConnLAG(ServerFacing):  # mclag and eslag: two links at least
    links: Annotated[list[ServerToSwitchLink], Field(min_length=2)] | None = None
    fallback: Bool = None


class ConnMCLAGDomain(Spec):
    peerLinks: Annotated[list[SwitchToSwitchLink], Field(min_length=1)] | None = None
    sessionLinks: Annotated[list[SwitchToSwitchLink], Field(min_length=1)] | None = None


class FabricLink(Spec):
    spine: IPPort | None = None
    leaf: IPPort | None = None


class MeshLink(Spec):
    leaf1: IPPort | None = None
    leaf2: IPPort | None = None


class GatewayLink(Spec):
    switch: IPPort | None = None
    gateway: IPPort | None = None


def _links(model: type[Spec]) -> Any:
    return Annotated[list[model], Field(min_length=1)] | None  # type: ignore[valid-type]


class ConnFabric(Spec):
    links: _links(FabricLink) = None  # type: ignore[valid-type]


class ConnMesh(Spec):
    links: _links(MeshLink) = None  # type: ignore[valid-type]


class ConnGateway(Spec):
    links: _links(GatewayLink) = None  # type: ignore[valid-type]


class ConnVPCLoopback(Spec):
    links: _links(SwitchToSwitchLink) = None  # type: ignore[valid-type]


class ExternalLink(Spec):
    switch: Port | None = None


class ConnExternal(Spec):
    link: ExternalLink | None = None


class StaticExternalSwitch(IPPort):
    nextHop: Str = None
    subnets: StrList = None
    vlan: U16 | None = None


class StaticExternalLink(Spec):
    switch: StaticExternalSwitch | None = None


class ConnStaticExternal(Spec):
    link: StaticExternalLink | None = None
    withinVPC: Str = None


class ConnectionSpec(Spec):
    unbundled: ConnUnbundled | None = None
    bundled: ConnBundled | None = None
    mclag: ConnLAG | None = None
    eslag: ConnLAG | None = None
    mclagDomain: ConnMCLAGDomain | None = None
    fabric: ConnFabric | None = None
    mesh: ConnMesh | None = None
    gateway: ConnGateway | None = None
    vpcLoopback: ConnVPCLoopback | None = None
    external: ConnExternal | None = None
    staticExternal: ConnStaticExternal | None = None


class SwitchRedundancy(Spec):
    group: Str = None
    type: Literal["mclag", "eslag"] | None = None


class SwitchBoot(Spec):
    serial: Str = None
    mac: Str = None


class LinkFlapErrDisable(Spec):
    flapThreshold: Annotated[StrictInt, Field(ge=1, le=50)] | None = None
    samplingInterval: Annotated[StrictInt, Field(ge=1, le=65535)] | None = None
    recoveryInterval: Annotated[StrictInt, Field(ge=0, le=65534)] | None = None


class SwitchSpec(Spec):
    role: Literal["spine", "server-leaf", "border-leaf", "mixed-leaf", "virtual-edge"]
    description: Str = None
    profile: Str = None
    groups: StrList = None
    redundancy: SwitchRedundancy | None = None
    vlanNamespaces: StrList = None
    asn: U32 | None = None
    ip: Str = None
    vtepIP: Str = None
    protocolIP: Str = None
    portGroupSpeeds: dict[str, str] | None = None
    portSpeeds: dict[str, str] | None = None
    portBreakouts: dict[str, str] | None = None
    portAutoNegs: dict[str, StrictBool] | None = None
    portFECs: dict[str, Literal["rs", "fc", "auto", "disabled"]] | None = None
    boot: SwitchBoot | None = None
    enableAllPorts: Bool = None
    roce: Bool = None
    linkFlapErrDisable: LinkFlapErrDisable | None = None


class ServerSpec(Spec):
    description: Str = None
    profile: Str = None


class SwitchProfilePort(Spec):
    nos: Str = None
    baseNOSName: Str = None
    label: Str = None
    group: Str = None
    profile: Str = None
    management: Bool = None
    oniePortName: Str = None
    pipeline: Str = None


class SwitchProfilePortGroup(Spec):
    nos: Str = None
    profile: Str = None


class PortSpeed(Spec):
    default: Str = None
    supported: StrList = None


class BreakoutMode(Spec):
    offsets: StrList = None


class PortBreakout(Spec):
    default: Str = None
    supported: dict[str, BreakoutMode | None] | None = None


class SwitchProfilePortProfile(Spec):
    speed: PortSpeed | None = None
    breakout: PortBreakout | None = None
    autoNegAllowed: Bool = None
    autoNegDefault: Bool = None


class SwitchProfilePipeline(Spec):
    maxPorts: U16 | None = None


class SwitchProfileSpec(Spec):
    displayName: Str = None
    otherNames: StrList = None
    switchSilicon: Str = None
    notes: Str = None
    nosType: Str = None
    platform: Str = None
    ports: dict[str, SwitchProfilePort | None] | None = None
    portGroups: dict[str, SwitchProfilePortGroup] | None = None
    portProfiles: dict[str, SwitchProfilePortProfile | None] | None = None
    pipelines: dict[str, SwitchProfilePipeline | None] | None = None
    maxPorts: U16 | None = None


class AnySpec(Spec):
    """Kinds without a schema beyond metadata (SwitchGroup, ServerProfile, extra kinds)."""


SPECS: dict[str, type[Spec]] = {
    "VPC": VPCSpec,
    "VPCAttachment": VPCAttachmentSpec,
    "VPCPeering": VPCPeeringSpec,
    "External": ExternalSpec,
    "ExternalAttachment": ExternalAttachmentSpec,
    "ExternalPeering": ExternalPeeringSpec,
    "IPv4Namespace": IPv4NamespaceSpec,
    "Connection": ConnectionSpec,
    "Server": ServerSpec,
    "Switch": SwitchSpec,
    "SwitchGroup": AnySpec,
    "VLANNamespace": VLANNamespaceSpec,
    "SwitchProfile": SwitchProfileSpec,
    "ServerProfile": AnySpec,
}
# A missing spec is validated as an empty one: Hedgehog then refuses e.g. a VPC without
# subnets and accepts a SwitchGroup or Server without a spec.
SPEC_REQUIRED: frozenset[str] = frozenset()
