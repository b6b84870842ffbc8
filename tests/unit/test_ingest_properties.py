"""Properties of the planner over generated Hedgehog documents (hypothesis).

1. A valid resource survives raw → plan → managed file → safe loader unchanged.
2. Mixed with broken documents over several raw files, no document is ever lost: each one
   lands in a managed write or is reported as an error of its file, and a file is archived
   only when all of its documents landed.
3. Planning again on top of the first plan's writes changes nothing.
4. The planner looks up only the managed paths it writes (a lazy tree view stays lazy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fgd_core.errors import FGDErrorCodes
from fgd_core.ingestion import IngestionRules, plan_sync
from fgd_core.ingestion.kinds import KINDS, VPC_API_VERSION, WIRING_API_VERSION, managed_path
from fgd_core.ingestion.plan import SyncPlan
from fgd_core.ingestion.yaml_safe import load_documents

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = IngestionRules(max_documents_per_file=1000)

# ------------------------------------------------------------------------- strategies

names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,12}[a-z0-9])?", fullmatch=True)
# VPC, IPv4Namespace and External names are at most 11 characters in Hedgehog: 5 here, so
# that uniquely_named's ".r<i>" suffix still fits.
short_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,3}[a-z0-9])?", fullmatch=True)
SHORT_NAMED = ("VPC", "IPv4Namespace")
label_keys = st.builds(
    lambda prefix, name: prefix + name,
    st.sampled_from(["", "fabric.githedgehog.com/", "example.io/"]),
    st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?", fullmatch=True),
)
label_values = st.one_of(
    st.just(""), st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?", fullmatch=True)
)
labels = st.dictionaries(label_keys, label_values, max_size=3)
# Free text as an engineer writes it, including YAML 1.1 look-alikes ("12:30", "yes", "0x1f").
free_text = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=24),
    st.sampled_from(["12:30", "yes", "no", "on", "0x1f", "1e3", "2024-01-01", "~", "null", "="]),
)
macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda b: ":".join(f"{x:02x}" for x in b)
)
iface_ips = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 31)).map(
    lambda t: f"172.{t[0]}.{t[1]}.{t[2] * 2}/31"
)


@st.composite
def vpc_specs(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    octets = draw(st.lists(st.integers(0, 255), min_size=count, max_size=count, unique=True))
    vlans = draw(st.lists(st.integers(1, 4094), min_size=count, max_size=count, unique=True))
    sub_names = draw(st.lists(names, min_size=count, max_size=count, unique=True))
    a = draw(st.integers(0, 255))
    subnets: dict[str, Any] = {}
    for octet, vlan, sub_name in zip(octets, vlans, sub_names, strict=True):
        net = ipaddress.IPv4Network(f"10.{a}.{octet}.0/24")
        # Hedgehog: a vlan unless hostBGP; the DHCP range inside the subnet, start before
        # end, neither of them the gateway (by default the first address).
        sub: dict[str, Any] = {"subnet": str(net), "vlan": vlan}
        gateway = 1
        if draw(st.booleans()):
            gateway = draw(st.integers(3, 253))  # clear of the default DHCP range ends
            sub["gateway"] = str(net.network_address + gateway)
        if draw(st.booleans()):
            offsets = st.integers(1, 254).filter(lambda o, g=gateway: o != g)
            lo, hi = sorted(draw(st.lists(offsets, min_size=2, max_size=2, unique=True)))
            dhcp: dict[str, Any] = {"enable": draw(st.booleans())}
            if draw(st.booleans()):
                dhcp["range"] = {
                    "start": str(net.network_address + lo),
                    "end": str(net.network_address + hi),
                }
            sub["dhcp"] = dhcp
        if draw(st.booleans()):
            sub["isolated"] = draw(st.booleans())
        subnets[sub_name] = sub
    spec: dict[str, Any] = {"subnets": subnets}
    if draw(st.booleans()):
        spec["ipv4Namespace"] = "default"
        spec["vlanNamespace"] = "default"
    if count > 1 and draw(st.booleans()):
        spec["permit"] = [sub_names[:2]]
    return spec


def port(device: str, name: str) -> dict[str, str]:
    return {"port": f"{device}/{name}"}


@st.composite
def connection_specs(draw: st.DrawFn) -> dict[str, Any]:
    server, sw1, sw2 = draw(st.lists(names, min_size=3, max_size=3, unique=True))
    kind = draw(st.sampled_from(["unbundled", "bundled", "mclag", "eslag", "fabric", "mesh"]))
    if kind == "unbundled":
        return {kind: {"link": {"server": port(server, "enp2s1"), "switch": port(sw1, "E1/1")}}}
    if kind in ("bundled", "mclag", "eslag"):
        n = draw(st.integers(1 if kind == "bundled" else 2, 4))  # LAGs: two links at least
        links = [
            {
                "server": port(server, f"enp2s{i + 1}"),
                "switch": port(sw1 if kind == "bundled" or i % 2 == 0 else sw2, f"E1/{i + 1}"),
            }
            for i in range(n)
        ]
        return {kind: {"links": links}}
    left, right = ("spine", "leaf") if kind == "fabric" else ("leaf1", "leaf2")
    links = [
        {
            left: {**port(sw1, f"E1/{i + 1}"), "ip": draw(iface_ips)},
            right: {**port(sw2, f"E1/{i + 1}"), "ip": draw(iface_ips)},
        }
        for i in range(draw(st.integers(1, 3)))
    ]
    return {kind: {"links": links}}


@st.composite
def switch_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "role": draw(st.sampled_from(["spine", "server-leaf", "border-leaf", "mixed-leaf"])),
        "profile": draw(st.sampled_from(["vs", "dell-s5248f-on", "celestica-ds3000"])),
    }
    if draw(st.booleans()):
        spec["boot"] = {"mac": draw(macs)}
    if draw(st.booleans()):
        spec["redundancy"] = {
            "group": draw(names),
            "type": draw(st.sampled_from(["mclag", "eslag"])),
        }
        spec["groups"] = [spec["redundancy"]["group"]]
    if draw(st.booleans()):
        spec["asn"] = draw(st.integers(1, 4294967295))
    if draw(st.booleans()):
        spec["description"] = draw(free_text)
    if draw(st.booleans()):
        spec["ecmp"] = {}
    return spec


@st.composite
def ipv4_namespace_specs(draw: st.DrawFn) -> dict[str, Any]:
    octets = draw(st.lists(st.integers(0, 255), min_size=1, max_size=4, unique=True))
    return {"subnets": [f"10.{o}.0.0/16" for o in octets]}


@st.composite
def vlan_namespace_specs(draw: st.DrawFn) -> dict[str, Any]:
    # Below 3000: the fabric keeps 3000-3999 for itself (VPC IRB, TH5 workaround).
    bounds = sorted(draw(st.lists(st.integers(1, 2999), min_size=2, max_size=6, unique=True)))
    pairs = [bounds[i : i + 2] for i in range(0, len(bounds) - 1, 2)]
    return {"ranges": [{"from": lo, "to": hi} for lo, hi in pairs]}


@st.composite
def attachment_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = {"connection": draw(names), "subnet": f"{draw(names)}/{draw(names)}"}
    if draw(st.booleans()):
        spec["nativeVLAN"] = draw(st.booleans())
    return spec


SPECS: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "VPC": (VPC_API_VERSION, vpc_specs()),
    "VPCAttachment": (VPC_API_VERSION, attachment_specs()),
    "IPv4Namespace": (VPC_API_VERSION, ipv4_namespace_specs()),
    "Connection": (WIRING_API_VERSION, connection_specs()),
    "Switch": (WIRING_API_VERSION, switch_specs()),
    "Server": (
        WIRING_API_VERSION,
        st.one_of(st.none(), st.fixed_dictionaries({}, optional={"description": free_text})),
    ),
    "VLANNamespace": (WIRING_API_VERSION, vlan_namespace_specs()),
}


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(SPECS)))
    api_version, spec_strategy = SPECS[kind]
    metadata: dict[str, Any] = {"name": draw(short_names if kind in SHORT_NAMED else names)}
    namespace = draw(st.sampled_from([None, "", "default"]))
    if namespace is not None:
        metadata["namespace"] = namespace
    meta_labels = draw(labels)
    if meta_labels:
        metadata["labels"] = meta_labels
    doc: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    spec = draw(spec_strategy)
    if spec is not None:
        doc["spec"] = spec
    return doc


def uniquely_named(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Distinct names, so only the duplicates a test adds on purpose conflict."""
    for i, doc in enumerate(docs):
        doc["metadata"]["name"] = f"{doc['metadata']['name']}.r{i}"
    return docs


