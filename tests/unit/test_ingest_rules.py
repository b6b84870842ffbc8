"""Hedgehog rules a network engineer expects, and the planner's bookkeeping rules."""

from __future__ import annotations

import pytest

from fgd_core.errors import FGDErrorCodes, UnsupportedResourceError, ValidationError
from fgd_core.ingestion import IngestionRules, git_blob_id, plan_sync, validate_resource
from fgd_core.ingestion.yaml_safe import load_documents

VPC = """apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: vpc-1
spec:
  subnets:
    default:
      subnet: {subnet}
      gateway: {gateway}
      vlan: {vlan}
      dhcp:
        enable: true
        range:
          start: {start}
          end: {end}
"""
OK = dict(subnet="10.0.1.0/24", gateway="10.0.1.1", vlan=1001, start="10.0.1.10", end="10.0.1.99")


def vpc(**kw: object) -> dict:
    [doc] = load_documents(VPC.format(**{**OK, **kw}).encode())
    return doc.data


def issues(doc: dict, **kw: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        validate_resource(doc, **kw)  # type: ignore[arg-type]
    assert info.value.code == FGDErrorCodes.VALIDATION_FAILED
    return [(i["field"], i["message"]) for i in info.value.details["issues"]]


def test_valid_vpc() -> None:
    res = validate_resource(vpc())
    assert (res.info.directory, res.name, res.namespace) == ("vpcs", "vpc-1", "default")


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        ({"subnet": "10.0.1.0/33"}, "spec.subnets.default.subnet", "not a prefix"),
        ({"subnet": "banana"}, "spec.subnets.default.subnet", "not a prefix"),
        ({"subnet": "10.0.1.0/31"}, "spec.subnets.default.subnet", "/30 or shorter"),
        ({"gateway": "10.0.2.1"}, "spec.subnets.default.gateway", "outside"),
        ({"gateway": "10.0.1.300"}, "spec.subnets.default.gateway", "not an IP address"),
        ({"vlan": 0}, "spec.subnets.default.vlan", "needs a vlan unless hostBGP"),
        ({"vlan": 4095}, "spec.subnets.default.vlan", "outside 1-4094"),
        ({"vlan": '"1001"'}, "spec.subnets.default.vlan", "integer"),
        ({"start": "10.0.2.10"}, "spec.subnets.default.dhcp.range.start", "outside"),
        ({"end": "10.0.2.99"}, "spec.subnets.default.dhcp.range.end", "outside"),
        ({"start": "10.0.1.99", "end": "10.0.1.10"}, "spec.subnets.default.dhcp.range", "before"),
        ({"start": "10.0.1.10", "end": "10.0.1.10"}, "spec.subnets.default.dhcp.range", "before"),
        ({"start": "10.0.1.1"}, "spec.subnets.default.dhcp.range.start", "gateway"),
    ],
)
def test_vpc_subnet_rules(override: dict, field: str, words: str) -> None:
    found = issues(vpc(**override))
    assert any(f == field and words in m for f, m in found), found


@pytest.mark.parametrize(
    "override",
    [
        {"subnet": "10.0.1.5/24"},  # host bits: Hedgehog parses prefixes as netip does
        {"gateway": "10.0.1.0"},  # the network address is a valid gateway in Hedgehog
        {"gateway": "10.0.1.255"},
    ],
)
def test_vpc_subnet_values_hedgehog_accepts(override: dict) -> None:
    validate_resource(vpc(**override))


def test_vpc_subnet_overlap_vlan_reuse_and_permit() -> None:
    doc = vpc()
    doc["spec"]["subnets"]["other"] = {"subnet": "10.0.1.128/25", "vlan": 1001}
    doc["spec"]["permit"] = [["default", "missing"]]
    found = dict(issues(doc))
    assert "overlaps" in found["spec.subnets.other.subnet"]
    assert "used by subnets default and other" in found["spec.subnets.other.vlan"]
    assert "unknown subnet" in found["spec.permit[0][1]"]


def test_error_lines_point_at_the_field() -> None:
    content = VPC.format(**{**OK, "gateway": "10.9.9.9"}).encode()
    plan = plan_sync({"gitops/raw/v.yaml": content}, {}, [], {}, "s")
    [err] = plan.files[0].errors
    assert (err.index, err.line, err.code) == (0, 9, FGDErrorCodes.VALIDATION_FAILED)
    assert err.field == "spec.subnets.default.gateway"


