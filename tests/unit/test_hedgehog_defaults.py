"""Hedgehog's Default() (what the rules see), the fabric config the rules run under
(fgd.hedgehog in fgd_config.yaml), and how a rule's error reaches the planner's report."""

from __future__ import annotations

from typing import Any

import pytest

from fgd_core.config import parse_config
from fgd_core.errors import ConfigurationError
from fgd_core.ingestion import IngestionRules, plan_sync
from fgd_core.ingestion.hedgehog.defaults import apply_defaults
from fgd_core.ingestion.hedgehog.fabric_config import DEFAULT_FABRIC_CONFIG
from fgd_core.ingestion.yaml_safe import dump_document
from tests.hedgehog_samples import mutate, sample, verdict

VPC = "demogitops_env-1_demo.yaml#VPC/demo-vpc-3"


def test_vpc_defaults_are_hedgehogs() -> None:
    spec = sample(VPC)["spec"]
    spec["subnets"]["subnet-2"]["dhcp"]["options"] = {"dnsServers": ["10.0.0.2", "10.0.0.1"]}
    spec["subnets"]["subnet-2"]["dhcp"]["static"] = {"0C-20-12-FE-01-01": {"ip": "10.10.132.9"}}
    out = apply_defaults("VPC", spec)
    assert (out["ipv4Namespace"], out["vlanNamespace"]) == ("default", "default")
    sub2 = out["subnets"]["subnet-2"]
    assert sub2["gateway"] == "10.10.132.1"  # the first address
    assert sub2["dhcp"]["range"] == {"start": "10.10.132.2", "end": "10.10.132.254"}
    options = sub2["dhcp"]["options"]
    assert (options["interfaceMTU"], options["leaseTimeSeconds"]) == (9036, 3600)
    assert options["dnsServers"] == ["10.0.0.1", "10.0.0.2"]  # sorted
    assert list(sub2["dhcp"]["static"]) == ["0c:20:12:fe:01:01"]  # MAC normalized
    # what the user wrote is kept
    assert "gateway" not in spec["subnets"]["subnet-2"]
    assert out["subnets"]["subnet-1"]["dhcp"]["range"]["start"] == "10.10.131.10"


def test_dhcp_disabled_clears_range_and_options() -> None:
    spec = mutate(sample(VPC), {"spec.subnets.subnet-1.dhcp.enable": False})["spec"]
    dhcp = apply_defaults("VPC", spec)["subnets"]["subnet-1"]["dhcp"]
    assert "range" not in dhcp and "options" not in dhcp
    assert spec["subnets"]["subnet-1"]["dhcp"]["range"]  # the input keeps it


def test_hostbgp_subnet_gets_no_gateway() -> None:
    spec = {"subnets": {"s": {"subnet": "10.1.0.0/24", "hostBGP": True}}}
    assert "gateway" not in apply_defaults("VPC", spec)["subnets"]["s"]


@pytest.mark.parametrize(
    ("kind", "spec", "expected"),
    [
        ("VPCAttachment", {"subnet": "vpc-1"}, {"subnet": "vpc-1/default"}),
        ("VPCAttachment", {"subnet": "vpc-1/s"}, {"subnet": "vpc-1/s"}),
        ("VPCAttachment", {"subnet": "/s"}, {"subnet": "/s"}),
        ("External", {}, {"ipv4Namespace": "default"}),
        (
            "VLANNamespace",
            {"ranges": [{"from": 20}, {"from": 5, "to": 9}]},
            {"ranges": [{"from": 5, "to": 9}, {"from": 20, "to": 20}]},
        ),
        (
            "IPv4Namespace",
            {"subnets": ["10.2.0.0/16", "10.1.0.0/16"]},
            {"subnets": ["10.1.0.0/16", "10.2.0.0/16"]},
        ),
        (
            "Switch",
            {
                "redundancy": {"group": "g2"},
                "groups": ["g1"],
                "portSpeeds": {"E1/1": "SPEED_25G"},
                "linkFlapErrDisable": {},
            },
            {
                "redundancy": {"group": "g2"},
                "groups": ["g1", "g2"],
                "vlanNamespaces": ["default"],
                "portSpeeds": {"E1/1": "25G"},
                "linkFlapErrDisable": {
                    "flapThreshold": 3,
                    "samplingInterval": 30,
                    "recoveryInterval": 300,
                },
            },
        ),
        ("Server", {"description": "x"}, {"description": "x"}),
    ],
)
def test_defaults_per_kind(kind: str, spec: dict[str, Any], expected: dict[str, Any]) -> None:
    assert apply_defaults(kind, spec) == expected


def test_invalid_vlan_ranges_are_kept_not_wiped() -> None:
    # Hedgehog's Default() empties an invalid range list (the ranges are lost and the object
    # passes); FGD keeps them so the error is reported (docs/decisions.md).
    spec = {"ranges": [{"from": 30, "to": 20}]}
    assert apply_defaults("VLANNamespace", spec) == spec
    doc = mutate(sample("labci_env-ci-1_wiring.yaml#VLANNamespace/default"), {"spec": spec})
    assert verdict(doc) == ["vlanns.range-order"]