dump_styles = st.sampled_from([False, None, True])  # block, mixed, flow


def to_yaml(doc: dict[str, Any], flow: bool | None) -> str:
    return yaml.dump(doc, Dumper=yaml.SafeDumper, default_flow_style=flow, allow_unicode=True)


def path_of(doc: dict[str, Any]) -> str:
    return managed_path(RULES.gitops_dir, KINDS[doc["kind"]], doc["metadata"]["name"])


def assert_managed_equals_input(content: bytes, doc: dict[str, Any]) -> None:
    [loaded] = load_documents(content)
    out = loaded.data
    assert out["apiVersion"] == doc["apiVersion"]
    assert out["kind"] == doc["kind"]
    assert out["metadata"]["name"] == doc["metadata"]["name"]
    assert out["metadata"]["namespace"] == (doc["metadata"].get("namespace") or "default")
    assert out["metadata"].get("labels") == (doc["metadata"].get("labels") or None)
    assert out.get("spec") == doc.get("spec")


# --------------------------------------------------------------------------- round trip


@SETTINGS
@given(st.lists(resources(), min_size=1, max_size=12).map(uniquely_named), dump_styles)
def test_valid_resources_round_trip(docs: list[dict[str, Any]], flow: bool | None) -> None:
    raw = "---\n".join(to_yaml(d, flow) for d in docs).encode()
    plan = plan_sync({"gitops/raw/gen.yaml": raw}, {}, [], {}, "s", RULES)

    result = plan.file("gitops/raw/gen.yaml")
    assert result.status == "processed", [e.to_dict() for e in result.errors]
    assert result.documents_found == result.documents_extracted == len(docs)
    writes = {w.path: w for w in plan.writes}
    assert len(writes) == len(docs)
    for doc in docs:
        write = writes[path_of(doc)]
        assert write.action == "create"
        assert (write.kind, write.name) == (doc["kind"], doc["metadata"]["name"])
        assert_managed_equals_input(write.content, doc)


