"""Fabric-wide checks in a distributed sync: decided where cross-file conflicts are.

Ingestion workers plan one file each, so none of them sees the whole desired fabric. The
publish step does: it runs the planner's own ``fabric_verdict`` on ``managed/`` of the base
it commits on plus every processed file's documents (their managed contents, from the blob
store), and rejects (``file.rejected``) each file that would break the fabric — the same
files, with the same errors, as the embedded planner fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fgd_core.adapters.blob_store import BlobStore
from fgd_core.adapters.git_repo import Snapshot
from fgd_core.application.app import FGDApplication
from fgd_core.application.pipeline_common import fabric_of
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.errors import FGDError, FGDErrorCodes
from fgd_core.ingestion.hedgehog.fabric_check import fabric_verdict, facts_for_blob, warning_lines
from fgd_core.ingestion.hedgehog.fabric_index import FabricObject
from fgd_core.ingestion.plan import IngestionRules
from fgd_core.ingestion.yaml_safe import iter_documents


def _document_lines(base: Snapshot, blob_id: str | None) -> dict[int, int]:
    """Document index → line of a raw file (only read for files with findings)."""
    if not blob_id:
        return {}
    try:
        return {d.index: d.line for d in iter_documents(base.read_blob(blob_id))}
    except (FGDError, KeyError):
        return {}


def reject_fabric_breakers(
    app: FGDApplication,
    blobs: BlobStore,
    sync: SyncOperation,
    writes: dict[str, list[dict[str, Any]]],
    base: Snapshot,
    rules: IngestionRules,
    keep_in: Path | None = None,
) -> SyncOperation:
    processed = {
        path: writes.get(path, [])
        for path, rec in sorted(sync.files.items())
        if rec["status"] == "processed"
    }
    wanted = [w["blob_id"] for ws in processed.values() for w in ws]
    if not wanted:
        return sync
    contents: dict[str, bytes] = {}

    def read(blob_id: str) -> bytes:
        if not contents:
            contents.update(blobs.get_many(wanted))
        return contents[blob_id]

    incoming: dict[str, list[FabricObject]] = {}
    for path, ws in processed.items():
        objs = []
        for w in ws:
            hit = facts_for_blob(w["blob_id"], read)
            if hit is not None:
                kind, name, namespace, facts = hit
                objs.append(FabricObject(kind, name, namespace, facts, path,
                                         w["document_index"], None,
                                         landing_at=(w["path"], w["blob_id"])))
        if objs:
            incoming[path] = objs
    with fabric_of(base, rules, keep_in)() as index:
        verdicts = fabric_verdict(index, incoming, rules.fabric)
    findings = {p: v for p, v in verdicts.items() if v.errors or v.warnings}
    if not findings:
        return sync
    lines = {p: _document_lines(base, sync.files[p].get("blob_id")) for p in findings}
    errors: dict[str, list[dict[str, Any]]] = {}
    warnings: list[tuple[str, str]] = []
    for path, verdict in sorted(findings.items()):
        if verdict.errors:
            errors[path] = [
                {
                    "index": obj.index,
                    "line": lines[path].get(obj.index or 0),
                    "code": issue.code,
                    "message": f"{obj.kind} {obj.name!r}: {issue.message}",
                    "field": issue.field,
                    "rule": issue.rule,
                }
                for obj, issue in verdict.errors
            ]
        warnings += [(path, line) for line in warning_lines(verdict)]

    def command(s: SyncOperation) -> None:
        if s.current_stage != "github_sync":
            return
        for path, errs in sorted(errors.items()):
            if s.files[path]["status"] == "processed":
                s.reject_file(path, [{k: v for k, v in e.items() if v is not None}
                                     for e in errs])
        for path, message in warnings:
            s.warn(FGDErrorCodes.VALIDATION_FAILED, message, path)

    return app.update_sync(sync.sync_id, command)
