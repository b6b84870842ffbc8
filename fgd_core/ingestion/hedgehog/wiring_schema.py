"""CRD schema models of the wiring.githedgehog.com kinds (connections, switches, servers,
namespaces, profiles)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt

from fgd_core.ingestion.hedgehog.schema_types import U16, U32, Bool, Spec, Str, StrList

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
