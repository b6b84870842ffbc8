"""The ingestion planner: raw files in, a SyncPlan out. Pure: no I/O, no clock, no randomness.

The git adapter reads the tree, calls ``plan_sync`` and applies the plan in one commit; the
dry-run / ``validate_only`` answer is the very same plan, just not applied. The ingestion
rules in short: one managed path per resource, a raw file lands whole or not at all, two
definitions of one resource in a sync are a conflict on every file involved, hostile input
changes nothing, and an unchanged failed file is not re-failed every sync. The rules a file
is judged by are applied in ``plan_draft``; this module decides the writes from them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from fgd_core.ingestion.hedgehog.fabric_check import ManagedFabric
from fgd_core.ingestion.plan_draft import FileDraft, collector_paused, draft_files
from fgd_core.ingestion.plan_inputs import (
    ARCHIVE_SUFFIX,
    FileStatus,
    IngestError,
    IngestionRules,
    RawFile,
    git_blob_id,
)

# What callers import from here (the inputs and the drafting live in modules of their own).
__all__ = ["ARCHIVE_SUFFIX", "Archive", "FileDraft", "FileResult", "FileStatus", "IngestError",
           "IngestionRules", "ManagedWrite", "Provenance", "RawFile", "ResourceRef",
           "SyncPlan", "WriteAction", "archive_name", "draft_files", "git_blob_id", "plan_sync"]

WriteAction = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class ResourceRef:
    kind: str
    name: str
    managed_path: str
    document_index: int


@dataclass(frozen=True)
class FileResult:
    path: str
    status: FileStatus
    content_id: str  # git blob id of the content (what discovery records)
    documents_found: int = 0
    documents_extracted: int = 0  # documents that landed (0 unless processed)
    target_files: tuple[str, ...] = ()
    resources: tuple[ResourceRef, ...] = ()
    errors: tuple[IngestError, ...] = ()
    warnings: tuple[str, ...] = ()
    archived_to: str | None = None
    # Managed paths the file's valid documents define, kept for a FAILED file too: they
    # still take part in the cross-file conflict check (a distributed sync needs them).
    claimed: tuple[str, ...] = ()

    @property
    def error_message(self) -> str:
        return "; ".join(e.message for e in self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_path": self.path,
            "status": self.status,
            "content_id": self.content_id,
            "documents_found": self.documents_found,
            "documents_extracted": self.documents_extracted,
            "target_files": list(self.target_files),
            "resources": [{"kind": r.kind, "name": r.name} for r in self.resources],
            "errors": [e.to_dict() for e in self.errors],
            "warnings": list(self.warnings),
            "archived_to": self.archived_to,
        }


@dataclass(frozen=True)
class ManagedWrite:
    path: str
    content: bytes
    action: WriteAction
    kind: str
    name: str


@dataclass(frozen=True)
class Archive:
    raw_path: str
    archived_path: str


@dataclass(frozen=True)
class Provenance:
    """One manifest entry: where a managed file's content came from."""

    managed_path: str
    raw_path: str
    document_index: int
    sync_id: str
    kind: str
    name: str
    raw_content_id: str


