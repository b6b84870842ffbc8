"""The fabric configuration Hedgehog's rules run under (``FabricConfig`` in Hedgehog).

Some of Hedgehog's per-object rules depend on the fabric: VPC subnets must not overlap the
subnets the fabric keeps for itself, VLANNamespaces must stay clear of the VLANs the fabric
uses internally, server-facing MTUs are bounded by the fabric MTU. The defaults are
fabricator's (``hhfab``'s) default fabric; ``fgd_config.yaml`` overrides them under
``fgd.hedgehog`` for a fabric built with other values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from fgd_core.ingestion.hedgehog.netparse import IPNetwork, parse_prefix

VlanId = Annotated[StrictInt, Field(ge=1, le=4094)]

# fabricator's default address plan: every subnet the fabric itself uses.
DEFAULT_RESERVED_SUBNETS: tuple[str, ...] = (
    "172.28.0.0/16",  # Kubernetes cluster (pods)
    "172.29.0.0/16",  # Kubernetes services
    "172.30.0.0/21",  # management
    "172.30.8.0/22",  # protocol (switch loopbacks)
    "172.30.12.0/22",  # VTEPs
    "172.30.16.0/22",  # proxy for externals
    "172.30.90.0/24",  # dummy
    "172.30.95.0/31",  # MCLAG session
    "172.30.96.0/19",  # VPC loopback workaround
    "172.30.128.0/17",  # fabric links
)
DEFAULT_VPC_IRB_VLANS: tuple[tuple[int, int], ...] = ((3000, 3899),)
DEFAULT_TH5_WORKAROUND_VLANS: tuple[tuple[int, int], ...] = ((3900, 3999),)
DEFAULT_FABRIC_MTU = 9100
DEFAULT_SERVER_FACING_MTU_OFFSET = 64
# fabricator's defaults for what switches and fabric links are hydrated with (the
# fabric-wide rules check a switch's IPs and ASN and a link's IPs against them).
DEFAULT_FABRIC_SUBNET = "172.30.128.0/17"
DEFAULT_MANAGEMENT_SUBNET = "172.30.0.0/21"
DEFAULT_MANAGEMENT_DHCP_START = "172.30.4.0"
DEFAULT_CONTROL_VIP = "172.30.0.1/32"
DEFAULT_PROTOCOL_SUBNET = "172.30.8.0/22"
DEFAULT_VTEP_SUBNET = "172.30.12.0/22"
DEFAULT_SPINE_ASN = 65100
DEFAULT_LEAF_ASN_START = 65101
DEFAULT_LEAF_ASN_END = 65533


def _v4_span(text: str) -> tuple[int, int]:
    """(masked network as int, prefix length) of an IPv4 prefix."""
    _, net = parse_prefix(text)
    return int(net.network_address), net.prefixlen


@dataclass(frozen=True)
class FabricConfig:
    """What the rules need of Hedgehog's FabricConfig; built once, shared read-only."""

    reserved_subnets: tuple[str, ...] = DEFAULT_RESERVED_SUBNETS
    vpc_irb_vlans: tuple[tuple[int, int], ...] = DEFAULT_VPC_IRB_VLANS
    th5_workaround_vlans: tuple[tuple[int, int], ...] = DEFAULT_TH5_WORKAROUND_VLANS
    fabric_mtu: int = DEFAULT_FABRIC_MTU
    server_facing_mtu_offset: int = DEFAULT_SERVER_FACING_MTU_OFFSET
    vpc_peering_disabled: bool = False
    allow_extra_switch_profiles: bool = False
    fabric_subnet: str = DEFAULT_FABRIC_SUBNET
    management_subnet: str = DEFAULT_MANAGEMENT_SUBNET
    management_dhcp_start: str = DEFAULT_MANAGEMENT_DHCP_START
    control_vip: str = DEFAULT_CONTROL_VIP
    protocol_subnet: str = DEFAULT_PROTOCOL_SUBNET
    vtep_subnet: str = DEFAULT_VTEP_SUBNET
    spine_asn: int = DEFAULT_SPINE_ASN
    leaf_asn_start: int = DEFAULT_LEAF_ASN_START
    leaf_asn_end: int = DEFAULT_LEAF_ASN_END

    @cached_property
    def address_plan(self) -> dict[str, Any]:
        """The hydration subnets and addresses as ints, parsed once per config (the
        fabric-wide rules compare every switch's and link's IPs with them)."""
        return {
            "fabric": _v4_span(self.fabric_subnet),
            "management": _v4_span(self.management_subnet),
            "dhcp_start": _v4_span(self.management_dhcp_start + "/32")[0],
            "vip": _v4_span(self.control_vip)[0],
            "pip": _v4_span(self.protocol_subnet),
            "vtep": _v4_span(self.vtep_subnet),
        }

    @cached_property
    def reserved_networks(self) -> tuple[IPNetwork, ...]:
        """The reserved subnets, masked, parsed once."""
        return tuple(parse_prefix(s)[1] for s in self.reserved_subnets)

    @cached_property
    def _reserved_spans(self) -> tuple[tuple[int, int, int, IPNetwork], ...]:
        return tuple(
            (n.version, int(n.network_address), int(n.broadcast_address), n)
            for n in self.reserved_networks
        )

    def reserved_overlap(self, net: IPNetwork) -> IPNetwork | None:
        """The first reserved subnet ``net`` overlaps, or None (integer compares: this runs
        for every subnet of every VPC of a sync)."""
        version, low, high = net.version, int(net.network_address), int(net.broadcast_address)
        for r_version, r_low, r_high, reserved in self._reserved_spans:
            if r_version == version and low <= r_high and r_low <= high:
                return reserved
        return None

    @property
    def max_server_mtu(self) -> int:
        return self.fabric_mtu - self.server_facing_mtu_offset