CONN = """apiVersion: wiring.githedgehog.com/v1beta1
kind: Connection
metadata:
  name: server-1--unbundled--leaf-1
spec:
{body}"""
UNBUNDLED = """  unbundled:
    link:
      server: {port: server-1/enp2s1}
      switch: {port: leaf-1/E1/1}
"""


def conn(body: str) -> dict:
    return load_documents(CONN.format(body=body).encode())[0].data


def test_connection_exactly_one_type() -> None:
    assert validate_resource(conn(UNBUNDLED)).info.directory == "connections"
    two = UNBUNDLED + "  bundled:\n    links: []\n"
    assert "found: unbundled, bundled" in issues(conn(two))[0][1]
    none = "  somethingNew: {}\n"
    assert "found: none" in issues(conn(none))[0][1]


def test_connection_port_format() -> None:
    bad = UNBUNDLED.replace("leaf-1/E1/1", "E1-1")
    [(field, msg)] = issues(conn(bad))
    assert field == "spec.unbundled.link.switch.port" and "<device>/<port>" in msg


SWITCH = """apiVersion: wiring.githedgehog.com/v1beta1
kind: Switch
metadata:
  name: leaf-1
spec:
  role: {role}
  profile: vs
"""


@pytest.mark.parametrize(
    "role", ["spine", "server-leaf", "border-leaf", "mixed-leaf", "virtual-edge"]
)
def test_switch_roles(role: str) -> None:
    validate_resource(load_documents(SWITCH.format(role=role).encode())[0].data)


def test_switch_bad_role() -> None:
    doc = load_documents(SWITCH.format(role="leaf").encode())[0].data
    assert issues(doc)[0][0] == "spec.role"


@pytest.mark.parametrize(
    "name", ["vpc-1", "a", "a.b-c", "0", "leaf-01--mclag-domain--leaf-02", "x" * 250]
)
def test_valid_names(name: str) -> None:
    doc = load_documents(SWITCH.format(role="spine").encode())[0].data  # no length rule
    doc["metadata"]["name"] = name
    assert validate_resource(doc).name == name


@pytest.mark.parametrize(
    "name", ["", "-a", "a-", "A", "a_b", "a/b", "..", ".a", "a..b", "a b", "x" * 251, 5, None]
)
def test_invalid_names(name: object) -> None:
    doc = vpc()
    doc["metadata"]["name"] = name
    assert issues(doc)[0][0] == "metadata.name"


def test_namespaces() -> None:
    for ns in (None, "", "default"):
        doc = vpc()
        doc["metadata"]["namespace"] = ns
        assert validate_resource(doc).namespace == "default"
    doc = vpc()
    doc["metadata"]["namespace"] = "tenant-a"
    assert issues(doc)[0][0] == "metadata.namespace"
    assert validate_resource(doc, enforce_namespaces=False).namespace == "tenant-a"
    doc["metadata"]["namespace"] = "Bad_NS"
    assert issues(doc, enforce_namespaces=False)[0][0] == "metadata.namespace"


def test_require_labels() -> None:
    doc = vpc()
    validate_resource(doc)
    assert issues(doc, require_labels=True)[0][0] == "metadata.labels"
    doc["metadata"]["labels"] = {"team": "netops"}
    validate_resource(doc, require_labels=True)
    doc["metadata"]["labels"] = {"team": 5}
    assert issues(doc)[0][0] == "metadata.labels.team"
    plan = plan_sync(
        {"gitops/raw/v.yaml": VPC.format(**OK).encode()},
        {},
        [],
        {},
        "s",
        IngestionRules(require_labels=True),
    )
    assert plan.files[0].status == "failed" and plan.writes == ()


def test_unsupported_kind_and_api_version() -> None:
    doc = vpc()
    doc["apiVersion"] = "wiring.githedgehog.com/v1beta1"
    with pytest.raises(UnsupportedResourceError):
        validate_resource(doc)
    doc = vpc()
    doc["kind"] = "Deployment"
    with pytest.raises(UnsupportedResourceError) as info:
        validate_resource(doc)
    assert info.value.code == FGDErrorCodes.UNSUPPORTED_RESOURCE


def test_unknown_top_level_key_and_extra_spec_fields() -> None:
    doc = vpc()
    doc["specs"] = {}
    assert issues(doc)[0][0] == "specs"
    doc = vpc()
    doc["spec"]["someFutureField"] = {"x": 1}
    doc["spec"]["subnets"]["default"]["alsoNew"] = True
    assert validate_resource(doc).normalized["spec"]["someFutureField"] == {"x": 1}


