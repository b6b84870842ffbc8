"""CRD schema models of the vpc.githedgehog.com kinds (VPCs, attachments, peerings,
externals, IPv4Namespace)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from fgd_core.ingestion.hedgehog.schema_types import U8, U16, U32, Bool, Spec, Str, StrList

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
