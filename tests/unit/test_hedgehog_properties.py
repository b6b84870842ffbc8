"""Hedgehog's per-object rules as properties (hypothesis), on the real samples: a valid
object stays valid under every change Hedgehog allows, and a change into a rule's forbidden
zone is refused with that rule's id. Plus: defaulting never touches its input, is stable,
and what lands in managed/ is the user's document, not the defaulted one."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fgd_core.ingestion import validate_resource
from fgd_core.ingestion.hedgehog.defaults import apply_defaults
from fgd_core.ingestion.hedgehog.fabric_config import DEFAULT_RESERVED_SUBNETS
from tests.hedgehog_samples import mutate, sample, verdict

SETTINGS = settings(max_examples=60, deadline=None)
VPC = "demogitops_env-1_demo.yaml#VPC/demo-vpc-3"  # subnet-1 10.10.131.0/24 vlan 1131
EXTERNAL = "labci_env-ci-1_wiring.yaml#External/default"
ESLAG = "docs_user-guide_connections_examples.yaml#Connection/server-1--eslag--s5248-01--s5248-02"
STATIC_EXT = (
    "docs_user-guide_connections_examples.yaml#Connection/"
    "third-party-dhcp-server--static-external--s5248-04"
)
VLANNS = "labci_env-ci-1_wiring.yaml#VLANNamespace/default"
IPV4NS = "labci_env-ci-1_wiring.yaml#IPv4Namespace/default"
SAMPLES = (
    VPC,
    "demogitops_env-1_demo.yaml#VPCAttachment/demo-vpc-3--server-3--bundled--s5248-01",
    "demogitops_env-1_demo.yaml#VPCPeering/demo-vpc-1--demo-vpc-2",
    "demogitops_env-1_demo.yaml#ExternalPeering/demo-vpc-1--default",
    EXTERNAL,
    "labci_env-ci-1_wiring.yaml#ExternalAttachment/ds3000-03--default",
    VLANNS,
    IPV4NS,
    ESLAG,
    STATIC_EXT,
    "labci_env-ci-1_wiring.yaml#Switch/ds3000-01",
)

vpc_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,9}[a-z0-9])?", fullmatch=True).filter(
    lambda n: not n.startswith("ext.")
)
u16 = st.integers(0, 65535)


# ------------------------------------------------------------------------------- VPC


@SETTINGS
@given(
    name=vpc_names,
    vlan=st.integers(1, 4094).filter(lambda v: v != 1132),
    start=st.integers(2, 253),
    width=st.integers(1, 200),
    mode=st.sampled_from(["", "l3vni"]),
    dhcp_on=st.booleans(),
)
def test_vpc_stays_valid_under_allowed_changes(
    name: str, vlan: int, start: int, width: int, mode: str, dhcp_on: bool
) -> None:
    end = min(start + width, 254)
    doc = mutate(
        sample(VPC),
        {
            "metadata.name": name,
            "spec.mode": mode,
            "spec.subnets.subnet-1.vlan": vlan,
            "spec.subnets.subnet-1.dhcp.enable": dhcp_on,
            "spec.subnets.subnet-1.dhcp.range.start": f"10.10.131.{start}",
            "spec.subnets.subnet-1.dhcp.range.end": f"10.10.131.{end}",
        },
    )
    assert verdict(doc) == []


@SETTINGS
@given(name=st.from_regex(r"[a-z0-9][-a-z0-9]{10,60}[a-z0-9]", fullmatch=True))
def test_vpc_name_over_11_is_refused(name: str) -> None:
    assert "vpc.name-length" in verdict(mutate(sample(VPC), {"metadata.name": name}))


@SETTINGS
@given(at=st.integers(2, 254))
def test_dhcp_range_of_one_address_is_refused(at: int) -> None:
    ip = f"10.10.131.{at}"
    doc = mutate(
        sample(VPC),
        {"spec.subnets.subnet-1.dhcp.range.start": ip, "spec.subnets.subnet-1.dhcp.range.end": ip},
    )
    assert "vpc.subnet.dhcp-range-order" in verdict(doc)


@SETTINGS
@given(bits=st.integers(31, 32), third=st.integers(0, 255))
def test_vpc_prefix_longer_than_30_is_refused(bits: int, third: int) -> None:
    doc = mutate(
        sample(VPC),
        {"spec.subnets.subnet-1": {"subnet": f"10.10.{third}.0/{bits}", "vlan": 1131}},
    )
    assert "vpc.subnet.prefix-too-long" in verdict(doc)


@SETTINGS
@given(reserved=st.sampled_from(DEFAULT_RESERVED_SUBNETS), data=st.data())
def test_vpc_subnet_in_reserved_space_is_refused(reserved: str, data: st.DataObject) -> None:
    net = ipaddress.ip_network(reserved)
    bits = max(net.prefixlen, 24) if net.prefixlen <= 30 else 30
    sub = (
        data.draw(st.sampled_from(list(net.subnets(new_prefix=bits))[:64]))
        if bits > net.prefixlen
        else net
    )
    if sub.prefixlen > 30:
        sub = sub.supernet(new_prefix=30)
    doc = mutate(sample(VPC), {"spec.subnets.subnet-1": {"subnet": str(sub), "vlan": 1131}})
    assert "vpc.subnet.reserved" in verdict(doc)


@SETTINGS
@given(doc=st.sampled_from(SAMPLES).map(sample))
def test_managed_file_is_the_users_document_not_the_defaulted_one(doc: dict[str, Any]) -> None:
    res = validate_resource(doc)
    assert res.normalized.get("spec") == doc.get("spec")


@SETTINGS
@given(ref=st.sampled_from(SAMPLES), enable=st.booleans(), drop=st.booleans())
def test_defaults_copy_never_touch_the_input_and_are_stable(
    ref: str, enable: bool, drop: bool
) -> None:
    doc = sample(ref)
    if doc["kind"] == "VPC":
        mutate(doc, {"spec.subnets.subnet-1.dhcp.enable": enable})
        if drop:
            mutate(doc, unset=["spec.subnets.subnet-2.dhcp"])
    spec = doc["spec"]
    snapshot = repr(spec)
    once = apply_defaults(doc["kind"], spec)
    assert repr(spec) == snapshot  # the input is untouched
    assert apply_defaults(doc["kind"], once) == once  # Default() twice is Default() once


# ------------------------------------------------------------------------- externals


@SETTINGS
@given(a=u16, b=u16)
def test_any_16_bit_community_is_accepted(a: int, b: int) -> None:
    doc = mutate(sample(EXTERNAL), {"spec.inboundCommunity": f"{a}:{b}"})
    assert verdict(doc) == []


@SETTINGS
@given(a=st.integers(65536, 10**9), b=u16, inbound=st.booleans())
def test_community_over_16_bits_is_refused(a: int, b: int, inbound: bool) -> None:
    key = "spec.inboundCommunity" if inbound else "spec.outboundCommunity"
    parts = (a, b) if inbound else (b, a)
    doc = mutate(sample(EXTERNAL), {key: f"{parts[0]}:{parts[1]}"})
    assert "external.community" in verdict(doc)


# ------------------------------------------------------------------------ namespaces


@SETTINGS
@given(
    bounds=st.lists(st.integers(1, 2999), min_size=1, max_size=20, unique=True).map(sorted),
    drop_to=st.booleans(),
)
def test_vlan_namespace_ranges_clear_of_the_fabric_are_accepted(
    bounds: list[int], drop_to: bool
) -> None:
    pairs = [bounds[i : i + 2] for i in range(0, len(bounds), 2)]
    ranges = [
        {"from": p[0]} if len(p) == 1 or drop_to and p[0] == p[-1] else {"from": p[0], "to": p[1]}
        for p in pairs
    ]
    assert verdict(mutate(sample(VLANNS), {"spec.ranges": ranges})) == []


@SETTINGS
@given(low=st.integers(1, 3999), high=st.integers(3000, 4094))
def test_vlan_namespace_range_touching_reserved_vlans_is_refused(low: int, high: int) -> None:
    low = min(low, high)
    doc = mutate(sample(VLANNS), {"spec.ranges": [{"from": low, "to": high}]})
    assert "vlanns.range-reserved" in verdict(doc)


@SETTINGS
@given(count=st.integers(1, 20), data=st.data())
def test_ipv4_namespace_subnet_count(count: int, data: st.DataObject) -> None:
    octets = data.draw(st.lists(st.integers(0, 255), min_size=count, max_size=count, unique=True))
    doc = mutate(sample(IPV4NS), {"spec.subnets": [f"10.{o}.0.0/16" for o in octets]})
    rules = verdict(doc)
    assert (rules == []) if count <= 10 else ("ipv4ns.subnets-max" in rules)


# ----------------------------------------------------------------------- connections


@SETTINGS
@given(switches=st.integers(1, 8), extra_links=st.integers(0, 3))
def test_eslag_switch_count(switches: int, extra_links: int) -> None:
    links = [
        {
            "server": {"port": f"server-1/enp2s{i + 1}"},
            "switch": {"port": f"s5248-{i % switches + 1:02d}/E1/{i + 1}"},
        }
        for i in range(max(2, switches) + extra_links)
    ]
    rules = verdict(mutate(sample(ESLAG), {"spec.eslag.links": links}))
    assert (rules == []) if switches <= 4 else ("connection.eslag-switches" in rules)


@SETTINGS
@given(host=st.integers(1, 254), third=st.integers(0, 255))
def test_static_external_next_hop_must_be_in_the_switch_subnet(host: int, third: int) -> None:
    doc = mutate(
        sample(STATIC_EXT), {"spec.staticExternal.link.switch.nextHop": f"172.30.{third}.{host}"}
    )
    rules = verdict(doc)
    assert (rules == []) if third == 50 else ("connection.static-external-next-hop" in rules)


# ------------------------------------------------------------------------ hostile specs

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**33), 2**33),
    st.sampled_from(["", "10.0.0.0/24", "10.0.0.1", "a/b", "0.0.0.0/0", "x", "::1", "E1/1"]),
)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "subnets",
                    "subnet",
                    "gateway",
                    "vlan",
                    "dhcp",
                    "enable",
                    "range",
                    "start",
                    "end",
                    "permit",
                    "static",
                    "prefixes",
                    "links",
                    "link",
                    "port",
                    "switch",
                    "server",
                    "ranges",
                    "from",
                    "to",
                    "ip",
                    "nextHop",
                    "ports",
                    "portProfiles",
                    "speed",
                    "breakout",
                    "supported",
                    "unbundled",
                    "eslag",
                    "staticExternal",
                    "neighbor",
                    "asn",
                    "redundancy",
                    "group",
                    "type",
                    "role",
                    "profile",
                    "a",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(ref=st.sampled_from(SAMPLES), spec=trees)
def test_any_spec_gets_a_verdict_never_a_crash(ref: str, spec: Any) -> None:
    doc = sample(ref)
    doc["spec"] = spec
    verdict(doc)  # accepted or ValidationError with rule ids; anything else fails the test
