"""The spec's validate directory operation on a Snapshot, and the issues it reports.

Initialize and repair are in ``directory_repair``, list files in ``directory_files``, what
they share in ``directory_scan``.

Pure: each function reads a fetched commit and returns data; initialize and repair also
return ``changes`` (path → bytes) that the caller commits with ``GitRemote.commit`` and
pushes. Nothing here deletes or overwrites a raw or managed file: a repair that would need
to (a file where a directory belongs, a symlink, a stray ``vpc.json``) is reported instead.

Git stores no empty directories, so a directory "exists" when some file lies under it;
initialize and repair keep new directories with ``.gitkeep`` files (``raw/`` is kept by its
``README.md``). API paths are repo-relative with a leading slash (``/gitops/raw``).

Issue names (``ISSUES``; severity in brackets, "mode" = error in strict, warning in lenient):

- ``missing_gitops_dir`` [error, repairable]: nothing under the GitOps directory.
- ``gitops_is_file`` [error]: the GitOps directory (or a parent) is a file or symlink.
- ``missing_raw_dir`` [error, repairable]: nothing under ``raw/``.
- ``raw_is_file`` [error]: ``raw`` is a file or symlink.
- ``missing_managed_dir`` [error, repairable]: nothing under ``managed/``.
- ``managed_is_file`` [error]: ``managed`` is a file or symlink.
- ``missing_subdir`` [mode, repairable]: a required ``managed/<subdir>`` that is no kind
  directory is missing (one issue per subdir). Reported only when ``managed/`` exists. A
  kind directory (``vpcs``, ``connections`` …) is created by the sync that first writes one
  of its objects, so a missing one is no issue (initialize still creates the required ones).
- ``unknown_managed_dir`` [warning]: a ``managed/`` subdirectory that is no kind directory.
- ``unknown_managed_file`` [warning]: a file directly in ``managed/`` (not ``.gitkeep``).
- ``missing_metadata_dir`` [error, repairable]: nothing under ``.hnp/``.
- ``metadata_is_file`` [error]: ``.hnp`` is a file or symlink.
- ``missing_manifest`` [error, repairable]: ``.hnp/`` exists without ``manifest.yaml``.
- ``invalid_manifest`` [error, repairable]: the manifest does not parse or validate
  (repair keeps it as ``manifest.yaml.broken``).
- ``invalid_provenance`` [warning, repairable]: ``provenance.json`` does not parse (kept as
  ``provenance.json.broken``; a missing one is no issue — the next sync writes it).
- ``symlink_in_raw`` [error]: a symlink under ``raw/`` (never ingested, never followed).
- ``unsupported_file_in_raw`` [mode]: a file under ``raw/`` with another extension (e.g.
  ``vpc.json``) or a submodule. ``README.md``, ``.gitkeep`` and ``*.archived`` are expected.

Repair never touches the non-repairable ones: each needs a human to move or delete a file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from fgd_core.adapters.git_repo import Snapshot
from fgd_core.application.directory_scan import (
    DEFAULT_EXTENSIONS,
    DEFAULT_REQUIRED_SUBDIRS,
    GITKEEP,
    README,
    DirectoryScan,
    check_choice,
    check_subdirs,
    file_kind,
    join_path,
    make_issue,
    raw_file_role,
    scan_directory,
)
from fgd_core.application.manifest import (
    METADATA_DIR,
    get_entry,
    manifest_path,
    parse_manifest,
    parse_provenance,
    provenance_path,
)
from fgd_core.errors import (
    FGDError,
    ValidationError,
)
from fgd_core.ingestion.hedgehog.fabric_check import managed_objects, tree_errors
from fgd_core.ingestion.hedgehog.fabric_config import DEFAULT_FABRIC_CONFIG, FabricConfig
from fgd_core.ingestion.kinds import KINDS

ISSUES: Mapping[str, str] = {
    "missing_gitops_dir": "the GitOps directory does not exist",
    "gitops_is_file": "the GitOps directory is a file",
    "missing_raw_dir": "raw/ does not exist",
    "raw_is_file": "raw is a file, not a directory",
    "missing_managed_dir": "managed/ does not exist",
    "managed_is_file": "managed is a file, not a directory",
    "missing_subdir": "a required managed/ subdirectory does not exist",
    "unknown_managed_dir": "a managed/ subdirectory that is not a kind directory",
    "unknown_managed_file": "a file directly in managed/",
    "missing_metadata_dir": ".hnp/ does not exist",
    "metadata_is_file": ".hnp is a file, not a directory",
    "missing_manifest": ".hnp/manifest.yaml does not exist",
    "invalid_manifest": ".hnp/manifest.yaml is not a valid manifest",
    "invalid_provenance": ".hnp/provenance.json is not a valid provenance index",
    "symlink_in_raw": "a symlink in raw/",
    "unsupported_file_in_raw": "a file in raw/ that is not ingested",
}
REPAIRABLE = frozenset(
    {
        "missing_gitops_dir",
        "missing_raw_dir",
        "missing_managed_dir",
        "missing_subdir",
        "missing_metadata_dir",
        "missing_manifest",
        "invalid_manifest",
        "invalid_provenance",
    }
)


def validate_directory(
    snapshot: Snapshot,
    gitops_dir: str,
    *,
    validation_mode: str = "strict",
    required_subdirs: Iterable[str] = DEFAULT_REQUIRED_SUBDIRS,
    supported_extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    kind_directories: Collection[str] | None = None,
    fabric: FabricConfig = DEFAULT_FABRIC_CONFIG,
    fabric_rules: bool = True,
) -> dict[str, Any]:
    """The spec's validate response plus ``repairs_needed`` and ``directory_stats``.

    ``fabric_rules=False`` checks the structure only (not ``managed/`` as one fabric by
    Hedgehog's rules): what a sync that just validated the whole fabric needs to record.

    ``valid`` is true when no issue has severity ``error``; ``repairs_needed`` lists the
    names of the issues found that ``repair_changes`` can fix. ``kind_directories``
    defaults to the directories of ``KINDS``.
    """
    check_choice("validation_mode", validation_mode, ("strict", "lenient"))
    subs = check_subdirs(required_subdirs)
    extensions = tuple(supported_extensions)
    known_dirs = set(kind_directories or {k.directory for k in KINDS.values()})
    mode_severity = "error" if validation_mode == "strict" else "warning"
    scan = scan_directory(snapshot, gitops_dir)
    issues: list[dict[str, Any]] = []
    raw = {"exists": False, "file_count": 0, "pending_files": 0}
    managed: dict[str, Any] = {"exists": False, "file_count": 0, "subdirectories": []}
    metadata: dict[str, Any] = {"exists": False, "manifest_valid": False, "last_updated": None}

    if scan.blocked:
        issues.append(make_issue("gitops_is_file", scan.base, scan.blocked, "error"))
    elif not scan.exists():
        issues.append(
            make_issue("missing_gitops_dir", scan.base, "the GitOps directory is empty", "error")
        )
    else:
        issues += _check_raw(snapshot, scan, raw, extensions, mode_severity)
        issues += _check_managed(snapshot, scan, managed, subs, known_dirs, mode_severity)
        if managed["exists"] and fabric_rules:
            issues += _check_fabric(snapshot, scan, fabric)
        issues += _check_metadata(snapshot, scan, metadata)

    names = list(dict.fromkeys(i["issue"] for i in issues if i["issue"] in REPAIRABLE))
    return {
        "valid": not any(i["severity"] == "error" for i in issues),
        "issues": issues,
        "structure": {"raw": raw, "managed": managed, "metadata": metadata},
        "repairs_needed": names,
        "directory_stats": {"raw_files": raw["file_count"], "managed_files": managed["file_count"]},
    }


def _check_raw(
    snapshot: Snapshot,
    scan: DirectoryScan,
    out: dict[str, Any],
    extensions: tuple[str, ...],
    mode_severity: str,
) -> list[dict[str, Any]]:
    path = scan.path("raw")
    what = file_kind(snapshot, path)
    if what:
        return [make_issue("raw_is_file", path, f"raw is {what}, not a directory", "error")]
    files = scan.under("raw")
    if not files:
        return [make_issue("missing_raw_dir", path, "raw/ does not exist", "error")]
    issues = []
    out["exists"] = True
    out["file_count"] = sum(1 for f in files if not f.path.endswith("/" + GITKEEP))
    for f in files:
        role = raw_file_role(f, extensions)
        if role == "pending":
            out["pending_files"] += 1
        elif role == "symlink":
            msg = "symlinks are never ingested (the target could be anywhere)"
            issues.append(make_issue("symlink_in_raw", f.path, msg, "error"))
        elif role == "unsupported":
            msg = (
                "a submodule is not a file"
                if not f.is_regular
                else f"not ingested: supported extensions are {', '.join(extensions)}"
            )
            issues.append(make_issue("unsupported_file_in_raw", f.path, msg, mode_severity))
    return issues


def _check_managed(
    snapshot: Snapshot,
    scan: DirectoryScan,
    out: dict[str, Any],
    subs: tuple[str, ...],
    known_dirs: set[str],
    mode_severity: str,
) -> list[dict[str, Any]]:
    path = scan.path("managed")
    what = file_kind(snapshot, path)
    if what:
        return [make_issue("managed_is_file", path, f"managed is {what}, not a directory", "error")]
    files = scan.under("managed")
    if not files:
        return [make_issue("missing_managed_dir", path, "managed/ does not exist", "error")]
    issues = []
    out["exists"] = True
    out["file_count"] = sum(1 for f in files if not f.path.endswith("/" + GITKEEP))
    present: list[str] = []
    for f in files:
        rel = f.path[len(path) + 1 :]
        if "/" in rel:
            sub = rel.split("/", 1)[0]
            if sub not in present:
                present.append(sub)
        elif rel not in (GITKEEP, README):
            msg = "files belong in managed/<kind-dir>/; the sync never writes here"
            issues.append(make_issue("unknown_managed_file", f.path, msg, "warning"))
    out["subdirectories"] = sorted(present)
    for sub in subs:
        # A kind's directory is created by the first sync that writes one of its objects
        # (a VPC-only fabric has no connections/): missing, it is not an issue.
        if sub not in present and sub not in known_dirs:
            msg = f"required subdirectory managed/{sub}/ does not exist"
            issues.append(make_issue("missing_subdir", join_path(path, sub), msg, mode_severity))
    for sub in sorted(present):
        if sub not in known_dirs:
            msg = f"managed/{sub}/ is not the directory of any supported kind"
            issues.append(make_issue("unknown_managed_dir", join_path(path, sub), msg, "warning"))
    return issues


def _check_fabric(
    snapshot: Snapshot, scan: DirectoryScan, fabric: FabricConfig
) -> list[dict[str, Any]]:
    """managed/ as one fabric, by Hedgehog's cross-object rules: what a hand edit broke
    (a dangling reference after a connection file was deleted, a reused VLAN …)."""
    prefix = scan.path("managed") + "/"
    entries = ((f.path, f.blob_id) for f in scan.under("managed") if not f.is_symlink)
    objects = managed_objects(entries, snapshot.read_blob, prefix)
    return [
        make_issue(
            "fabric_rule_broken",
            obj.source,
            f"{obj.kind} {obj.name!r}: {e.message} ({e.rule}, {e.field})",
            "error",
        )
        for obj, e in tree_errors(objects, fabric)
    ]


def _check_metadata(
    snapshot: Snapshot, scan: DirectoryScan, out: dict[str, Any]
) -> list[dict[str, Any]]:
    path = scan.path(METADATA_DIR)
    what = file_kind(snapshot, path)
    if what:
        return [make_issue("metadata_is_file", path, f".hnp is {what}, not a directory", "error")]
    if not scan.under(METADATA_DIR):
        return [make_issue("missing_metadata_dir", path, ".hnp/ does not exist", "error")]
    out["exists"] = True
    issues = []
    mpath = manifest_path(scan.base)
    entry = get_entry(snapshot, mpath)
    if entry is None:
        issues.append(
            make_issue("missing_manifest", mpath, "manifest.yaml does not exist", "error")
        )
    elif not entry.is_regular:
        issues.append(make_issue("invalid_manifest", mpath, "manifest.yaml is a symlink", "error"))
    else:
        try:
            manifest = parse_manifest(snapshot.read(entry))
        except FGDError as exc:
            issues.append(make_issue("invalid_manifest", mpath, exc.message, "error"))
        else:
            out["manifest_valid"] = True
            out["last_updated"] = manifest.last_sync.at if manifest.last_sync else None
    ppath = provenance_path(scan.base)
    pentry = get_entry(snapshot, ppath)
    if pentry is not None:
        try:
            if not pentry.is_regular:
                raise ValidationError("provenance.json is a symlink")
            parse_provenance(snapshot.read(pentry))
        except FGDError as exc:
            issues.append(make_issue("invalid_provenance", ppath, exc.message, "warning"))
    return issues
