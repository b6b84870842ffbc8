"""Hostile input gets its FGD code and changes nothing; property tests on arbitrary bytes."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fgd_core.errors import FGDErrorCodes, InvalidYAMLError
from fgd_core.ingestion import IngestionRules, RawFile, load_documents, plan_sync

INVALID_YAML = FGDErrorCodes.INVALID_YAML
FAILED = FGDErrorCodes.VALIDATION_FAILED

GOOD = b"""apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: good-vpc
spec:
  subnets:
    default:
      subnet: 10.0.1.0/24
      vlan: 1001
"""


def _bomb() -> bytes:
    lines = ['lol0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"lol{i}: &a{i} [{refs}]")
    head = "apiVersion: vpc.githedgehog.com/v1beta1\nkind: VPC\nmetadata: {name: x}\nspec:\n"
    return (head + "\n".join("  " + ln for ln in lines) + "\n").encode()


HOSTILE: dict[str, tuple[bytes, str, int | None]] = {
    # name: (content, expected code, expected line)
    "python-tag": (b"a: !!python/object/apply:os.system ['echo pwned']\n", INVALID_YAML, 1),
    "custom-tag": (GOOD.replace(b"kind: VPC", b"kind: !foo VPC"), INVALID_YAML, 2),
    "binary-tag": (b"a: !!binary aGVsbG8=\n", INVALID_YAML, 1),
    "billion-laughs": (_bomb(), INVALID_YAML, None),
    "recursive-alias": (b"a: &x [1, *x]\n", INVALID_YAML, 1),
    "duplicate-key": (GOOD + b"kind: Switch\n", INVALID_YAML, 10),
    "nested-duplicate-key": (
        GOOD.replace(b"      vlan: 1001\n", b"      vlan: 1001\n      vlan: 1002\n"),
        INVALID_YAML,
        10,
    ),
    "invalid-utf8": (GOOD.replace(b"good-vpc", b"good-\xff\xfe"), INVALID_YAML, 4),
    "utf16": ("kind: VPC\n".encode("utf-16"), INVALID_YAML, 1),
    "scalar-document": (b"just a string\n", INVALID_YAML, 1),
    "list-document": (b"- a\n- b\n", INVALID_YAML, 1),
    "syntax-error": (b"a: [1, 2\nb: 3\n", INVALID_YAML, None),
    "deep-nesting": (b"a: " + b"[" * 200 + b"]" * 200 + b"\n", INVALID_YAML, None),
    "control-char": (b"a: \x07\n", INVALID_YAML, None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_fails_with_code_and_writes_nothing(name: str) -> None:
    content, code, line = HOSTILE[name]
    files = {"gitops/raw/bad.yaml": content, "gitops/raw/good.yaml": GOOD}
    plan = plan_sync(files, {}, [], {}, "s")
    bad = plan.file("gitops/raw/bad.yaml")
    assert bad.status == "failed"
    assert bad.errors and bad.errors[0].code == code, bad.errors
    if line is not None:
        assert bad.errors[0].line == line
    assert bad.target_files == () and bad.archived_to is None
    assert all(p.raw_path != "gitops/raw/bad.yaml" for p in plan.provenance)
    assert [a.raw_path for a in plan.archives] == ["gitops/raw/good.yaml"]
    assert [w.path for w in plan.writes] == ["gitops/managed/vpcs/good-vpc.yaml"]


def test_billion_laughs_fails_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidYAMLError) as info:
        load_documents(_bomb())
    assert time.perf_counter() - start < 0.5
    assert "alias" in info.value.message
    assert set(info.value.details) == {"index", "line"}


def test_duplicate_key_error_names_key_and_document() -> None:
    content = GOOD + b"---\n" + GOOD.replace(b"name: good-vpc", b"name: a\n  name: b")
    with pytest.raises(InvalidYAMLError) as info:
        load_documents(content)
    assert info.value.details == {"index": 1, "line": 15}
    assert "'name'" in info.value.message


def test_merge_keys_are_not_duplicates() -> None:
    docs = load_documents(b"base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  x: 3\n")
    assert docs[0].data["thing"] == {"x": 3, "y": 2}


def test_yaml11_surprises_stay_strings() -> None:
    [doc] = load_documents(b"a: 12:30\nb: 2024-01-01\nc: =\n")
    assert doc.data == {"a": "12:30", "b": "2024-01-01", "c": "="}


def test_oversize_file() -> None:
    rules = IngestionRules(max_file_size_mb=0.001)  # 1048 bytes
    big = GOOD + b"# " + b"x" * 2000 + b"\n"
    plan = plan_sync({"gitops/raw/big.yaml": big}, {}, [], {}, "s", rules)
    f = plan.files[0]
    assert f.status == "failed" and f.errors[0].code == FAILED
    assert "max_file_size_mb" in f.errors[0].message
    assert plan.writes == () and plan.archives == ()


def test_too_many_documents() -> None:
    rules = IngestionRules(max_documents_per_file=3)
    docs = b"---\n".join(GOOD.replace(b"good-vpc", f"v{i}".encode()) for i in range(4))
    plan = plan_sync({"gitops/raw/many.yaml": docs}, {}, [], {}, "s", rules)
    f = plan.files[0]
    assert f.status == "failed" and f.errors[0].code == FAILED
    assert "max_documents_per_file" in f.errors[0].message
    assert f.errors[0].index == 3
    assert plan.writes == () and plan.archives == ()


def test_symlink_is_refused() -> None:
    plan = plan_sync(
        {"gitops/raw/link.yaml": RawFile(b"../../etc/passwd", is_symlink=True)}, {}, [], {}, "s"
    )
    f = plan.files[0]
    assert f.status == "failed" and f.errors[0].code == FAILED
    assert "symlink" in f.errors[0].message
    assert plan.writes == () and plan.archives == ()


@pytest.mark.parametrize(
    "path",
    [
        "gitops/managed/vpcs/x.yaml",
        "other/raw/x.yaml",
        "/gitops/raw/x.yaml",
        "gitops/raw/../managed/x.yaml",
        "gitops/raw/./x.yaml",
        "gitops/raw//x.yaml",
        "gitops\\raw\\x.yaml",
        "x.yaml",
    ],
)
def test_paths_outside_raw_are_errors(path: str) -> None:
    plan = plan_sync({path: GOOD}, {}, [], {}, "s")
    f = plan.files[0]
    assert f.status == "failed" and f.errors[0].code == FAILED
    assert plan.writes == () and plan.archives == ()


def test_name_cannot_escape_directory() -> None:
    for bad in (b"../../etc/x", b"a/b", b".hidden", b"UPPER", b"x" * 251):
        doc = GOOD.replace(b"good-vpc", b"'" + bad + b"'")
        plan = plan_sync({"gitops/raw/x.yaml": doc}, {}, [], {}, "s")
        f = plan.files[0]
        assert f.status == "failed", bad
        assert f.errors[0].field == "metadata.name"
        assert f.errors[0].line == 4
        assert plan.writes == ()


# -------------------------------------------------------------------- property tests

yaml_ish = st.lists(
    st.sampled_from(list("abc:-[]{}&*!|>'\"#\n \t,?0123456789.%@`~") + ["---\n", "<<", "!!"]),
    max_size=120,
).map(lambda tokens: "".join(tokens).encode())
resourceish = st.sampled_from([GOOD, b"", b"---\n", GOOD.replace(b"good-vpc", b"other")]).flatmap(
    lambda base: st.binary(max_size=40).map(lambda tail: base + tail)
)
contents = st.one_of(st.binary(max_size=300), yaml_ish, resourceish)
paths = st.one_of(
    st.sampled_from(
        [
            "gitops/raw/a.yaml",
            "gitops/raw/b.yml",
            "gitops/raw/sub/c.yaml",
            "gitops/raw/README.md",
            "gitops/raw/a.yaml.archived",
            "gitops/managed/vpcs/x.yaml",
            "../x.yaml",
        ]
    ),
    st.text(alphabet="gitops/raw.yml-_\\ ", max_size=30),
)
raw_sets = st.dictionaries(paths, contents, max_size=5)


def _check_plan(plan, raw_files) -> None:  # type: ignore[no-untyped-def]
    write_paths = [w.path for w in plan.writes]
    assert len(write_paths) == len(set(write_paths))
    for p in write_paths:
        assert p.startswith("gitops/managed/") and ".." not in p.split("/")
    for a in plan.archives:
        assert a.archived_path.startswith("gitops/raw/") and a.archived_path.endswith(".archived")
        assert a.archived_path not in raw_files
    archived = [a.archived_path for a in plan.archives]
    assert len(archived) == len(set(archived))
    for f in plan.files:
        assert all(e.code != FGDErrorCodes.INTERNAL_ERROR for e in f.errors), f.errors
        if f.status != "processed":
            assert f.target_files == () and f.archived_to is None
    assert {f.path for f in plan.files} == set(raw_files)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_files=raw_sets)
def test_planner_never_raises_and_stays_inside(raw_files: dict[str, bytes]) -> None:
    plan = plan_sync(raw_files, {}, [], {}, "s")
    _check_plan(plan, raw_files)


@settings(max_examples=100, deadline=None)
@given(raw_files=raw_sets, existing=st.lists(paths.map(lambda p: p + ".archived"), max_size=3))
def test_planning_is_deterministic(raw_files: dict[str, bytes], existing: list[str]) -> None:
    a = plan_sync(raw_files, {}, existing, {}, "s")
    b = plan_sync(dict(reversed(list(raw_files.items()))), {}, list(reversed(existing)), {}, "s")
    assert a == b
    _check_plan(a, raw_files)
