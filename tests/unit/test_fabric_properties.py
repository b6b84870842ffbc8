"""Properties of the fabric-wide rules (hypothesis), on the real lab-ci wiring plus
generated VPCs attached to its server connections:

1. The generated fabric is valid, and stays valid under every change Hedgehog allows:
   renaming a VPC consistently (its attachments follow), adding a VPC whose subnet and
   VLAN are free, moving a subnet to a free prefix, reordering the documents.
2. A change into a rule's forbidden zone is caught with that rule's error: an overlapping
   subnet, a reused VLAN, an attachment to a connection that does not exist, a switch
   port used by a second connection.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fgd_core.ingestion.hedgehog.fabric_check import check_fabric
from tests.unit.test_fabric_rules import WIRING, Doc, attachment, obj, vpc

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVER_CONNECTIONS = [d["metadata"]["name"] for d in WIRING if d["kind"] == "Connection"
                      and any(t in d["spec"] for t in ("unbundled", "bundled", "eslag"))]

vpc_names = st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True)


def errors(docs: list[Doc]) -> set[tuple[str, str, str]]:
    return {(o.kind, o.name, e.rule) for o, f in check_fabric([obj(d) for d in docs]).items()
            for e in f.errors}


@st.composite
def fabrics(draw: Any) -> list[Doc]:
    """The wiring plus n VPCs (subnets 10.20.<slot>.0/24, VLAN 1000 + slot), each attached
    to a server connection of the wiring."""
    n = draw(st.integers(1, 12))
    slots = draw(st.lists(st.integers(0, 250), min_size=n, max_size=n, unique=True))
    docs = list(WIRING)
    for i, slot in enumerate(slots):
        docs.append(vpc(f"vpc-{i}", f"10.20.{slot}.0/24", 1000 + slot))
        conn = SERVER_CONNECTIONS[i % len(SERVER_CONNECTIONS)]
        docs.append(attachment(f"vpc-{i}/subnet-1", conn, name=f"att-{i}"))
    return docs


def _vpcs(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] == "VPC"]


def _used_slots(docs: list[Doc]) -> set[int]:
    return {int(d["spec"]["subnets"]["subnet-1"]["subnet"].split(".")[2]) for d in _vpcs(docs)}


@SETTINGS
@given(fabrics(), st.data())
def test_changes_hedgehog_allows_keep_the_fabric_valid(docs: list[Doc], data: Any) -> None:
    assert errors(docs) == set()
    docs = [copy.deepcopy(d) for d in docs]
    change = data.draw(st.sampled_from(["rename", "add", "move", "reorder"]))
    if change == "rename":
        target = data.draw(st.sampled_from(_vpcs(docs)))
        old = target["metadata"]["name"]
        new = data.draw(vpc_names.filter(lambda n: n not in {v["metadata"]["name"]
                                                            for v in _vpcs(docs)}))
        target["metadata"]["name"] = new
        for d in docs:
            if d["kind"] == "VPCAttachment" and d["spec"]["subnet"].startswith(old + "/"):
                d["spec"]["subnet"] = new + d["spec"]["subnet"][len(old):]
    elif change in ("add", "move"):
        slot = data.draw(st.integers(0, 250).filter(lambda s: s not in _used_slots(docs)))
        if change == "add":
            docs.append(vpc("vpc-new", f"10.20.{slot}.0/24", 1000 + slot))
        else:
            target = data.draw(st.sampled_from(_vpcs(docs)))
            moved = vpc(target["metadata"]["name"], f"10.20.{slot}.0/24",
                        target["spec"]["subnets"]["subnet-1"]["vlan"])
            docs[docs.index(target)] = moved
    else:
        docs = data.draw(st.permutations(docs))
    assert errors(docs) == set(), change


@SETTINGS
@given(fabrics(), st.data())
def test_a_change_into_a_forbidden_zone_is_caught_by_its_rule(docs: list[Doc],
                                                              data: Any) -> None:
    docs = [copy.deepcopy(d) for d in docs]
    change = data.draw(st.sampled_from(["overlap", "vlan", "dangling", "port"]))
    victim = data.draw(st.sampled_from(_vpcs(docs)))
    sub = victim["spec"]["subnets"]["subnet-1"]
    free = data.draw(st.integers(0, 250).filter(lambda s: s not in _used_slots(docs)))
    if change == "overlap":
        inner = sub["subnet"].replace(".0/24", f".{data.draw(st.sampled_from([0, 128]))}/25")
        docs.append(vpc("vpc-bad", inner, 1000 + free))
        expected = ("VPC", "vpc-bad", "vpc.subnet-overlap")
    elif change == "vlan":
        docs.append(vpc("vpc-bad", f"10.20.{free}.0/24", sub["vlan"]))
        expected = ("VPC", "vpc-bad", "vpc.vlan-unique")
    elif change == "dangling":
        missing = data.draw(vpc_names.map(lambda n: f"{n}--unbundled--nowhere"))
        docs.append(attachment(f"{victim['metadata']['name']}/subnet-1", missing, name="att-bad"))
        expected = ("VPCAttachment", "att-bad", "vpcattachment.connection-exists")
    else:
        taken = data.draw(st.sampled_from([d for d in WIRING if d["kind"] == "Connection"
                                           and "unbundled" in d["spec"]]))
        port = taken["spec"]["unbundled"]["link"]["switch"]["port"]
        twin = copy.deepcopy(taken)
        twin["metadata"]["name"] = "server-x--unbundled--twin"
        twin["spec"]["unbundled"]["link"]["server"]["port"] = "server-1/enp9s9"
        twin["spec"]["unbundled"]["link"]["switch"]["port"] = port
        docs.append(twin)
        expected = ("Connection", "server-x--unbundled--twin", "connection.port-unique")
    assert expected in errors(docs)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12)
    | st.sampled_from(["10.20.0.0/16", "1.2.3.4/31", "leaf/E1/1", "default", "a/b/c/d"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["subnets", "subnet", "vlan", "links", "link", "switch",
                                       "server", "port", "ip", "ranges", "from", "to",
                                       "unbundled", "fabric", "eslag", "permit", "vpc", "name",
                                       "connection", "profile", "groups", "portBreakouts",
                                       "vlanNamespaces", "ipv4Namespace", "static", "asn",
                                       "redundancy", "group", "type", "dhcp", "relayVPC"]),
                      inner, max_size=5),
    max_leaves=25,
)
KIND_NAMES = ["VPC", "VPCAttachment", "VPCPeering", "External", "ExternalAttachment",
              "ExternalPeering", "IPv4Namespace", "Connection", "Server", "Switch",
              "SwitchGroup", "VLANNamespace", "SwitchProfile", "ServerProfile"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KIND_NAMES), st.sampled_from(["a", "b", "default"]),
                          json_values), max_size=8))
def test_hostile_specs_never_break_the_checks(objects: list[tuple[str, str, Any]]) -> None:
    """A hand-edited managed/ file reaches the fabric checks without the per-document
    rules: whatever its spec holds, the checks report findings, never raise."""
    from fgd_core.ingestion.hedgehog.fabric_index import FabricObject, object_facts

    fabric = [FabricObject(kind, name, "default", object_facts(kind, spec), "m", 0, 1)
              for kind, name, spec in objects]
    wiring = [obj(d) for d in WIRING]
    check_fabric(fabric)
    check_fabric(wiring + fabric)