def test_defaults_survive_malformed_specs() -> None:
    for kind in (
        "VPC",
        "VPCAttachment",
        "External",
        "ExternalPeering",
        "VLANNamespace",
        "IPv4Namespace",
        "Switch",
    ):
        for spec in (
            {"subnets": 5},
            {"subnets": {"a": None}},
            {"ranges": [None, 3]},
            {"permit": []},
            {"subnet": 7},
            {"redundancy": "x", "groups": 3},
        ):
            apply_defaults(kind, spec)  # never raises; the schema check reports the types


# ----------------------------------------------------------------------- fabric config


def test_fabric_config_defaults_and_overrides() -> None:
    assert parse_config({}).hedgehog.fabric_config() == DEFAULT_FABRIC_CONFIG
    cfg = parse_config(
        {
            "fgd": {
                "hedgehog": {
                    "reserved_subnets": ["10.10.0.0/16"],
                    "fabric_mtu": 9216,
                    "vpc_irb_vlans": [{"from": 100, "to": 199}],
                    "vpc_peering_disabled": True,
                }
            }
        }
    ).hedgehog.fabric_config()
    assert cfg.reserved_subnets == ("10.10.0.0/16",)
    assert cfg.vpc_irb_vlans == ((100, 199),)
    assert cfg.max_server_mtu == 9216 - 64


@pytest.mark.parametrize(
    "block",
    [
        {"reserved_subnet": ["10.0.0.0/8"]},  # unknown key
        {"reserved_subnets": ["banana"]},
        {"reserved_subnets": []},
        {"vpc_irb_vlans": [{"from": 200, "to": 100}]},
        {"vpc_irb_vlans": [{"from": 0, "to": 100}]},
        {"vpc_irb_vlans": [{"from_": 10, "to": 100}]},  # the key is "from", as in Hedgehog
        {"fabric_mtu": "9100"},
        {"fabric_mtu": 100, "server_facing_mtu_offset": 100},
    ],
)
def test_fabric_config_refuses_what_it_cannot_use(block: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_config({"fgd": {"hedgehog": block}})
    assert info.value.details["key"].startswith("fgd.hedgehog")


def test_the_fabric_config_changes_verdicts() -> None:
    doc = sample(VPC)  # 10.10.131.0/24 and 10.10.132.0/24
    assert verdict(doc) == []
    cfg = parse_config({"fgd": {"hedgehog": {"reserved_subnets": ["10.10.0.0/16"]}}})
    fabric = cfg.hedgehog.fabric_config()
    assert set(verdict(doc, fabric=fabric)) == {"vpc.subnet.reserved"}
    peering = sample("demogitops_env-1_demo.yaml#VPCPeering/demo-vpc-1--demo-vpc-2")
    off = parse_config({"fgd": {"hedgehog": {"vpc_peering_disabled": True}}})
    assert verdict(peering, fabric=off.hedgehog.fabric_config()) == ["vpcpeering.disabled"]


# ---------------------------------------------------------------- errors in the planner


def test_planner_reports_document_line_field_and_rule() -> None:
    good = sample(VPC)
    bad = mutate(sample(VPC), {"metadata.name": "other"}, ["spec.subnets.subnet-2.vlan"])
    raw = dump_document(good) + b"---\n" + dump_document(bad)
    plan = plan_sync({"gitops/raw/v.yaml": raw}, {}, [], {}, "s", IngestionRules())
    [err] = plan.files[0].errors
    assert (err.index, err.field, err.rule) == (
        1,
        "spec.subnets.subnet-2.vlan",
        "vpc.subnet.vlan-required",
    )
    assert err.message == "a subnet needs a vlan unless hostBGP is set"
    line = raw.decode().splitlines()[err.line - 1]
    assert "10.10.132.0/24" in line  # the vlan is missing: the line of its subnet
    assert err.to_dict()["rule"] == "vpc.subnet.vlan-required"


def test_list_indexes_in_errors_are_the_users_not_hedgehogs_sorted_ones() -> None:
    doc = sample("labci_env-ci-1_wiring.yaml#IPv4Namespace/default")
    doc["spec"]["subnets"] = ["10.9.0.0/16", "banana", "10.1.0.0/16"]
    plan = plan_sync({"gitops/raw/n.yaml": dump_document(doc)}, {}, [], {}, "s")
    [err] = plan.files[0].errors
    assert (err.field, err.rule) == ("spec.subnets[1]", "ipv4ns.subnet-invalid")


def test_mclag_is_accepted_with_hedgehogs_warning() -> None:
    doc = sample("hnp_vlab_prepop_wiring.yaml#Connection/server-01--mclag--leaf-01--leaf-02")
    plan = plan_sync({"gitops/raw/c.yaml": dump_document(doc)}, {}, [], {}, "s")
    assert plan.files[0].status == "processed"
    assert any("MCLAG is deprecated" in w for w in plan.files[0].warnings)