@dataclass(frozen=True)
class SyncPlan:
    sync_id: str
    files: tuple[FileResult, ...]
    writes: tuple[ManagedWrite, ...]
    archives: tuple[Archive, ...]
    provenance: tuple[Provenance, ...]
    # path → content id of files whose failure lies in the file itself; the caller persists
    # this and passes it back as ``failed_before``. Files that failed only because another
    # file defines the same resource are left out: fixing the other file must retry them.
    failures_to_record: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def file(self, path: str) -> FileResult:
        return next(f for f in self.files if f.path == path)

    @property
    def changed_writes(self) -> tuple[ManagedWrite, ...]:
        return tuple(w for w in self.writes if w.action != "unchanged")

    def summary(self) -> dict[str, int]:
        count = {
            s: sum(f.status == s for f in self.files) for s in ("processed", "failed", "skipped")
        }
        return {
            "files_processed": count["processed"],
            "files_failed": count["failed"],
            "files_skipped": count["skipped"],
            "files_created": sum(w.action == "create" for w in self.writes),
            "files_updated": sum(w.action == "update" for w in self.writes),
            "files_unchanged": sum(w.action == "unchanged" for w in self.writes),
            "errors": sum(len(f.errors) for f in self.files),
            "warnings": sum(len(f.warnings) for f in self.files),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dry-run answer (managed contents as sha256, not bytes)."""
        return {
            "sync_id": self.sync_id,
            "summary": self.summary(),
            "files": [f.to_dict() for f in self.files],
            "writes": [
                {
                    "path": w.path,
                    "action": w.action,
                    "kind": w.kind,
                    "name": w.name,
                    "sha256": hashlib.sha256(w.content).hexdigest(),
                }
                for w in self.writes
            ],
            "archives": [
                {"raw_path": a.raw_path, "archived_to": a.archived_path} for a in self.archives
            ],
            "provenance": [vars(p) for p in self.provenance],
        }


def archive_name(raw_path: str, taken: set[str], managed: Mapping[str, bytes]) -> str:
    """Where a processed raw file is archived (``taken`` grows by the name)."""
    # The spec's "<file>.archived"; if a sync already archived a file of that name, keep
    # both (lossless): "<file>.1.archived", "<file>.2.archived", …
    candidate, n = raw_path + ARCHIVE_SUFFIX, 0
    while candidate in taken or candidate in managed:
        n += 1
        candidate = f"{raw_path}.{n}{ARCHIVE_SUFFIX}"
    taken.add(candidate)
    return candidate


def plan_sync(
    raw_files: Mapping[str, bytes | RawFile],
    managed_files: Mapping[str, bytes],
    existing_paths: Collection[str],
    failed_before: Mapping[str, str],
    sync_id: str,
    rules: IngestionRules | None = None,
    managed_fabric: ManagedFabric | None = None,
) -> SyncPlan:
    """Plan one sync.

    ``raw_files``: repo-relative path → content (``RawFile`` to flag a symlink).
    ``managed_files``: current managed path → content (decides create/update/unchanged).
    ``existing_paths``: every path in the tree (archive names must not overwrite any).
    ``failed_before``: path → content id of files that failed earlier (see
    ``SyncPlan.failures_to_record``); such a file, unchanged, is skipped with a warning.
    ``managed_fabric``: the objects of ``managed/`` (called once, only if needed); given,
    the fabric-wide checks run and a file that would break the fabric fails. Left out
    (one file planned alone by a distributed worker), the publish step runs them.
    """
    rules = rules or IngestionRules()
    with collector_paused():  # see plan_draft.collector_paused: thousands of objects, no cycles
        return _plan(raw_files, managed_files, existing_paths, failed_before, sync_id, rules,
                     managed_fabric)


def _plan(
    raw_files: Mapping[str, bytes | RawFile],
    managed_files: Mapping[str, bytes],
    existing_paths: Collection[str],
    failed_before: Mapping[str, str],
    sync_id: str,
    rules: IngestionRules,
    managed_fabric: ManagedFabric | None,
) -> SyncPlan:
    drafts = draft_files(raw_files, failed_before, rules, managed_fabric)

    # ``managed_files`` may be a lazy view of a large tree (``Snapshot.blobs``): it is only
    # ever asked about paths this plan writes or archives to, never listed.
    taken = set(existing_paths) | set(raw_files)
    files: list[FileResult] = []
    writes: list[ManagedWrite] = []
    archives: list[Archive] = []
    provenance: list[Provenance] = []
    failures: dict[str, str] = {}
    for d in drafts:
        if d.status is None:
            d.status = "failed" if d.errors else "processed"
        if d.status == "failed" and d.intrinsic_failure:
            failures[d.path] = d.content_id
        if d.status != "processed":
            files.append(
                FileResult(
                    d.path,
                    d.status,
                    d.content_id,
                    d.documents_found,
                    0,
                    errors=tuple(d.errors),
                    warnings=tuple(d.warnings),
                    claimed=tuple(c.path for c in d.claims) if d.status == "failed" else (),
                )
            )
            continue
        refs = []
        for c in d.claims:
            content = c.managed_content()
            current = managed_files.get(c.path)
            action: WriteAction = (
                "create" if current is None else "unchanged" if current == content else "update"
            )
            kind, name = c.kind, c.name
            writes.append(ManagedWrite(c.path, content, action, kind, name))
            provenance.append(
                Provenance(c.path, d.path, c.index, sync_id, kind, name, d.content_id)
            )
            refs.append(ResourceRef(kind, name, c.path, c.index))
        archived = archive_name(d.path, taken, managed_files)
        archives.append(Archive(d.path, archived))
        files.append(
            FileResult(
                d.path,
                "processed",
                d.content_id,
                d.documents_found,
                len(d.claims),
                target_files=tuple(r.managed_path for r in refs),
                resources=tuple(refs),
                warnings=tuple(d.warnings),
                archived_to=archived,
            )
        )
    return SyncPlan(
        sync_id=sync_id,
        files=tuple(files),
        writes=tuple(sorted(writes, key=lambda w: w.path)),
        archives=tuple(archives),
        provenance=tuple(sorted(provenance, key=lambda p: p.managed_path)),
        failures_to_record=MappingProxyType(failures),
    )
