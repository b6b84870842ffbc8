"""The spec's "List Files" of a GitOps directory: each file of ``raw/`` and ``managed/`` with
the verdict a sync would give it on its own (``plan_sync`` on that one file)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fgd_core.adapters.git_repo import FileEntry, Snapshot
from fgd_core.application.directory import (
    GITKEEP,
    Scan,
    api_path,
    check_choice,
    raw_file_role,
    snapshot_time,
)
from fgd_core.application.directory import (
    scan as scan_directory,
)
from fgd_core.errors import FGDError, FGDErrorCodes
from fgd_core.ingestion.plan import IngestionRules, RawFile, plan_sync
from fgd_core.ingestion.yaml_safe import iter_documents


def list_files(
    snapshot: Snapshot,
    gitops_dir: str,
    *,
    directory: str = "all",
    file_type: str = "all",
    include_content: bool = False,
    rules: IngestionRules | None = None,
) -> dict[str, Any]:
    """The spec's "List Files" response for ``raw/`` and/or ``managed/``.

    A YAML file (``rules.supported_extensions``) is ``valid`` when the sync would ingest it on
    its own: the very same checks as a sync (``plan_sync`` on that one file), so limits,
    unsupported kinds and within-file duplicates count; conflicts with *other* files do not.
    A managed file must also hold exactly one resource, at that resource's managed path.
    ``resources`` lists the documents that are valid resources (also for an invalid file).
    README.md and ``*.archived`` are listed valid with no resources; other files (symlinks,
    ``vpc.json``) are invalid. ``modified`` is the snapshot's commit time: git keeps no
    per-file time. ``.gitkeep`` files are not listed.
    """
    check_choice("directory", directory, ("raw", "managed", "all"))
    check_choice("file_type", file_type, ("yaml", "yml", "all"))
    scan = scan_directory(snapshot, gitops_dir)
    rules = dataclasses.replace(rules or IngestionRules(), gitops_dir=scan.base)
    modified = snapshot_time(snapshot)
    dirs = ("raw", "managed") if directory == "all" else (directory,)
    files: list[dict[str, Any]] = []
    for dname in dirs:
        for entry in scan.under(dname):
            name = entry.path.rsplit("/", 1)[-1]
            if name == GITKEEP:
                continue
            if file_type != "all" and not name.lower().endswith("." + file_type):
                continue
            content = snapshot.read(entry) if entry.mode != 0o160000 else b""
            item: dict[str, Any] = {
                "path": api_path(entry.path),
                "directory": dname,
                "size": entry.size,
                "modified": modified,
            }
            item.update(_file_check(entry, content, dname, scan, rules))
            if include_content:
                item["content"] = content.decode("utf-8", "replace")
            files.append(item)
    return {
        "files": files,
        "summary": {
            "total_files": len(files),
            "valid_files": sum(f["valid"] for f in files),
            "invalid_files": sum(not f["valid"] for f in files),
            "total_resources": sum(f["resource_count"] for f in files),
        },
    }


def _error(message: str, code: str = FGDErrorCodes.VALIDATION_FAILED) -> dict[str, Any]:
    return {"index": None, "line": None, "code": code, "message": message, "field": None}


def _file_check(
    entry: FileEntry, content: bytes, dname: str, scan: Scan, rules: IngestionRules
) -> dict[str, Any]:
    def result(errors: list[dict[str, Any]], resources: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "valid": not errors,
            "resource_count": len(resources),
            "resources": resources,
            "errors": errors,
        }

    role = raw_file_role(entry, rules.supported_extensions)
    if role == "symlink":
        return result([_error("symlinks are never ingested")], [])
    if role == "unsupported":
        exts = ", ".join(rules.supported_extensions)
        return result([_error(f"not a YAML file (supported extensions: {exts})")], [])
    if role == "expected":
        return result([], [])
    # Plan the file alone, as a sync would; managed files are planned under a raw name.
    rel = entry.path[len(scan.path(dname)) + 1 :]
    probe = entry.path if dname == "raw" else rules.raw_prefix + rel
    planned = plan_sync({probe: RawFile(content)}, {}, [], {}, "list-files", rules).files[0]
    errors = [e.to_dict() for e in planned.errors]
    if planned.status == "processed":
        resources = [{"kind": r.kind, "name": r.name} for r in planned.resources]
        if dname == "managed":
            where = [r.managed_path for r in planned.resources]
            if where != [entry.path]:
                errors.append(
                    _error(
                        "a managed file holds exactly one resource, at "
                        "managed/<kind-dir>/<name>.yaml"
                        + (f" (this one belongs at {api_path(where[0])})" if where else "")
                    )
                )
        return result(errors, resources)
    return result(errors, _valid_documents(content, rules))


def _valid_documents(content: bytes, rules: IngestionRules) -> list[dict[str, str]]:
    """Kind and name of every document that is a valid resource on its own."""
    found: list[dict[str, str]] = []
    if len(content) > rules.max_file_size_mb * 1024 * 1024:
        return found
    try:
        for doc in iter_documents(content, rules.yaml_limits):
            if len(found) >= rules.max_documents_per_file:
                break
            try:
                res = rules.validate(doc.data)
            except FGDError:
                continue
            found.append({"kind": res.info.kind, "name": res.name})
    except FGDError:
        pass  # broken YAML: the documents before the break are still listed
    return found
