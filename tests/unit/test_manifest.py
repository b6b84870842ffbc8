"""The .hnp metadata: manifest and provenance round-trip, and "no change, no commit"."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import pytest
from dulwich.objects import Commit, ObjectID

from fgd_core.adapters.git_repo import GitRemote, Snapshot
from fgd_core.application.manifest import (
    Directories,
    LastSync,
    Manifest,
    metadata_changes,
    parse_manifest,
    parse_provenance,
    render_manifest,
    render_provenance,
    updated_provenance,
)
from fgd_core.errors import FGDErrorCodes, ValidationError
from fgd_core.ingestion.kinds import KINDS
from fgd_core.ingestion.plan import IngestionRules, plan_sync

RULES = IngestionRules()
AT = datetime(2025, 8, 2, 9, 0, tzinfo=UTC)
VPC = """\
apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: {name}
spec:
  subnets:
    default:
      subnet: {net}
      vlan: {vlan}
"""
MANIFEST_PATH = "gitops/.hnp/manifest.yaml"
PROVENANCE_PATH = "gitops/.hnp/provenance.json"


def vpc(name: str, net: str = "10.0.1.0/24") -> bytes:
    # Hedgehog wants a vlan on every subnet; one per name keeps VPCs apart.
    return VPC.format(name=name, net=net, vlan=1000 + zlib.crc32(name.encode()) % 2000).encode()


def local_snapshot(files: dict[str, bytes]) -> Snapshot:
    """A snapshot of a commit built in memory (GitRemote.commit, never pushed)."""
    remote = GitRemote("/nonexistent/never-contacted")
    store = remote._local.object_store
    empty = Snapshot("main", None, None, store)
    if not files:
        return empty
    sha = remote.commit(empty, files, "seed", "T <t@example.com>", timestamp=0)
    commit = store[ObjectID(sha.encode())]
    assert isinstance(commit, Commit)
    return Snapshot("main", sha, commit.tree.decode(), store)


def sample_manifest(**kw: object) -> Manifest:
    base = Manifest.for_fabric(7, "lab fabric", "gitops")
    return Manifest(**{**vars(base), **kw})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ manifest


def test_manifest_round_trip_and_deterministic() -> None:
    m = sample_manifest(last_sync=LastSync("sync-1", "2025-08-02T09:00:00Z", "ab" * 20))
    data = render_manifest(m)
    assert render_manifest(m) == data
    assert parse_manifest(data) == m
    assert m.directories == Directories("gitops/raw", "gitops/managed", "gitops/.hnp")
    assert m.kind_directories == {k: v.directory for k, v in KINDS.items()}
    assert m.archive_strategy == "rename-suffix" and m.version == "1"
    text = data.decode()
    assert "version: '1'" in text and "fabric_id: 7" in text and "vpcs" in text


def test_manifest_without_last_sync_and_human_version() -> None:
    m = sample_manifest()
    assert parse_manifest(render_manifest(m)).last_sync is None
    edited = render_manifest(m).replace(b"version: '1'", b"version: 1")
    assert parse_manifest(edited) == m


def test_manifest_at_repo_root() -> None:
    m = Manifest.for_fabric(1, "f", "")
    assert m.directories == Directories("raw", "managed", ".hnp")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "one YAML document"),
        (b"a: [1\n", "invalid YAML"),
        (b"!!python/object:os.system {}\n", "not allowed"),
        (b"- 1\n- 2\n", "not a mapping"),
        (b"version: '1'\n---\nversion: '1'\n", "one YAML document"),
        (b"version: '2'\n", "missing"),
    ],
)
def test_broken_manifest_is_fgd_1003(data: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_manifest(data)
    assert info.value.code == FGDErrorCodes.VALIDATION_FAILED
    assert reason in info.value.message


@pytest.mark.parametrize(
    "old, new, reason",
    [
        ("version: '1'", "version: '2'", "unsupported version"),
        ("fabric_id: 7", "fabric_id: true", "fabric_id"),
        ("fabric_id: 7", "fabric_id: '7'", "fabric_id"),
        ("archive_strategy: rename-suffix", "archive_strategy: move", "archive_strategy"),
        ("  raw: gitops/raw\n", "", "directories is missing raw"),
        ("last_sync: null", "last_sync: {sync_id: s}", "last_sync is missing at"),
        ("last_sync: null", "last_sync: null\nextra: 1", "unknown keys extra"),
        ("  VPC: vpcs", "  VPC: ../vpcs", "kind_directories"),
    ],
)
def test_invalid_manifest_fields(old: str, new: str, reason: str) -> None:
    text = render_manifest(sample_manifest()).decode()
    assert old in text
    with pytest.raises(ValidationError) as info:
        parse_manifest(text.replace(old, new, 1).encode())
    assert info.value.code == FGDErrorCodes.VALIDATION_FAILED
    assert reason in info.value.message


# ---------------------------------------------------------------------------- provenance


ENTRY = {
    "raw_path": "gitops/raw/a.yaml",
    "document_index": 0,
    "sync_id": "s1",
    "raw_content_id": "0" * 40,
    "kind": "VPC",
    "name": "a",
}


def test_provenance_round_trip_one_entry_per_line() -> None:
    entries = {
        "gitops/managed/vpcs/b.yaml": {**ENTRY, "name": "b", "document_index": 1},
        "gitops/managed/vpcs/a.yaml": ENTRY,
    }
    data = render_provenance(entries)
    assert parse_provenance(data) == entries
    assert render_provenance(parse_provenance(data)) == data
    lines = data.decode().splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and len(lines) == 4
    assert lines[1].startswith('"gitops/managed/vpcs/a.yaml": {"document_index": 0')
    assert json.loads(data) == entries
    assert render_provenance({}) == b"{}\n" and parse_provenance(b"{}\n") == {}


def test_provenance_of_ten_thousand_entries_parses() -> None:
    entries = {f"gitops/managed/vpcs/v{i}.yaml": {**ENTRY, "name": f"v{i}"} for i in range(10_000)}
    data = render_provenance(entries)
    assert data.count(b"\n") == 10_002  # "{", one line per entry, "}"
    assert parse_provenance(data) == entries


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"p": {"raw_path": "x"}}',
        json.dumps({"p": {**ENTRY, "document_index": "0"}}).encode(),
        json.dumps({"p": {**ENTRY, "extra": 1}}).encode(),
        b"\xff\xfe",
    ],
)
def test_broken_provenance_is_fgd_1003(data: bytes) -> None:
    with pytest.raises(ValidationError) as info:
        parse_provenance(data)
    assert info.value.code == FGDErrorCodes.VALIDATION_FAILED


def test_updated_provenance_replaces_only_created_and_updated() -> None:
    raw = {"gitops/raw/a.yaml": vpc("a"), "gitops/raw/b.yaml": vpc("b", "10.0.2.0/24")}
    first = plan_sync(raw, {}, [], {}, "s1")
    prov = updated_provenance({}, first)
    assert set(prov) == {"gitops/managed/vpcs/a.yaml", "gitops/managed/vpcs/b.yaml"}
    assert prov["gitops/managed/vpcs/a.yaml"]["sync_id"] == "s1"
    assert prov["gitops/managed/vpcs/a.yaml"]["raw_path"] == "gitops/raw/a.yaml"

    managed = {w.path: w.content for w in first.writes}
    # a.yaml comes back unchanged, b.yaml changes: only b's entry moves to s2.
    raw2 = {"gitops/raw/a2.yaml": vpc("a"), "gitops/raw/b2.yaml": vpc("b", "10.0.3.0/24")}
    second = plan_sync(raw2, managed, list(managed), {}, "s2")
    assert {w.name: w.action for w in second.writes} == {"a": "unchanged", "b": "update"}
    prov2 = updated_provenance(prov, second)
    assert prov2["gitops/managed/vpcs/a.yaml"] == prov["gitops/managed/vpcs/a.yaml"]
    assert prov2["gitops/managed/vpcs/b.yaml"]["sync_id"] == "s2"
    assert prov2["gitops/managed/vpcs/b.yaml"]["raw_path"] == "gitops/raw/b2.yaml"
    assert prov == updated_provenance({}, first)  # the input is not modified


# ----------------------------------------------------------------------- metadata_changes


def test_unchanged_plan_has_no_metadata_changes() -> None:
    first = plan_sync({"gitops/raw/a.yaml": vpc("a")}, {}, [], {}, "s1")
    managed = {w.path: w.content for w in first.writes}
    snap = local_snapshot({**managed, MANIFEST_PATH: render_manifest(sample_manifest())})
    # The same resource re-ingested, no raw file left to archive: a plan that writes nothing.
    again = plan_sync({}, managed, list(managed), {}, "s2")
    assert metadata_changes(snap, RULES, 7, "lab fabric", again, "s2", AT) == {}
    unchanged = plan_sync({"gitops/raw/a.yaml": vpc("a")}, managed, list(managed), {}, "s3")
    assert [w.action for w in unchanged.writes] == ["unchanged"]
    assert unchanged.archives  # archiving the raw file is a change that needs a commit
    assert metadata_changes(snap, RULES, 7, "lab fabric", unchanged, "s3", AT) != {}


def test_failed_only_plan_has_no_metadata_changes() -> None:
    plan = plan_sync({"gitops/raw/bad.yaml": b"kind: Nope\n"}, {}, [], {}, "s1")
    assert plan.files[0].status == "failed"
    assert metadata_changes(local_snapshot({}), RULES, 7, "f", plan, "s1", AT) == {}


def test_metadata_changes_write_provenance_and_last_sync() -> None:
    snap = local_snapshot({"gitops/raw/a.yaml": vpc("a")})
    plan = plan_sync({"gitops/raw/a.yaml": vpc("a")}, {}, [], {}, "s1")
    changes = metadata_changes(snap, RULES, 7, "lab fabric", plan, "s1", AT)
    assert set(changes) == {MANIFEST_PATH, PROVENANCE_PATH}
    manifest = parse_manifest(changes[MANIFEST_PATH])
    assert manifest.fabric_id == 7 and manifest.fabric_name == "lab fabric"
    assert manifest.last_sync == LastSync("s1", "2025-08-02T09:00:00Z", snap.head)
    prov = parse_provenance(changes[PROVENANCE_PATH])
    assert prov == {
        "gitops/managed/vpcs/a.yaml": {
            "raw_path": "gitops/raw/a.yaml",
            "document_index": 0,
            "sync_id": "s1",
            "raw_content_id": plan.files[0].content_id,
            "kind": "VPC",
            "name": "a",
        }
    }
    # Same inputs, same bytes.
    assert metadata_changes(snap, RULES, 7, "lab fabric", plan, "s1", AT) == changes


def test_metadata_changes_keep_existing_entries_and_broken_files() -> None:
    old = {"gitops/managed/vpcs/z.yaml": {**ENTRY, "name": "z"}}
    snap = local_snapshot({PROVENANCE_PATH: render_provenance(old)})
    plan = plan_sync({"gitops/raw/a.yaml": vpc("a")}, {}, [], {}, "s1")
    changes = metadata_changes(snap, RULES, 7, "f", plan, "s1", AT)
    assert set(parse_provenance(changes[PROVENANCE_PATH])) == {
        "gitops/managed/vpcs/z.yaml",
        "gitops/managed/vpcs/a.yaml",
    }

    broken = local_snapshot({MANIFEST_PATH: b"{oops", PROVENANCE_PATH: b"not json"})
    changes = metadata_changes(broken, RULES, 7, "f", plan, "s1", AT)
    assert changes[MANIFEST_PATH + ".broken"] == b"{oops"
    assert changes[PROVENANCE_PATH + ".broken"] == b"not json"
    assert parse_manifest(changes[MANIFEST_PATH]).last_sync is not None
    assert set(parse_provenance(changes[PROVENANCE_PATH])) == {"gitops/managed/vpcs/a.yaml"}


def test_full_sync_then_resync_commits_nothing() -> None:
    """Apply a sync's changes, then sync the result again: the second commit is empty."""
    remote = GitRemote("/nonexistent/never-contacted")
    store = remote._local.object_store

    def snap_at(sha: str) -> Snapshot:
        commit = store[ObjectID(sha.encode())]
        assert isinstance(commit, Commit)
        return Snapshot("main", sha, commit.tree.decode(), store)

    def sync(snap: Snapshot, sync_id: str) -> str:
        files = {f.path: snap.read(f) for f in snap.files("gitops")}
        raw = {p: c for p, c in files.items() if p.startswith(RULES.raw_prefix)}
        managed = {p: c for p, c in files.items() if p.startswith(RULES.managed_prefix)}
        plan = plan_sync(raw, managed, list(files), {}, sync_id, RULES)
        changes: dict[str, bytes | None] = {w.path: w.content for w in plan.changed_writes}
        for a in plan.archives:
            changes[a.archived_path], changes[a.raw_path] = raw[a.raw_path], None
        changes.update(metadata_changes(snap, RULES, 7, "f", plan, sync_id, AT))
        return remote.commit(snap, changes, f"sync {sync_id}", "F <f@example.com>", timestamp=1)

    empty = Snapshot("main", None, None, store)
    seed = remote.commit(empty, {"gitops/raw/a.yaml": vpc("a")}, "seed", "T <t@e.com>")
    first = sync(snap_at(seed), "s1")
    assert first != seed
    after = snap_at(first)
    assert after.get("gitops/raw/a.yaml.archived") is not None
    assert after.get("gitops/managed/vpcs/a.yaml") is not None
    assert parse_manifest(after.read(MANIFEST_PATH)).last_sync.sync_id == "s1"  # type: ignore[union-attr]
    assert sync(after, "s2") == first  # nothing to do: no commit
