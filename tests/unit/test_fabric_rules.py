"""Hedgehog's fabric-wide rules, each in both directions, on the real samples: the lab-ci
wiring (tests/fixtures/hedgehog/labci_env-ci-1_wiring.yaml, a valid fabric as it stands)
plus the demo-gitops VPC objects, edited only where a rule needs it."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from fgd_core.ingestion.hedgehog.fabric_check import check_fabric, fabric_verdict
from fgd_core.ingestion.hedgehog.fabric_config import DEFAULT_FABRIC_CONFIG, FabricConfig
from fgd_core.ingestion.hedgehog.fabric_index import FabricObject, object_facts
from fgd_core.ingestion.yaml_safe import iter_documents
from tests.paths import HEDGEHOG_FIXTURES

Doc = dict[str, Any]
TESTS_ROOT = Path(__file__).resolve().parents[1]
HEDGEHOG_PACKAGE = TESTS_ROOT.parent / "fgd_core" / "ingestion" / "hedgehog"


def load(name: str) -> list[Doc]:
    return [d.data for d in iter_documents((HEDGEHOG_FIXTURES / name).read_bytes())]


WIRING = load("labci_env-ci-1_wiring.yaml")
DEMO = load("demogitops_env-1_demo.yaml")  # VPC, VPCAttachment, VPCPeering, ExternalPeering


def obj(doc: Doc, source: str = "f.yaml", index: int = 0) -> FabricObject:
    meta = doc["metadata"]
    return FabricObject(doc["kind"], meta["name"], meta.get("namespace") or "default",
                        object_facts(doc["kind"], doc.get("spec")), source, index, 1)


def findings(docs: list[Doc], cfg: FabricConfig = DEFAULT_FABRIC_CONFIG
             ) -> dict[tuple[str, str], tuple[set[str], set[str]]]:
    """(kind, name) → (error rules, warning rules) of every object with findings."""
    out = {}
    for o, found in check_fabric([obj(d) for d in docs], cfg).items():
        out[o.key] = ({e.rule for e in found.errors}, {w.rule for w in found.warnings})
    return out


def errors(docs: list[Doc], cfg: FabricConfig = DEFAULT_FABRIC_CONFIG
           ) -> set[tuple[str, str, str]]:
    return {(k[0], k[1], rule) for k, (errs, _) in findings(docs, cfg).items() for rule in errs}


def named(kind: str, name: str, docs: list[Doc] = WIRING) -> Doc:
    return copy.deepcopy(next(d for d in docs if d["kind"] == kind
                              and d["metadata"]["name"] == name))


def vpc(name: str = "vpc-1", subnet: str = "10.20.1.0/24", vlan: int = 1001, **spec: Any) -> Doc:
    """The demo's VPC (demo-vpc-3), renamed, its first subnet moved into lab-ci's space."""
    doc = named("VPC", "demo-vpc-3", DEMO)
    doc["metadata"]["name"] = name
    first = doc["spec"]["subnets"]["subnet-1"]
    first.update(subnet=subnet, gateway=subnet.rsplit(".", 1)[0] + ".1", vlan=vlan)
    first["dhcp"]["range"] = {"start": subnet.rsplit(".", 1)[0] + ".10",
                              "end": subnet.rsplit(".", 1)[0] + ".99"}
    doc["spec"]["subnets"] = {"subnet-1": first}
    doc["spec"].pop("permit")
    doc["spec"].update(spec)
    return doc


def attachment(vpc_subnet: str = "vpc-1/subnet-1",
               connection: str = "server-3--bundled--ds3000-01", name: str = "att-1",
               **spec: Any) -> Doc:
    doc = named("VPCAttachment", "demo-vpc-3--server-3--bundled--s5248-01", DEMO)
    doc["metadata"]["name"] = name
    doc["spec"] = {"connection": connection, "subnet": vpc_subnet, **spec}
    return doc


def test_the_real_wiring_and_a_vpc_attached_to_it_are_a_valid_fabric() -> None:
    assert findings(WIRING) == {}
    assert findings(WIRING + [vpc(), attachment()]) == {}


def test_references_to_kinds_git_does_not_hold_are_warnings_not_errors() -> None:
    # Hedgehog's own GitOps demo: VPCs, attachments and peerings only, wiring in the cluster
    found = findings(load("demogitops_env-1_pre-demo.yaml") + DEMO)
    assert found and all(not errs for errs, _ in found.values())
    assert all(warns == {"fabric.reference-unchecked"} for _, warns in found.values())


# ------------------------------------------------------------------------------ VPC


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"ipv4Namespace": "nope"}, "vpc.ipv4namespace-exists"),
        ({"vlanNamespace": "nope"}, "vpc.vlannamespace-exists"),
    ],
)
def test_vpc_namespaces_must_exist(change: Doc, rule: str) -> None:
    assert errors(WIRING + [vpc(ipv4Namespace="default", vlanNamespace="default")]) == set()
    assert ("VPC", "vpc-1", rule) in errors(WIRING + [vpc(**change)])


def test_vpc_subnet_inside_its_ipv4namespace_and_vlan_inside_its_vlannamespace() -> None:
    assert errors(WIRING + [vpc(subnet="10.20.255.0/24", vlan=2999)]) == set()
    assert errors(WIRING + [vpc(subnet="10.21.0.0/24")]) == {
        ("VPC", "vpc-1", "vpc.subnet-in-ipv4namespace")}
    assert errors(WIRING + [vpc(vlan=3001)]) == {("VPC", "vpc-1", "vpc.vlan-in-vlannamespace")}


def test_subnets_and_vlans_are_unique_across_vpcs_of_a_namespace() -> None:
    ok = [vpc("vpc-1", "10.20.1.0/24", 1001), vpc("vpc-2", "10.20.2.0/24", 1002)]
    assert errors(WIRING + ok) == set()
    overlap = [vpc("vpc-1", "10.20.0.0/16", 1001), vpc("vpc-2", "10.20.2.0/24", 1002)]
    assert errors(WIRING + overlap) == {("VPC", "vpc-1", "vpc.subnet-overlap"),
                                        ("VPC", "vpc-2", "vpc.subnet-overlap")}
    same_vlan = [vpc("vpc-1", "10.20.1.0/24", 1001), vpc("vpc-2", "10.20.2.0/24", 1001)]
    assert errors(WIRING + same_vlan) == {("VPC", "vpc-1", "vpc.vlan-unique"),
                                          ("VPC", "vpc-2", "vpc.vlan-unique")}


def test_dhcp_relay_vpc_must_exist() -> None:
    relayed = vpc("vpc-2", "10.20.2.0/24", 1002)
    relayed["spec"]["subnets"]["subnet-1"]["dhcp"] = {"relay": "10.20.1.5/32",
                                                      "relayVPC": "vpc-1"}
    assert errors(WIRING + [vpc(), relayed]) == set()
    assert errors(WIRING + [relayed]) == {("VPC", "vpc-2", "vpc.dhcp-relay-vpc-exists")}


# --------------------------------------------------------------------- VPCAttachment


def test_attachment_needs_its_vpc_subnet_and_connection() -> None:
    base = WIRING + [vpc()]
    assert errors(base + [attachment()]) == set()
    other = vpc("vpc-2", "10.20.2.0/24", 1002)  # Git holds VPCs: the reference is checked
    assert errors([*WIRING, other, attachment()]) == {
        ("VPCAttachment", "att-1", "vpcattachment.vpc-exists")}
    assert errors(base + [attachment("vpc-1/subnet-9")]) == {
        ("VPCAttachment", "att-1", "vpcattachment.subnet-exists")}
    assert errors(base + [attachment(connection="server-4--unbundled--ds3000-02")]) == {
        ("VPCAttachment", "att-1", "vpcattachment.connection-exists")}


def test_attachment_subnet_without_slash_means_the_default_subnet() -> None:
    with_default = vpc()
    with_default["spec"]["subnets"] = {"default": with_default["spec"]["subnets"]["subnet-1"]}
    assert errors(WIRING + [with_default, attachment("vpc-1")]) == set()
    assert errors(WIRING + [vpc(), attachment("vpc-1")]) == {
        ("VPCAttachment", "att-1", "vpcattachment.subnet-exists")}


def test_attachment_only_to_unbundled_bundled_or_eslag_connections() -> None:
    base = WIRING + [vpc()]
    for conn in ("server-7--unbundled--ds3000-03", "server-1--eslag--ds3000-01--ds3000-02"):
        assert errors(base + [attachment(connection=conn)]) == set()
    for conn in ("ds4000-01--fabric--ds3000-01", "ds3000-01--vpc-loopback",
                 "ds3000-01--external--ds2000-02"):
        assert errors(base + [attachment(connection=conn)]) == {
            ("VPCAttachment", "att-1", "vpcattachment.connection-type")}


def test_eslag_attachment_needs_an_l2vni_vpc() -> None:
    eslag = "server-1--eslag--ds3000-01--ds3000-02"
    assert errors(WIRING + [vpc(), attachment(connection=eslag)]) == set()
    assert ("VPCAttachment", "att-1", "vpcattachment.eslag-mode") in errors(
        WIRING + [vpc(mode="l3vni"), attachment(connection=eslag)])


def test_attachment_switch_must_carry_the_vpc_vlannamespace() -> None:
    other_ns = named("VLANNamespace", "default")
    other_ns["metadata"]["name"] = "other"
    base = WIRING + [other_ns]
    assert errors(base + [vpc(), attachment()]) == set()
    assert errors(base + [vpc(vlanNamespace="other"), attachment()]) == {
        ("VPCAttachment", "att-1", "vpcattachment.switch-vlannamespace")}


def test_one_attachment_per_connection_and_subnet_and_one_native_vlan() -> None:
    base = WIRING + [vpc(), vpc("vpc-2", "10.20.2.0/24", 1002)]
    two = [attachment(), attachment("vpc-2/subnet-1", name="att-2")]
    assert errors(base + two) == set()
    assert errors(base + [attachment(), attachment(name="att-2")]) == {
        ("VPCAttachment", "att-1", "vpcattachment.unique"),
        ("VPCAttachment", "att-2", "vpcattachment.unique")}
    native = [attachment(nativeVLAN=True), attachment("vpc-2/subnet-1", name="att-2",
                                                      nativeVLAN=True)]
    assert errors(base + native) == {
        ("VPCAttachment", "att-1", "vpcattachment.native-vlan-unique"),
        ("VPCAttachment", "att-2", "vpcattachment.native-vlan-unique")}


# ---------------------------------------------------------------- peerings, externals


def test_vpc_peering_needs_both_vpcs_their_subnets_and_one_ipv4namespace() -> None:
    peering = named("VPCPeering", "demo-vpc-1--demo-vpc-2", DEMO)
    peering["spec"]["permit"] = [{"vpc-1": {"subnets": ["subnet-1"]},
                                  "vpc-2": {"subnets": ["subnet-1"]}}]
    both = [vpc(), vpc("vpc-2", "10.20.2.0/24", 1002)]
    assert errors(WIRING + both + [peering]) == set()
    assert errors(WIRING + both[:1] + [peering]) == {
        ("VPCPeering", "demo-vpc-1--demo-vpc-2", "vpcpeering.vpc-exists")}
    bad = copy.deepcopy(peering)
    bad["spec"]["permit"][0]["vpc-2"]["subnets"] = ["subnet-7"]
    assert errors(WIRING + both + [bad]) == {
        ("VPCPeering", "demo-vpc-1--demo-vpc-2", "vpcpeering.subnet-exists")}
    other_ns = named("IPv4Namespace", "default")
    other_ns["metadata"]["name"] = "other"
    other_ns["spec"]["subnets"] = ["10.30.0.0/16"]
    apart = [vpc(), vpc("vpc-2", "10.30.2.0/24", 1002, ipv4Namespace="other")]
    assert ("VPCPeering", "demo-vpc-1--demo-vpc-2", "vpcpeering.same-ipv4namespace") in errors(
        WIRING + [other_ns] + apart + [peering])


def test_external_peering_needs_vpc_external_and_subnets() -> None:
    peering = named("ExternalPeering", "demo-vpc-1--default", DEMO)
    peering["spec"]["permit"]["vpc"] = {"name": "vpc-1", "subnets": ["subnet-1"]}
    assert errors(WIRING + [vpc(), peering]) == set()
    assert errors(WIRING + [vpc("vpc-2", "10.20.2.0/24", 1002), peering]) == {
        ("ExternalPeering", "demo-vpc-1--default", "externalpeering.vpc-exists")}
    no_ext = copy.deepcopy(peering)
    no_ext["spec"]["permit"]["external"]["name"] = "nope"
    assert errors(WIRING + [vpc(), no_ext]) == {
        ("ExternalPeering", "demo-vpc-1--default", "externalpeering.external-exists")}
    no_sub = copy.deepcopy(peering)
    no_sub["spec"]["permit"]["vpc"]["subnets"] = ["default"]
    assert errors(WIRING + [vpc(), no_sub]) == {
        ("ExternalPeering", "demo-vpc-1--default", "externalpeering.subnet-exists")}


def test_external_attachment_rules() -> None:
    bgp = named("ExternalAttachment", "ds3000-03--default")
    without = [d for d in WIRING if d["metadata"]["name"] != "ds3000-03--default"]
    assert errors(without + [bgp]) == set()
    to_static = copy.deepcopy(bgp)
    to_static["spec"]["external"] = "static-ext"
    assert errors(without + [to_static]) == {
        ("ExternalAttachment", "ds3000-03--default", "externalattachment.static-matches")}
    to_fabric = copy.deepcopy(bgp)
    to_fabric["spec"]["connection"] = "ds4000-01--fabric--ds3000-03"
    assert errors(without + [to_fabric]) == {
        ("ExternalAttachment", "ds3000-03--default", "externalattachment.connection-type")}
    same_vlan = copy.deepcopy(bgp)
    same_vlan["spec"]["switch"]["vlan"] = 200  # ds3000-03--other uses VLAN 200 there
    assert errors(without + [same_vlan]) == {
        ("ExternalAttachment", "ds3000-03--default", "externalattachment.vlan-unique"),
        ("ExternalAttachment", "ds3000-03--other", "externalattachment.vlan-unique")}
    external = named("External", "other")
    external["spec"]["ipv4Namespace"] = "nope"
    assert errors(_with(external)) == {("External", "other", "external.ipv4namespace-exists")}


# ------------------------------------------------------------------------ Connection


def _with(doc: Doc) -> list[Doc]:
    return [d for d in WIRING if (d["kind"], d["metadata"]["name"])
            != (doc["kind"], doc["metadata"]["name"])] + [doc]


def test_connection_switches_and_servers_must_exist() -> None:
    conn = named("Connection", "server-7--unbundled--ds3000-03")
    assert errors(_with(conn)) == set()
    gone = copy.deepcopy(conn)
    gone["spec"]["unbundled"]["link"]["switch"]["port"] = "ds9999-01/E1/5"
    assert errors(_with(gone)) == {("Connection", conn["metadata"]["name"],
                                    "connection.switch-exists")}
    no_server = copy.deepcopy(conn)
    no_server["spec"]["unbundled"]["link"]["server"]["port"] = "server-42/enp2s1"
    assert errors(_with(no_server)) == {("Connection", conn["metadata"]["name"],
                                         "connection.server-exists")}


def test_switch_ports_must_exist_on_the_profile_with_its_breakouts() -> None:
    conn = named("Connection", "server-3--bundled--ds3000-01")  # E1/1/4 and E1/2/2
    assert errors(_with(conn)) == set()  # E1/1 and E1/2 are broken out 4x10G on ds3000-01
    lane = copy.deepcopy(conn)
    lane["spec"]["bundled"]["links"][0]["switch"]["port"] = "ds3000-01/E1/1/5"
    assert errors(_with(lane)) == {("Connection", conn["metadata"]["name"],
                                    "connection.port-allowed")}
    unbroken = copy.deepcopy(conn)
    unbroken["spec"]["bundled"]["links"][0]["switch"]["port"] = "ds3000-01/E1/20/2"  # 1x100G
    assert errors(_with(unbroken)) == {("Connection", conn["metadata"]["name"],
                                        "connection.port-allowed")}


def test_a_switch_port_is_used_by_one_connection_breakout_alias_included() -> None:
    conn = named("Connection", "server-7--unbundled--ds3000-03")
    port = conn["spec"]["unbundled"]["link"]["switch"]["port"]
    twin = copy.deepcopy(conn)
    twin["metadata"]["name"] = "server-9--unbundled--ds3000-03"
    twin["spec"]["unbundled"]["link"]["server"]["port"] = "server-9/enp2s9"
    twin["spec"]["unbundled"]["link"]["switch"]["port"] = "ds3000-03/E1/2/4"
    assert errors(WIRING + [twin]) == set()
    twin["spec"]["unbundled"]["link"]["switch"]["port"] = port
    assert errors(WIRING + [twin]) == {
        ("Connection", "server-7--unbundled--ds3000-03", "connection.port-unique"),
        ("Connection", "server-9--unbundled--ds3000-03", "connection.port-unique")}
    # E1/28 (not broken out) is used by a fabric link: E1/28/1 names the same port
    twin["spec"]["unbundled"]["link"]["switch"]["port"] = "ds3000-03/E1/28/1"
    assert errors(WIRING + [twin]) == {
        ("Connection", "ds4000-01--fabric--ds3000-03", "connection.port-unique"),
        ("Connection", "server-9--unbundled--ds3000-03", "connection.port-unique")}


def test_eslag_switches_share_one_eslag_redundancy_group() -> None:
    conn = named("Connection", "server-1--eslag--ds3000-01--ds3000-02")
    assert errors(_with(conn)) == set()
    split = copy.deepcopy(conn)
    split["spec"]["eslag"]["links"][1]["switch"]["port"] = "ds3000-03/E1/3/1"
    assert ("Connection", conn["metadata"]["name"], "connection.eslag-same-group") in errors(
        _with(split))


def test_fabric_link_ips_unique_31_and_in_the_fabric_subnet() -> None:
    conn = named("Connection", "ds4000-01--fabric--ds3000-01")
    link = conn["spec"]["fabric"]["links"][0]
    link["spine"]["ip"], link["leaf"]["ip"] = "172.30.128.0/31", "172.30.128.1/31"
    assert errors(_with(conn)) == set()
    other = named("Connection", "ds4000-02--fabric--ds3000-01")
    olink = other["spec"]["fabric"]["links"][0]
    olink["spine"]["ip"], olink["leaf"]["ip"] = "172.30.128.0/31", "172.30.128.3/31"
    found = errors([d for d in _with(conn) if d["metadata"]["name"] != other["metadata"][
        "name"]] + [other])
    assert ("Connection", other["metadata"]["name"], "connection.link-ip-unique") in found
    assert ("Connection", other["metadata"]["name"], "connection.link-ip-same-subnet") in found
    link["spine"]["ip"], link["leaf"]["ip"] = "172.30.30.0/31", "172.30.30.1/31"
    assert errors(_with(conn)) == {("Connection", conn["metadata"]["name"],
                                    "connection.link-ip-in-fabric-subnet")}


# ----------------------------------------------------------------------------- Switch


def test_switch_references_and_profile() -> None:
    sw = named("Switch", "ds3000-03")
    assert errors(_with(sw)) == set()
    for change, rule in (({"groups": ["nope"]}, "switch.group-exists"),
                         ({"vlanNamespaces": ["nope"]}, "switch.vlannamespace-exists"),
                         ({"profile": "no-such-switch"}, "switch.profile-exists"),
                         ({"portBreakouts": {"E1/1": "3x33G"}}, "switch.breakout-mode")):
        bad = copy.deepcopy(sw)
        bad["spec"].update(change)
        assert ("Switch", "ds3000-03", rule) in errors(_with(bad)), rule


def test_hydrated_switch_values_are_unique_and_in_their_subnets() -> None:
    a, b = named("Switch", "ds3000-01"), named("Switch", "ds3000-03")
    for sw, n in ((a, 1), (b, 2)):
        sw["spec"].update(asn=65100 + n, ip=f"172.30.0.{10 + n}/21",
                          protocolIP=f"172.30.8.{n}/32", vtepIP=f"172.30.12.{n}/32")
    base = [d for d in WIRING if d["metadata"]["name"] not in ("ds3000-01", "ds3000-03")]
    assert errors(base + [a, b]) == set()
    b["spec"].update(vtepIP="172.30.12.1/32", asn=65101)
    assert errors(base + [a, b]) >= {("Switch", "ds3000-01", "switch.vtep-unique"),
                                     ("Switch", "ds3000-03", "switch.asn-unique")}
    b["spec"].update(vtepIP="172.31.12.2/32", asn=65102, ip="172.30.5.1/21")
    assert errors(base + [a, b]) == {("Switch", "ds3000-03", "switch.vtep-in-subnet"),
                                     ("Switch", "ds3000-03", "switch.ip-below-dhcp")}


# ---------------------------------------------------------------- the sync's verdict


def test_a_file_that_depends_on_a_failing_file_fails_too_naming_it() -> None:
    managed = [obj(d, "managed") for d in WIRING]
    incoming = {"raw/a.yaml": [obj(vpc(ipv4Namespace="nope"), "raw/a.yaml")],
                "raw/b.yaml": [obj(attachment(), "raw/b.yaml")]}
    verdict = fabric_verdict(managed, incoming)
    assert {i.rule for _, i in verdict["raw/a.yaml"].errors} == {"vpc.ipv4namespace-exists"}
    (only,) = verdict["raw/b.yaml"].errors
    assert only[1].rule == "vpcattachment.vpc-exists" and "raw/a.yaml" in only[1].message


def test_two_new_files_that_collide_both_fail() -> None:
    managed = [obj(d, "managed") for d in WIRING]
    incoming = {"raw/a.yaml": [obj(vpc("vpc-1", "10.20.1.0/24", 1001), "raw/a.yaml")],
                "raw/b.yaml": [obj(vpc("vpc-2", "10.20.2.0/24", 1001), "raw/b.yaml")]}
    verdict = fabric_verdict(managed, incoming)
    assert all({i.rule for _, i in v.errors} == {"vpc.vlan-unique"} for v in verdict.values())


def test_a_change_that_breaks_a_managed_object_is_blamed_on_the_change() -> None:
    managed = [obj(d, "managed") for d in WIRING + [vpc(), attachment()]]
    renamed = vpc()
    renamed["spec"]["subnets"] = {"other": renamed["spec"]["subnets"]["subnet-1"]}
    verdict = fabric_verdict(managed, {"raw/a.yaml": [obj(renamed, "raw/a.yaml")]})
    (found,) = verdict["raw/a.yaml"].errors
    assert found[1].rule == "vpcattachment.subnet-exists"
    assert "breaks VPCAttachment 'att-1'" in found[1].message
    # An unrelated managed problem is not blamed on an unrelated change.
    broken = managed + [obj(attachment("vpc-9/x", name="att-9"), "managed")]
    ok = fabric_verdict(broken, {"raw/a.yaml": [obj(vpc(), "raw/a.yaml")]})
    assert ok["raw/a.yaml"].errors == []


def test_a_connection_type_is_immutable() -> None:
    managed = [obj(d, "managed") for d in WIRING]
    conn = named("Connection", "server-7--unbundled--ds3000-03")
    port = conn["spec"].pop("unbundled")["link"]
    conn["spec"]["bundled"] = {"links": [port]}
    verdict = fabric_verdict(managed, {"raw/a.yaml": [obj(conn, "raw/a.yaml")]})
    assert {i.rule for _, i in verdict["raw/a.yaml"].errors} == {"connection.type-immutable"}


def test_installer_made_default_namespaces_are_never_missing() -> None:
    # Git holds IPv4/VLAN namespaces, but not "default", which every installation has.
    renamed = [copy.deepcopy(d) for d in WIRING]
    for d in renamed:
        if d["kind"] in ("IPv4Namespace", "VLANNamespace"):
            d["metadata"]["name"] = "other"
        if d["kind"] == "Switch":
            d["spec"]["vlanNamespaces"] = ["other"]
    found = findings(renamed + [vpc()])
    assert found[("VPC", "vpc-1")] == (set(), {"fabric.reference-unchecked"})
    assert errors(renamed + [vpc(ipv4Namespace="third")]) == {
        ("VPC", "vpc-1", "vpc.ipv4namespace-exists")}


# ------------------------------------------- every remaining rule, in both directions


ESLAG = "server-1--eslag--ds3000-01--ds3000-02"
UNBUNDLED = "server-7--unbundled--ds3000-03"


def _replacing(*docs: Doc, base: list[Doc] = WIRING) -> list[Doc]:
    """``base`` with each of ``docs`` in place of the object of its kind and name."""
    keys = {(d["kind"], d["metadata"]["name"]) for d in docs}
    return [d for d in base if (d["kind"], d["metadata"]["name"]) not in keys] + list(docs)


def _switches(*names: str, **spec: Any) -> list[Doc]:
    out = []
    for name in names:
        sw = named("Switch", name)
        sw["spec"].update(spec)
        out.append(sw)
    return out


def test_eslag_switches_need_a_redundancy_group_and_type_eslag() -> None:
    assert errors(WIRING) == set()
    no_group = _switches("ds3000-01", "ds3000-02")
    for sw in no_group:
        sw["spec"].pop("redundancy")
    assert ("Connection", ESLAG, "connection.eslag-group") in errors(_replacing(*no_group))
    mclag = _switches("ds3000-01", "ds3000-02")
    for sw in mclag:
        sw["spec"]["redundancy"]["type"] = "mclag"
    found = errors(_replacing(*mclag))
    assert ("Connection", ESLAG, "connection.eslag-type") in found
    assert ("Connection", ESLAG, "connection.eslag-group") not in found


def test_fabric_link_ips_are_31s() -> None:
    conn = named("Connection", "ds4000-01--fabric--ds3000-01")
    link = conn["spec"]["fabric"]["links"][0]
    link["spine"]["ip"], link["leaf"]["ip"] = "172.30.128.0/31", "172.30.128.1/31"
    assert errors(_with(conn)) == set()
    link["spine"]["ip"], link["leaf"]["ip"] = "172.30.128.0/30", "172.30.128.1/30"
    assert errors(_with(conn)) == {("Connection", conn["metadata"]["name"],
                                    "connection.link-ip-31")}


def test_fabric_subnet_comes_from_the_fabric_config() -> None:
    conn = named("Connection", "ds4000-01--fabric--ds3000-01")
    link = conn["spec"]["fabric"]["links"][0]
    link["spine"]["ip"], link["leaf"]["ip"] = "10.9.0.0/31", "10.9.0.1/31"
    assert errors(_with(conn)) == {("Connection", conn["metadata"]["name"],
                                    "connection.link-ip-in-fabric-subnet")}
    assert errors(_with(conn), FabricConfig(fabric_subnet="10.9.0.0/16")) == set()


def test_a_connection_switch_needs_a_known_profile() -> None:
    (sw,) = _switches("ds3000-03")
    assert ("Connection", UNBUNDLED, "connection.switch-profile-exists") not in errors(
        _replacing(sw))
    sw["spec"]["profile"] = "no-such-profile"
    found = errors(_replacing(sw))
    assert ("Connection", UNBUNDLED, "connection.switch-profile-exists") in found
    assert ("Switch", "ds3000-03", "switch.profile-exists") in found


def test_allow_extra_switch_profiles_makes_an_unknown_profile_a_reference() -> None:
    (sw,) = _switches("ds3000-03", profile="our-own")
    allow = FabricConfig(allow_extra_switch_profiles=True)
    # Git holds no SwitchProfile: the profile cannot be checked, a warning naming the kind
    found = findings(_replacing(sw), allow)
    assert found[("Switch", "ds3000-03")] == (set(), {"fabric.reference-unchecked"})
    assert found[("Connection", UNBUNDLED)] == (set(), {"fabric.reference-unchecked"})
    # Git holds SwitchProfiles, but not this one: an error again
    own = {"apiVersion": "wiring.githedgehog.com/v1beta1", "kind": "SwitchProfile",
           "metadata": {"name": "another"}, "spec": {}}
    assert ("Switch", "ds3000-03", "switch.profile-exists") in errors(
        _replacing(sw) + [own], allow)


def test_a_static_external_connection_keeps_its_within_vpc() -> None:
    static = named("Connection", "third-party-dhcp-server--static-external--s5248-04",
                   load("docs_user-guide_connections_examples.yaml"))
    static["spec"]["staticExternal"]["withinVPC"] = "vpc-1"
    managed = [obj(d, "managed") for d in WIRING + [static]]
    same = copy.deepcopy(static)
    verdict = fabric_verdict(managed, {"raw/a.yaml": [obj(same, "raw/a.yaml")]})
    assert "connection.within-vpc-immutable" not in {i.rule for _, i in
                                                     verdict["raw/a.yaml"].errors}
    moved = copy.deepcopy(static)
    moved["spec"]["staticExternal"]["withinVPC"] = "vpc-2"
    verdict = fabric_verdict(managed, {"raw/a.yaml": [obj(moved, "raw/a.yaml")]})
    assert "connection.within-vpc-immutable" in {i.rule for _, i in
                                                 verdict["raw/a.yaml"].errors}


def test_breakouts_only_on_ports_the_profile_can_break_out() -> None:
    (sw,) = _switches("ds3000-03")
    sw["spec"]["portBreakouts"]["E1/6"] = "4x10G"
    assert errors(_replacing(sw)) == set()
    sw["spec"]["portBreakouts"]["E1/99"] = "4x10G"
    assert errors(_replacing(sw)) == {("Switch", "ds3000-03", "switch.breakout-port")}


def test_breakouts_cannot_change_while_roce_is_on() -> None:
    for roce, expected in ((False, False), (True, True)):
        (old,) = _switches("ds3000-03", roce=roce)
        managed = [obj(d, "managed") for d in _replacing(old)]
        new = copy.deepcopy(old)
        new["spec"]["portBreakouts"]["E1/6"] = "4x10G"
        verdict = fabric_verdict(managed, {"raw/a.yaml": [obj(new, "raw/a.yaml")]})
        rules = {i.rule for _, i in verdict["raw/a.yaml"].errors}
        assert ("switch.breakouts-roce" in rules) is expected, rules


def _hydrated(**changes: Any) -> tuple[list[Doc], Doc, Doc]:
    """Two leaves with fabricator-style management IPs, ASNs and loopbacks (valid)."""
    a, b = named("Switch", "ds3000-01"), named("Switch", "ds3000-03")
    for sw, n in ((a, 1), (b, 2)):
        sw["spec"].update(asn=65100 + n, ip=f"172.30.0.{10 + n}/21",
                          protocolIP=f"172.30.8.{n}/32", vtepIP=f"172.30.12.{n}/32")
    b["spec"].update(changes)
    base = [d for d in WIRING if d["metadata"]["name"] not in ("ds3000-01", "ds3000-03")]
    return base, a, b


def test_management_ip_inside_the_management_subnet() -> None:
    base, a, b = _hydrated()
    assert errors(base + [a, b]) == set()
    base, a, b = _hydrated(ip="172.31.0.5/21")
    assert errors(base + [a, b]) == {("Switch", "ds3000-03", "switch.ip-in-management-subnet")}
    custom = FabricConfig(management_subnet="172.31.0.0/21", management_dhcp_start="172.31.4.0")
    assert ("Switch", "ds3000-03", "switch.ip-in-management-subnet") not in errors(
        base + [a, b], custom)


def test_management_ips_are_unique_and_never_the_control_vip() -> None:
    base, a, b = _hydrated(ip="172.30.0.11/21")
    assert errors(base + [a, b]) == {("Switch", "ds3000-01", "switch.ip-unique"),
                                     ("Switch", "ds3000-03", "switch.ip-unique")}
    base, a, b = _hydrated(ip="172.30.0.1/21")
    assert errors(base + [a, b]) == {("Switch", "ds3000-03", "switch.ip-unique")}


def test_leaf_asns_in_the_leaf_range_spine_asn_the_spines() -> None:
    base, a, b = _hydrated(asn=64000)
    assert errors(base + [a, b]) == {("Switch", "ds3000-03", "switch.leaf-asn-range")}
    assert errors(base + [a, b], FabricConfig(leaf_asn_start=64000)) == set()
    spine = named("Switch", "ds4000-01")
    spine["spec"]["asn"] = 65100
    assert errors(_replacing(spine)) == set()
    spine["spec"]["asn"] = 65101
    assert errors(_replacing(spine)) == {("Switch", "ds4000-01", "switch.spine-asn")}
    assert errors(_replacing(spine), FabricConfig(spine_asn=65101)) == set()


def _vlan_namespace(name: str, lo: int, hi: int) -> Doc:
    doc = named("VLANNamespace", "default")
    doc["metadata"]["name"] = name
    doc["spec"]["ranges"] = [{"from": lo, "to": hi}]
    return doc


def test_a_switch_vlan_namespaces_do_not_overlap() -> None:
    (sw,) = _switches("ds3000-03", vlanNamespaces=["default", "other"])
    clear = _replacing(sw) + [_vlan_namespace("other", 100, 200)]
    assert errors(clear) == set()
    overlapping = _replacing(sw) + [_vlan_namespace("other", 2000, 2100)]
    assert errors(overlapping) == {("Switch", "ds3000-03", "switch.vlannamespaces-overlap")}


def test_eslag_and_roce_need_a_profile_that_supports_them() -> None:
    (sw,) = _switches("ds3000-03", roce=True)
    assert errors(_replacing(sw)) == set()  # celestica-ds3000 supports both
    sw["spec"]["profile"] = "celestica-ds4000"  # RoCE, no ESLAG
    found = {r for k, _, r in errors(_replacing(sw)) if k == "Switch"}
    assert "switch.profile-eslag" in found and "switch.profile-roce" not in found
    sw["spec"]["profile"] = "edgecore-eps202"  # ESLAG, no RoCE
    found = {r for k, _, r in errors(_replacing(sw)) if k == "Switch"}
    assert "switch.profile-roce" in found and "switch.profile-eslag" not in found


def _host_bgp_vpc() -> Doc:
    doc = vpc()
    doc["spec"]["subnets"]["subnet-1"]["hostBGP"] = True
    return doc


def test_host_bgp_subnets_attach_to_unbundled_connections_only() -> None:
    unbundled = attachment(connection=UNBUNDLED)
    assert errors(WIRING + [_host_bgp_vpc(), unbundled]) == set()
    bundled = attachment()  # server-3--bundled--ds3000-01
    assert errors(WIRING + [_host_bgp_vpc(), bundled]) == {
        ("VPCAttachment", "att-1", "vpcattachment.hostbgp-unbundled")}


def test_host_bgp_subnets_do_not_attach_to_mclag_peers() -> None:
    (sw,) = _switches("ds3000-03")
    sw["spec"]["redundancy"]["type"] = "mclag"
    unbundled = attachment(connection=UNBUNDLED)
    assert ("VPCAttachment", "att-1", "vpcattachment.hostbgp-mclag") not in errors(
        _replacing(sw) + [vpc(), unbundled])
    assert ("VPCAttachment", "att-1", "vpcattachment.hostbgp-mclag") in errors(
        _replacing(sw) + [_host_bgp_vpc(), unbundled])


def test_attachment_connection_switches_must_exist_with_a_known_profile() -> None:
    without = [d for d in WIRING if d["metadata"]["name"] != "ds3000-01"]
    assert ("VPCAttachment", "att-1", "vpcattachment.switch-exists") in errors(
        without + [vpc(), attachment()])
    (sw,) = _switches("ds3000-01", profile="no-such-profile")
    found = errors(_replacing(sw) + [vpc(), attachment()])
    assert ("VPCAttachment", "att-1", "vpcattachment.switch-profile-exists") in found
    assert not {r for k, n, r in errors(WIRING + [vpc(), attachment()])}


def test_attachment_vpc_mode_must_be_supported_by_the_switch_profile() -> None:
    (sw,) = _switches("ds3000-01", profile="celestica-ds5000")  # L3VNI only
    l2 = {r for k, _, r in errors(_replacing(sw) + [vpc(), attachment()])
          if k == "VPCAttachment"}
    assert l2 == {"vpcattachment.switch-profile-mode"}
    l3 = {r for k, _, r in errors(_replacing(sw) + [vpc(mode="l3vni"), attachment()])
          if k == "VPCAttachment"}
    assert l3 == set()


def test_peered_vpcs_share_their_vlan_namespace() -> None:
    peering = named("VPCPeering", "demo-vpc-1--demo-vpc-2", DEMO)
    peering["spec"]["permit"] = [{"vpc-1": {"subnets": ["subnet-1"]},
                                  "vpc-2": {"subnets": ["subnet-1"]}}]
    other_ns = _vlan_namespace("other", 100, 200)
    same = [vpc(), vpc("vpc-2", "10.20.2.0/24", 1002), peering]
    assert errors(WIRING + [other_ns] + same) == set()
    apart = [vpc(), vpc("vpc-2", "10.20.2.0/24", 102, vlanNamespace="other"), peering]
    assert errors(WIRING + [other_ns] + apart) == {
        ("VPCPeering", "demo-vpc-1--demo-vpc-2", "vpcpeering.same-vlannamespace")}


# --------------------------------------------------------------------- completeness

# Rule ids the fabric-wide modules build from a value: pattern → every value it takes.
DYNAMIC_RULES = {
    "switch.{kind_value[0]}-unique": ("asn", "vtep", "pip", "ip"),
    "switch.{key}-32": ("pip", "vtep"),
    "switch.{key}-in-subnet": ("pip", "vtep"),
}


def _fabric_rule_ids() -> set[str]:
    ids: set[str] = set()
    for module in HEDGEHOG_PACKAGE.glob("fabric_*.py"):
        text = module.read_text()
        ids |= set(re.findall(r'"((?:vpc|vpcattachment|vpcpeering|external|externalattachment'
                              r'|externalpeering|connection|switch|fabric)\.[a-z0-9-]+)"', text))
        for pattern in re.findall(r'f"((?:connection|switch|vpc\w*|external\w*)\.'
                                  r'\{[^"]*\}[a-z0-9-]*)"', text):
            assert pattern in DYNAMIC_RULES, f"{module.name}: add {pattern} to DYNAMIC_RULES"
            ids |= {pattern.replace(pattern[pattern.index("{"):pattern.index("}") + 1], v)
                    for v in DYNAMIC_RULES[pattern]}
    return ids


def test_every_fabric_wide_rule_is_named_by_a_test() -> None:
    """Each rule id of the fabric_*.py modules appears in some test (this file, the
    property tests or the sync's), so a new rule cannot land untested."""
    in_code = _fabric_rule_ids()
    assert len(in_code) > 50 and "switch.vtep-in-subnet" in in_code
    tests = "".join(p.read_text() for p in (TESTS_ROOT / "unit").glob("test_fabric_*.py"))
    tests += "".join(p.read_text() for p in (TESTS_ROOT / "integration").glob("test_fabric_*.py"))
    assert {rule for rule in in_code if f'"{rule}"' not in tests} == set()


def test_external_attachment_needs_its_external_and_connection() -> None:
    bgp = named("ExternalAttachment", "ds3000-03--default")
    no_ext = copy.deepcopy(bgp)
    no_ext["spec"]["external"] = "nope"
    assert errors(_with(no_ext)) == {
        ("ExternalAttachment", "ds3000-03--default", "externalattachment.external-exists")}
    no_conn = copy.deepcopy(bgp)
    no_conn["spec"]["connection"] = "nope"
    assert errors(_with(no_conn)) == {
        ("ExternalAttachment", "ds3000-03--default", "externalattachment.connection-exists")}
    assert errors(_with(bgp)) == set()


def test_external_peering_vpc_and_external_share_an_ipv4namespace() -> None:
    peering = named("ExternalPeering", "demo-vpc-1--default", DEMO)
    peering["spec"]["permit"]["vpc"] = {"name": "vpc-1", "subnets": ["subnet-1"]}
    other_ns = named("IPv4Namespace", "default")
    other_ns["metadata"]["name"] = "other"
    other_ns["spec"]["subnets"] = ["10.30.0.0/16"]
    assert errors(WIRING + [other_ns, vpc(), peering]) == set()
    apart = vpc(subnet="10.30.1.0/24", ipv4Namespace="other")
    assert errors(WIRING + [other_ns, apart, peering]) == {
        ("ExternalPeering", "demo-vpc-1--default", "externalpeering.same-ipv4namespace")}


def test_protocol_and_vtep_ips_are_unique_32s_in_their_subnets() -> None:
    base, a, b = _hydrated(protocolIP="172.30.8.1/32")
    assert errors(base + [a, b]) == {("Switch", "ds3000-01", "switch.pip-unique"),
                                     ("Switch", "ds3000-03", "switch.pip-unique")}
    base, a, b = _hydrated(protocolIP="172.30.8.2/24", vtepIP="172.30.12.2/24")
    assert errors(base + [a, b]) == {("Switch", "ds3000-03", "switch.pip-32"),
                                     ("Switch", "ds3000-03", "switch.vtep-32")}
    base, a, b = _hydrated(protocolIP="172.31.8.2/32")
    assert errors(base + [a, b]) == {("Switch", "ds3000-03", "switch.pip-in-subnet")}
    moved = FabricConfig(protocol_subnet="172.31.8.0/22")
    assert ("Switch", "ds3000-03", "switch.pip-in-subnet") not in errors(base + [a, b], moved)