# ----------------------------------------------------------------------- nothing is lost

BROKEN_KINDS = ("bad_yaml", "unknown_kind", "bad_cidr", "duplicate")


@st.composite
def raw_trees(draw: st.DrawFn) -> tuple[dict[str, bytes], list[list[tuple[str, Any]]]]:
    """Raw files of valid and broken documents; per file, (what, doc) per document."""
    valid = uniquely_named(draw(st.lists(resources(), min_size=1, max_size=16)))
    n_files = draw(st.integers(1, 4))
    files: list[list[tuple[str, Any]]] = [[] for _ in range(n_files)]
    for doc in valid:
        files[draw(st.integers(0, n_files - 1))].append(("valid", doc))
    for what in draw(st.lists(st.sampled_from(BROKEN_KINDS), max_size=4)):
        target = files[draw(st.integers(0, n_files - 1))]
        if what == "duplicate":
            doc = draw(st.sampled_from(valid))
            target.append(("duplicate", doc))
        elif what == "unknown_kind":
            target.append((what, {**draw(resources()), "kind": "Gadget"}))
        elif what == "bad_cidr":
            doc = {
                "apiVersion": VPC_API_VERSION,
                "kind": "VPC",
                "metadata": {"name": f"broken-{len(target)}"},
                "spec": {
                    "subnets": {
                        "s": {
                            "subnet": draw(
                                st.sampled_from(
                                    ["10.0.0.0/31", "10.0.0.0/33", "300.1.1.0/24", "banana"]
                                )
                            )
                        }
                    }
                },
            }
            target.append((what, doc))
        else:
            target.append((what, None))
    for entries in files:
        order = draw(st.permutations(range(len(entries))))
        entries[:] = [entries[i] for i in order]
    flow = draw(dump_styles)
    raw: dict[str, bytes] = {}
    for i, entries in enumerate(files):
        texts = [
            "apiVersion: v1\nkind: [unclosed\n" if doc is None else to_yaml(doc, flow)
            for _, doc in entries
        ]
        raw[f"gitops/raw/f{i}.yaml"] = "---\n".join(texts).encode()
    return raw, files


