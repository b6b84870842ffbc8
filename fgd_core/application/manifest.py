"""FGD Sync's own metadata under ``<gitops>/.hnp/``: the manifest and the provenance index.

``manifest.yaml`` says what the directory is (which fabric, where raw/managed/metadata live,
which kind goes to which directory, how raw files are archived) and which sync last wrote to
it. ``provenance.json`` maps every managed file to the raw document it came from. It is JSON,
not YAML, because it can hold 10,000+ entries and must parse fast; it is written with sorted
keys and one entry per line, so a sync's diff shows exactly the managed files it touched.

Pure: bytes and a ``Snapshot`` in, bytes out. ``metadata_changes`` returns the writes a sync's
commit needs — nothing at all when the sync changes nothing, so an unchanged repository never
gets an empty "bookkeeping" commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from dulwich.errors import NotTreeError

from fgd_core.adapters.git_repo import FileEntry, Snapshot
from fgd_core.errors import FGDError, ValidationError
from fgd_core.ingestion.kinds import KINDS
from fgd_core.ingestion.plan import IngestionRules, SyncPlan
from fgd_core.ingestion.yaml_safe import dump_document, load_documents

MANIFEST_VERSION = "1"
ARCHIVE_STRATEGY = "rename-suffix"  # the spec's "<file>.archived" (plan.ARCHIVE_SUFFIX)
METADATA_DIR = ".hnp"
MANIFEST_FILE = "manifest.yaml"
PROVENANCE_FILE = "provenance.json"
BROKEN_SUFFIX = ".broken"  # an unreadable metadata file is kept for a human, never dropped

PROVENANCE_FIELDS = ("raw_path", "document_index", "sync_id", "raw_content_id", "kind", "name")
_HEADER = b"# Written by FGD Sync. Edit by hand only if you know why; see docs.\n"


@dataclass(frozen=True)
class Directories:
    """Repo-relative paths, no leading or trailing slash (``gitops/raw``)."""

    raw: str
    managed: str
    metadata: str


@dataclass(frozen=True)
class LastSync:
    sync_id: str
    at: str  # ISO 8601, UTC, "Z"
    commit: str | None  # the base commit the sync was built on (its own id cannot be inside it)


@dataclass(frozen=True)
class Manifest:
    fabric_id: int
    fabric_name: str
    directories: Directories
    kind_directories: Mapping[str, str] = field(
        default_factory=lambda: {k: v.directory for k, v in KINDS.items()}
    )
    archive_strategy: str = ARCHIVE_STRATEGY
    last_sync: LastSync | None = None
    version: str = MANIFEST_VERSION

    @classmethod
    def for_fabric(
        cls,
        fabric_id: int,
        fabric_name: str,
        gitops_dir: str,
        rules: IngestionRules | None = None,
    ) -> Manifest:
        """A fresh manifest for ``gitops_dir`` (kinds: KINDS plus the rules' extra kinds)."""
        kinds = {k: v.directory for k, v in KINDS.items()}
        kinds.update({k.kind: k.directory for k in (rules.extra_kinds if rules else ())})
        return cls(
            fabric_id=fabric_id,
            fabric_name=fabric_name,
            directories=directories_for(gitops_dir),
            kind_directories=dict(sorted(kinds.items())),
        )

    def to_dict(self) -> dict[str, Any]:
        last = self.last_sync
        return {
            "version": self.version,
            "fabric_id": self.fabric_id,
            "fabric_name": self.fabric_name,
            "directories": {
                "raw": self.directories.raw,
                "managed": self.directories.managed,
                "metadata": self.directories.metadata,
            },
            "kind_directories": dict(sorted(self.kind_directories.items())),
            "archive_strategy": self.archive_strategy,
            "last_sync": None
            if last is None
            else {"sync_id": last.sync_id, "at": last.at, "commit": last.commit},
        }


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def directories_for(gitops_dir: str) -> Directories:
    return Directories(
        raw=_join(gitops_dir, "raw"),
        managed=_join(gitops_dir, "managed"),
        metadata=_join(gitops_dir, METADATA_DIR),
    )


def manifest_path(gitops_dir: str) -> str:
    return _join(gitops_dir, METADATA_DIR, MANIFEST_FILE)


def provenance_path(gitops_dir: str) -> str:
    return _join(gitops_dir, METADATA_DIR, PROVENANCE_FILE)


def format_time(at: datetime | str) -> str:
    """``2025-08-02T09:00:00Z`` (naive datetimes are taken as UTC)."""
    if isinstance(at, str):
        return at
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------ manifest


def _bad(what: str, message: str) -> ValidationError:
    return ValidationError(f"invalid {what}: {message}", details={"file": what, "reason": message})


def _expect_keys(
    obj: Any, where: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> None:
    if not isinstance(obj, dict):
        raise _bad(MANIFEST_FILE, f"{where} must be a mapping")
    missing = sorted(required - obj.keys())
    unknown = sorted(str(k) for k in obj.keys() - required - optional)
    if missing:
        raise _bad(MANIFEST_FILE, f"{where} is missing {', '.join(missing)}")
    if unknown:
        raise _bad(MANIFEST_FILE, f"{where} has unknown keys {', '.join(unknown)}")


def _str(value: Any, where: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise _bad(MANIFEST_FILE, f"{where} must be a non-empty string")
    return value


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in ``data``; ValidationError (FGD_1003) when it is not a valid one."""
    try:
        docs = load_documents(data)
    except FGDError as exc:  # InvalidYAMLError (FGD_1001): still "a broken manifest"
        raise _bad(MANIFEST_FILE, exc.message) from None
    if len(docs) != 1:
        raise _bad(MANIFEST_FILE, f"expected one YAML document, found {len(docs)}")
    doc = docs[0].data
    top = {"version", "fabric_id", "fabric_name", "directories", "kind_directories"}
    _expect_keys(doc, "manifest", top, {"archive_strategy", "last_sync"})
    version = doc["version"]
    if version == 1:  # "version: 1" unquoted, as a human would write it
        version = MANIFEST_VERSION
    if version != MANIFEST_VERSION:
        raise _bad(MANIFEST_FILE, f"unsupported version {doc['version']!r} (expected '1')")
    fabric_id = doc["fabric_id"]
    if not isinstance(fabric_id, int) or isinstance(fabric_id, bool):
        raise _bad(MANIFEST_FILE, "fabric_id must be an integer")
    dirs = doc["directories"]
    _expect_keys(dirs, "directories", {"raw", "managed", "metadata"})
    kinds = doc["kind_directories"]
    if not isinstance(kinds, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v and "/" not in v for k, v in kinds.items()
    ):
        raise _bad(MANIFEST_FILE, "kind_directories must map kind names to directory names")
    strategy = doc.get("archive_strategy", ARCHIVE_STRATEGY)
    if strategy != ARCHIVE_STRATEGY:
        raise _bad(MANIFEST_FILE, f"archive_strategy must be {ARCHIVE_STRATEGY!r}")
    last = doc.get("last_sync")
    last_sync = None
    if last is not None:
        _expect_keys(last, "last_sync", {"sync_id", "at"}, {"commit"})
        commit = last.get("commit")
        if commit is not None and not isinstance(commit, str):
            raise _bad(MANIFEST_FILE, "last_sync.commit must be a string or null")
        last_sync = LastSync(
            _str(last["sync_id"], "last_sync.sync_id"), _str(last["at"], "last_sync.at"), commit
        )
    return Manifest(
        fabric_id=fabric_id,
        fabric_name=_str(doc["fabric_name"], "fabric_name", empty=True),
        directories=Directories(
            _str(dirs["raw"], "directories.raw"),
            _str(dirs["managed"], "directories.managed"),
            _str(dirs["metadata"], "directories.metadata"),
        ),
        kind_directories=dict(sorted(kinds.items())),
        archive_strategy=strategy,
        last_sync=last_sync,
    )


def render_manifest(manifest: Manifest) -> bytes:
    """Deterministic YAML: same manifest, same bytes."""
    return _HEADER + dump_document(manifest.to_dict())


# ---------------------------------------------------------------------------- provenance


def parse_provenance(data: bytes) -> dict[str, dict[str, Any]]:
    """managed path → entry; ValidationError (FGD_1003) when the file is not a valid index."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(PROVENANCE_FILE, f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise _bad(PROVENANCE_FILE, "expected a JSON object of managed path → entry")
    for path, entry in obj.items():
        if not isinstance(entry, dict) or set(entry) != set(PROVENANCE_FIELDS):
            raise _bad(PROVENANCE_FILE, f"entry {path!r} must have exactly {PROVENANCE_FIELDS}")
        index = entry["document_index"]
        if not isinstance(index, int) or isinstance(index, bool):
            raise _bad(PROVENANCE_FILE, f"entry {path!r}: document_index must be an integer")
        if not all(isinstance(entry[k], str) for k in PROVENANCE_FIELDS if k != "document_index"):
            raise _bad(PROVENANCE_FILE, f"entry {path!r}: fields other than index are strings")
    return obj


def render_provenance(entries: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Sorted, one entry per line: a sync's diff touches only the lines of its files."""
    if not entries:
        return b"{}\n"
    lines = [
        f"{json.dumps(path, ensure_ascii=False)}: "
        f"{json.dumps(dict(entries[path]), sort_keys=True, ensure_ascii=False)}"
        for path in sorted(entries)
    ]
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


def updated_provenance(
    current: Mapping[str, Mapping[str, Any]], plan: SyncPlan
) -> dict[str, dict[str, Any]]:
    """``current`` with the entries of the plan's created/updated managed files replaced.

    An ``unchanged`` write keeps its old entry: the managed file did not change, so neither
    does where it came from, and re-syncing an unchanged repository changes nothing.
    """
    out = {path: dict(entry) for path, entry in current.items()}
    by_path = {p.managed_path: p for p in plan.provenance}
    for write in plan.writes:
        if write.action not in ("create", "update"):
            continue
        p = by_path[write.path]
        out[write.path] = {
            "raw_path": p.raw_path,
            "document_index": p.document_index,
            "sync_id": p.sync_id,
            "raw_content_id": p.raw_content_id,
            "kind": p.kind,
            "name": p.name,
        }
    return out


def plan_changes_anything(plan: SyncPlan) -> bool:
    return bool(plan.archives) or any(w.action in ("create", "update") for w in plan.writes)


def get_entry(snapshot: Snapshot, path: str) -> FileEntry | None:
    """``snapshot.get`` that answers None (not dulwich's NotTreeError) below a file."""
    try:
        return snapshot.get(path)
    except NotTreeError:
        return None


def list_entries(snapshot: Snapshot, prefix: str) -> tuple[FileEntry, ...]:
    """``snapshot.files`` that answers () (not dulwich's NotTreeError) below a file."""
    try:
        return snapshot.files(prefix)
    except NotTreeError:
        return ()


def _free_name(snapshot: Snapshot, path: str, taken: Mapping[str, Any]) -> str:
    candidate, n = path + BROKEN_SUFFIX, 0
    while get_entry(snapshot, candidate) is not None or candidate in taken:
        n += 1
        candidate = f"{path}{BROKEN_SUFFIX}.{n}"
    return candidate


def keep_broken(snapshot: Snapshot, path: str, changes: dict[str, bytes]) -> str:
    """Copy the unreadable file at ``path`` to a free ``<path>.broken[.N]``; return that path."""
    target = _free_name(snapshot, path, changes)
    changes[target] = snapshot.read(path)
    return target


def read_manifest(snapshot: Snapshot, gitops_dir: str) -> Manifest | None:
    """The manifest, or None when it is missing or broken."""
    entry = get_entry(snapshot, manifest_path(gitops_dir))
    if entry is None or not entry.is_regular:
        return None
    try:
        return parse_manifest(snapshot.read(entry))
    except ValidationError:
        return None


def metadata_changes(
    snapshot: Snapshot,
    rules: IngestionRules,
    fabric_id: int,
    fabric_name: str,
    plan: SyncPlan,
    sync_id: str,
    at: datetime | str,
) -> dict[str, bytes]:
    """The ``.hnp/`` writes a sync's commit needs: empty when the plan changes nothing.

    Otherwise: provenance updated for the created/updated files and ``last_sync`` set. A
    missing or unreadable manifest/provenance is rebuilt; an unreadable one is kept as
    ``<file>.broken`` first (nothing a human wrote is dropped).
    """
    if not plan_changes_anything(plan):
        return {}
    changes: dict[str, bytes] = {}
    gitops_dir = rules.gitops_dir
    ppath = provenance_path(gitops_dir)
    current: dict[str, dict[str, Any]] = {}
    if get_entry(snapshot, ppath) is not None:
        try:
            current = parse_provenance(snapshot.read(ppath))
        except ValidationError:
            keep_broken(snapshot, ppath, changes)
    changes[ppath] = render_provenance(updated_provenance(current, plan))

    mpath = manifest_path(gitops_dir)
    fresh = Manifest.for_fabric(fabric_id, fabric_name, gitops_dir, rules)
    if get_entry(snapshot, mpath) is not None and read_manifest(snapshot, gitops_dir) is None:
        keep_broken(snapshot, mpath, changes)
    last = LastSync(sync_id=sync_id, at=format_time(at), commit=snapshot.head)
    changes[mpath] = render_manifest(replace(fresh, last_sync=last))
    return changes