def test_normalized_drops_status_and_server_metadata() -> None:
    doc = vpc()
    doc["status"] = {"ready": True}
    doc["metadata"]["uid"] = "abc"
    res = validate_resource(doc)
    assert list(res.normalized) == ["apiVersion", "kind", "metadata", "spec"]
    assert res.normalized["metadata"] == {"name": "vpc-1", "namespace": "default"}
    assert len(res.warnings) == 2


def test_max_documents_boundary() -> None:
    rules = IngestionRules(max_documents_per_file=2)
    two = VPC.format(**OK) + "---\n" + VPC.format(**OK).replace("name: vpc-1", "name: vpc-2")
    plan = plan_sync({"gitops/raw/v.yaml": two.encode()}, {}, [], {}, "s", rules)
    assert plan.files[0].status == "processed" and len(plan.writes) == 2
    empty_docs = "---\n# nothing\n" * 10 + two  # empty documents do not count
    plan = plan_sync({"gitops/raw/v.yaml": empty_docs.encode()}, {}, [], {}, "s", rules)
    assert plan.files[0].status == "processed"


def test_archive_naming_never_overwrites() -> None:
    raw = {"gitops/raw/x.yaml": VPC.format(**OK).encode()}
    assert plan_sync(raw, {}, [], {}, "s").archives[0].archived_path == "gitops/raw/x.yaml.archived"
    existing = ["gitops/raw/x.yaml.archived", "gitops/raw/x.yaml.1.archived"]
    plan = plan_sync(raw, {}, existing, {}, "s")
    assert plan.archives[0].archived_path == "gitops/raw/x.yaml.2.archived"
    assert plan.files[0].archived_to == "gitops/raw/x.yaml.2.archived"


def test_unchanged_failed_file_is_skipped_and_changed_one_retried() -> None:
    bad = VPC.format(**{**OK, "vlan": 9999}).encode()
    first = plan_sync({"gitops/raw/x.yaml": bad}, {}, [], {}, "s1")
    assert first.files[0].status == "failed"
    record = dict(first.failures_to_record)
    assert record == {"gitops/raw/x.yaml": git_blob_id(bad)}
    second = plan_sync({"gitops/raw/x.yaml": bad}, {}, [], record, "s2")
    f = second.files[0]
    assert f.status == "skipped" and f.errors == () and "unchanged" in f.warnings[0]
    assert second.writes == () and second.archives == () and second.failures_to_record == {}
    fixed = VPC.format(**OK).encode()
    third = plan_sync({"gitops/raw/x.yaml": fixed}, {}, [], record, "s3")
    assert third.files[0].status == "processed"


def test_unsupported_extension_is_skipped_with_warning() -> None:
    plan = plan_sync({"gitops/raw/README.md": b"# hi\n", "gitops/raw/x.yml": b""}, {}, [], {}, "s")
    readme = plan.file("gitops/raw/README.md")
    assert readme.status == "skipped" and readme.warnings and readme.errors == ()
    assert plan.file("gitops/raw/x.yml").status == "processed"
    assert [a.raw_path for a in plan.archives] == ["gitops/raw/x.yml"]


def test_update_and_provenance() -> None:
    raw = {"gitops/raw/x.yaml": VPC.format(**OK).encode()}
    managed = {"gitops/managed/vpcs/vpc-1.yaml": b"old\n"}
    plan = plan_sync(raw, managed, list(managed), {}, "sync-9")
    [w] = plan.writes
    assert w.action == "update" and w.path == "gitops/managed/vpcs/vpc-1.yaml"
    [p] = plan.provenance
    assert (p.managed_path, p.raw_path, p.document_index, p.sync_id) == (
        "gitops/managed/vpcs/vpc-1.yaml",
        "gitops/raw/x.yaml",
        0,
        "sync-9",
    )
    assert plan.to_dict()["summary"]["files_updated"] == 1


def test_custom_gitops_dir() -> None:
    rules = IngestionRules(gitops_dir="fabric/site-a")
    raw = {"fabric/site-a/raw/x.yaml": VPC.format(**OK).encode()}
    plan = plan_sync(raw, {}, [], {}, "s", rules)
    assert plan.writes[0].path == "fabric/site-a/managed/vpcs/vpc-1.yaml"
    assert plan_sync({"gitops/raw/x.yaml": b""}, {}, [], {}, "s", rules).files[0].status == "failed"