@SETTINGS
@given(raw_trees())
def test_no_document_is_lost(tree: tuple[dict[str, bytes], list[list[tuple[str, Any]]]]) -> None:
    raw, files = tree
    plan = plan_sync(raw, {}, [], {}, "s", RULES)
    writes = {w.path: w for w in plan.writes}
    written_from = {p.managed_path: p.raw_path for p in plan.provenance}
    archived = {a.raw_path for a in plan.archives}
    # Two definitions conflict only where both files yield documents (not bad YAML).
    defined: dict[str, int] = {}
    for entries in files:
        if all(what != "bad_yaml" for what, _ in entries):
            for what, d in entries:
                if what in ("valid", "duplicate"):
                    defined[path_of(d)] = defined.get(path_of(d), 0) + 1
    conflicting = {p for p, n in defined.items() if n > 1}

    for i, entries in enumerate(files):
        path = f"gitops/raw/f{i}.yaml"
        result = plan.file(path)
        landed = result.status == "processed"
        # Archived exactly when every document landed.
        assert (path in archived) == landed
        assert landed == (
            not result.errors and result.documents_extracted == result.documents_found
        )
        assert landed == (result.archived_to is not None)
        if not entries:
            assert landed and result.documents_found == 0
            continue
        if any(what == "bad_yaml" for what, _ in entries):
            # The file cannot be trusted as a whole: nothing is written from it.
            assert not landed
            assert FGDErrorCodes.INVALID_YAML in {e.code for e in result.errors}
            assert path not in written_from.values()
            continue
        assert result.documents_found == len(entries)
        error_indexes = {e.index for e in result.errors}
        for index, (what, doc) in enumerate(entries):
            if landed:
                assert what in ("valid", "duplicate") and path_of(doc) not in conflicting
                assert written_from[path_of(doc)] == path
                assert_managed_equals_input(writes[path_of(doc)].content, doc)
            else:
                # Reported at its own index, or (a valid one) held back with its file.
                if what not in ("valid", "duplicate") or path_of(doc) in conflicting:
                    assert index in error_indexes, (what, index, result.errors)
                if doc is not None and doc["kind"] in KINDS:
                    assert written_from.get(path_of(doc)) != path
        if not landed:
            assert path not in written_from.values()
            assert result.documents_extracted == 0


# ---------------------------------------------------------------------- re-planning


@SETTINGS
@given(st.lists(resources(), min_size=1, max_size=12).map(uniquely_named), dump_styles)
def test_replanning_on_own_writes_is_unchanged(
    docs: list[dict[str, Any]], flow: bool | None
) -> None:
    half = len(docs) // 2
    raw = {
        "gitops/raw/a.yaml": "---\n".join(to_yaml(d, flow) for d in docs[:half]).encode(),
        "gitops/raw/b.yaml": "---\n".join(to_yaml(d, flow) for d in docs[half:]).encode(),
    }
    first = plan_sync(raw, {}, [], {}, "s1", RULES)
    managed = {w.path: w.content for w in first.writes}
    second = plan_sync(raw, managed, list(raw) + list(managed), {}, "s2", RULES)
    assert second.writes and {w.action for w in second.writes} == {"unchanged"}
    assert [(w.path, w.content) for w in second.writes] == [
        (w.path, w.content) for w in first.writes
    ]


# ------------------------------------------------------------------------ lazy managed


class LookupOnly(Mapping[str, bytes]):
    """A managed tree that must never be listed; records which paths were read."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.read: list[str] = []

    def __getitem__(self, path: str) -> bytes:
        self.read.append(path)
        return self.files[path]

    def __contains__(self, path: object) -> bool:
        return path in self.files

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the planner listed the whole managed tree")

    def __len__(self) -> int:
        raise AssertionError("the planner sized the whole managed tree")


@SETTINGS
@given(st.lists(resources(), min_size=2, max_size=12).map(uniquely_named), st.data())
def test_planner_reads_only_the_managed_paths_it_writes(
    docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    first = plan_sync(
        {"gitops/raw/all.yaml": "---\n".join(to_yaml(d, False) for d in docs).encode()},
        {},
        [],
        {},
        "s1",
        RULES,
    )
    managed = {w.path: w.content for w in first.writes}
    managed |= {f"gitops/managed/vpcs/other-{i}.yaml": b"kind: VPC\n" for i in range(50)}
    some = data.draw(st.lists(st.sampled_from(docs), min_size=1, unique_by=id))
    view = LookupOnly(managed)
    raw = {"gitops/raw/some.yaml": "---\n".join(to_yaml(d, False) for d in some).encode()}
    plan = plan_sync(raw, view, list(raw), {}, "s2", RULES)
    assert isinstance(plan, SyncPlan)
    assert sorted(view.read) == sorted(w.path for w in plan.writes)
    assert {w.action for w in plan.writes} == {"unchanged"}