DEFAULT_FABRIC_CONFIG = FabricConfig()


class VLANRangeSetting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    from_: VlanId = Field(alias="from")
    to: VlanId

    @model_validator(mode="after")
    def _ordered(self) -> VLANRangeSetting:
        if self.from_ > self.to:
            raise ValueError("from must be <= to")
        return self


def _ranges(default: tuple[tuple[int, int], ...]) -> Any:
    return Field(
        default_factory=lambda: tuple(VLANRangeSetting(**{"from": a, "to": b}) for a, b in default),
        min_length=1,
    )


class HedgehogConfig(BaseModel):
    """``fgd.hedgehog``: the fabric the Hedgehog rules assume (fabricator's defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    reserved_subnets: Annotated[tuple[str, ...], Field(min_length=1)] = DEFAULT_RESERVED_SUBNETS
    """Subnets the fabric uses itself; VPC subnets, IPv4Namespaces and static routes of
    staticExternal connections must not overlap them."""
    vpc_irb_vlans: tuple[VLANRangeSetting, ...] = _ranges(DEFAULT_VPC_IRB_VLANS)
    """VLANs reserved for VPC IRB interfaces; no VLANNamespace may overlap them."""
    th5_workaround_vlans: tuple[VLANRangeSetting, ...] = _ranges(DEFAULT_TH5_WORKAROUND_VLANS)
    """VLANs reserved for the Tomahawk 5 workaround; no VLANNamespace may overlap them."""
    fabric_mtu: Annotated[StrictInt, Field(ge=1, le=9216)] = DEFAULT_FABRIC_MTU
    server_facing_mtu_offset: Annotated[StrictInt, Field(ge=1)] = DEFAULT_SERVER_FACING_MTU_OFFSET
    """A server-facing connection's MTU may be at most fabric_mtu minus this offset."""
    vpc_peering_disabled: StrictBool = False
    """When true, every VPCPeering is refused (as on a fabric with peering disabled)."""
    allow_extra_switch_profiles: StrictBool = False
    """When false (Hedgehog's default), a SwitchProfile must be one of Hedgehog's built-in
    profiles; true allows profiles of your own."""
    fabric_subnet: str = DEFAULT_FABRIC_SUBNET
    """IPv4 prefix fabric links (spine-leaf, mesh, gateway) take their /31s from."""
    management_subnet: str = DEFAULT_MANAGEMENT_SUBNET
    """IPv4 prefix of the switches' management IPs."""
    management_dhcp_start: str = DEFAULT_MANAGEMENT_DHCP_START
    """First address of the management DHCP range: switch management IPs stay below it."""
    control_vip: str = DEFAULT_CONTROL_VIP
    """The control node's VIP (no switch may have it as its management IP)."""
    protocol_subnet: str = DEFAULT_PROTOCOL_SUBNET
    """IPv4 prefix of the switches' protocol (loopback) IPs."""
    vtep_subnet: str = DEFAULT_VTEP_SUBNET
    """IPv4 prefix of the leaves' VTEP IPs."""
    spine_asn: Annotated[StrictInt, Field(ge=1, le=4294967295)] = DEFAULT_SPINE_ASN
    """The ASN every spine has."""
    leaf_asn_start: Annotated[StrictInt, Field(ge=1, le=4294967295)] = DEFAULT_LEAF_ASN_START
    """First ASN of the leaves' range."""
    leaf_asn_end: Annotated[StrictInt, Field(ge=1, le=4294967295)] = DEFAULT_LEAF_ASN_END
    """Last ASN of the leaves' range."""

    @model_validator(mode="after")
    def _check(self) -> HedgehogConfig:
        for subnet in self.reserved_subnets:
            try:
                parse_prefix(subnet)
            except ValueError:
                raise ValueError(f"reserved_subnets: {subnet!r} is not a prefix") from None
        if self.server_facing_mtu_offset >= self.fabric_mtu:
            raise ValueError("server_facing_mtu_offset must be smaller than fabric_mtu")
        for key in ("fabric_subnet", "management_subnet", "control_vip", "protocol_subnet",
                    "vtep_subnet"):
            if not _is_v4_prefix(getattr(self, key)):
                raise ValueError(f"{key} must be an IPv4 prefix (a.b.c.d/n)")
        if not _is_v4_prefix(self.management_dhcp_start + "/32"):
            raise ValueError("management_dhcp_start must be an IPv4 address")
        if self.leaf_asn_start > self.leaf_asn_end:
            raise ValueError("leaf_asn_start must be <= leaf_asn_end")
        return self

    def fabric_config(self) -> FabricConfig:
        return FabricConfig(
            reserved_subnets=tuple(self.reserved_subnets),
            vpc_irb_vlans=tuple((r.from_, r.to) for r in self.vpc_irb_vlans),
            th5_workaround_vlans=tuple((r.from_, r.to) for r in self.th5_workaround_vlans),
            fabric_mtu=self.fabric_mtu,
            server_facing_mtu_offset=self.server_facing_mtu_offset,
            vpc_peering_disabled=self.vpc_peering_disabled,
            allow_extra_switch_profiles=self.allow_extra_switch_profiles,
            fabric_subnet=self.fabric_subnet,
            management_subnet=self.management_subnet,
            management_dhcp_start=self.management_dhcp_start,
            control_vip=self.control_vip,
            protocol_subnet=self.protocol_subnet,
            vtep_subnet=self.vtep_subnet,
            spine_asn=self.spine_asn,
            leaf_asn_start=self.leaf_asn_start,
            leaf_asn_end=self.leaf_asn_end,
        )


def _is_v4_prefix(text: str) -> bool:
    try:
        return parse_prefix(text)[1].version == 4
    except (ValueError, TypeError):
        return False
