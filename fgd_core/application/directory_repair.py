"""The spec's initialize and repair directory operations on a Snapshot.

Pure: each returns ``changes`` (path → bytes) that the caller commits with
``GitRemote.commit`` and pushes, plus the spec's response. Nothing here deletes or
overwrites a raw or managed file: a repair that would need to is reported instead (see the
issue list in ``directory``). New directories are kept with ``.gitkeep`` files (``raw/`` is
kept by its ``README.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from fgd_core.adapters.git_repo import Snapshot
from fgd_core.application.directory import ISSUES, REPAIRABLE, validate_directory
from fgd_core.application.directory_scan import (
    DEFAULT_EXTENSIONS,
    DEFAULT_REQUIRED_SUBDIRS,
    GITKEEP,
    README,
    SAMPLE_NAME,
    DirectoryScan,
    api_path,
    check_subdirs,
    raw_file_role,
    scan_directory,
    write_blocker,
)
from fgd_core.application.manifest import (
    METADATA_DIR,
    Manifest,
    get_entry,
    keep_broken,
    manifest_path,
    parse_manifest,
    parse_provenance,
    provenance_path,
    render_manifest,
    render_provenance,
)
from fgd_core.errors import (
    DirectoryInitializationError,
    ValidationError,
)
from fgd_core.ingestion.plan import ARCHIVE_SUFFIX, IngestionRules

_NOT_REPAIRABLE_REASON = {
    "gitops_is_file": "a file is where the directory belongs; move or delete it by hand",
    "raw_is_file": "a file is where raw/ belongs; move or delete it by hand",
    "managed_is_file": "a file is where managed/ belongs; move or delete it by hand",
    "metadata_is_file": "a file is where .hnp/ belongs; move or delete it by hand",
    "symlink_in_raw": "symlinks are never ingested; replace it with the file it points to",
    "unsupported_file_in_raw": "rename it to .yaml/.yml or move it out of raw/ by hand",
    "unknown_managed_dir": "it may hold someone's files; move or delete it by hand",
    "unknown_managed_file": "it may be someone's file; move or delete it by hand",
}
_UNKNOWN_REASON = {
    "invalid_permissions": "unknown issue: file permissions have no meaning inside a git "
    "repository (git keeps only the executable bit)",
}

README_TEXT = """\
# raw/ — drop Hedgehog YAML here

Put Hedgehog fabric resources (VPC, VPCAttachment, Connection, Switch, …) in `.yaml` or
`.yml` files in this directory; a file may hold many documents separated by `---`.

On each sync FGD Sync validates every file. When every document in a file is valid, it writes
one normalized file per resource to `../managed/<kind-dir>/<name>.yaml` and renames the raw
file to `<file>.archived`. When any document is invalid, nothing from that file is written,
the file stays here and the sync reports each error (document index, line, code).

Rules: `apiVersion` `vpc.githedgehog.com/v1beta1` or `wiring.githedgehog.com/v1beta1`,
`metadata.name` lowercase letters, digits, `-` and `.`, namespace `default`.
This README, `.gitkeep`, `*.archived` and `*.sample` files are never ingested. Do not edit
`managed/` by hand: the next sync of the same resource overwrites it.
"""

SAMPLE_TEXT = """\
# Example created by FGD Sync (initialize with create_samples). Files ending in .sample are
# never ingested: to add a VPC like this one to your fabric, copy it to a name ending in
# .yaml (e.g. my-vpc.yaml), change the name, subnet and VLAN, and sync.
apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: example-vpc
  namespace: default
spec:
  subnets:
    default:
      subnet: 10.99.0.0/24
      gateway: 10.99.0.1
      vlan: 1999
      dhcp:
        enable: true
        range:
          start: 10.99.0.10
          end: 10.99.0.99
"""


# --------------------------------------------------------------------------- initialize


class _Builder:
    """Collects writes that never replace an existing file (except the manifest's own)."""

    def __init__(self, snapshot: Snapshot, scan: DirectoryScan) -> None:
        self.snapshot = snapshot
        self.scan = scan
        self.changes: dict[str, bytes] = {}

    def add_new(self, path: str, data: bytes) -> bool:
        """Write ``path`` only if nothing is there; False when it already exists."""
        if get_entry(self.snapshot, path) is not None or path in self.changes:
            return False
        self.blocked(path)
        self.changes[path] = data
        return True

    def blocked(self, path: str) -> None:
        reason = write_blocker(self.snapshot, path)
        if reason:
            raise DirectoryInitializationError(
                f"cannot create {api_path(path)}: {reason}",
                details={"path": api_path(path), "reason": reason},
            )

    def ensure_dir(self, rel: str, keeper: str = GITKEEP, data: bytes = b"") -> None:
        if not self.scan.exists(rel):
            self.add_new(self.scan.path(rel, keeper), data)

    def manifest(self, manifest: Manifest, *, rewrite: bool) -> str | None:
        """Write the manifest (keeping a broken one as .broken); the backup path if any."""
        path = manifest_path(self.scan.base)
        entry = get_entry(self.snapshot, path)
        if entry is not None and not rewrite:
            return None
        backup = None
        if entry is not None:
            try:
                old = parse_manifest(self.snapshot.read(entry)) if entry.is_regular else None
            except ValidationError:
                old = None
            if old is None:
                backup = keep_broken(self.snapshot, path, self.changes)
            else:
                manifest = dataclasses.replace(manifest, last_sync=old.last_sync)
        self.blocked(path)
        self.changes[path] = render_manifest(manifest)
        return backup

    def provenance(self, *, rewrite_broken: bool) -> str | None:
        path = provenance_path(self.scan.base)
        entry = get_entry(self.snapshot, path)
        if entry is None:
            self.add_new(path, render_provenance({}))
            return None
        if not rewrite_broken:
            return None
        try:
            if entry.is_regular:
                parse_provenance(self.snapshot.read(entry))
                return None
        except ValidationError:
            pass
        backup = keep_broken(self.snapshot, path, self.changes)
        self.changes[path] = render_provenance({})
        return backup


def _dirs_created(
    scan: DirectoryScan, changes: Mapping[str, bytes], subs: Iterable[str]
) -> list[str]:
    candidates = ["", "raw", "managed", *(f"managed/{s}" for s in subs), METADATA_DIR]
    out = []
    for rel in candidates:
        path = scan.path(rel)
        if not path:
            continue  # the repository root always exists
        prefix = path + "/"
        if not scan.exists(rel) and any(p.startswith(prefix) for p in changes):
            out.append(api_path(path))
    return out


def _files_created(snapshot: Snapshot, changes: Mapping[str, bytes]) -> list[str]:
    return [
        api_path(p)
        for p in changes
        if not p.endswith("/" + GITKEEP) and p != GITKEEP and get_entry(snapshot, p) is None
    ]


def initialize_changes(
    snapshot: Snapshot,
    gitops_dir: str,
    fabric_id: int,
    fabric_name: str,
    *,
    force: bool = False,
    create_samples: bool = True,
    required_subdirs: Iterable[str] = DEFAULT_REQUIRED_SUBDIRS,
    rules: IngestionRules | None = None,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The writes that initialize ``gitops_dir`` and the spec's initialize response.

    Already initialized (a manifest exists) and not ``force``: ``initialized`` false and no
    changes. ``force`` rewrites the manifest (keeping ``last_sync``; a broken one is kept as
    ``.broken``) and adds missing pieces; no raw or managed file is ever overwritten. The
    sample is only created in a ``raw/`` that holds no YAML yet (pending or archived).
    Raises DirectoryInitializationError (FGD_2003) when a file is in the way.
    """
    subs = check_subdirs(required_subdirs)
    scan = scan_directory(snapshot, gitops_dir)
    if scan.blocked:
        raise DirectoryInitializationError(
            f"cannot initialize {api_path(scan.base)}: {scan.blocked}",
            details={"path": api_path(scan.base), "reason": scan.blocked},
        )
    already = get_entry(snapshot, manifest_path(scan.base)) is not None
    if already and not force:
        return {}, {
            "success": True,
            "initialized": False,
            "directories_created": [],
            "files_created": [],
        }
    build = _Builder(snapshot, scan)
    rules = dataclasses.replace(rules or IngestionRules(), gitops_dir=scan.base)
    build.manifest(Manifest.for_fabric(fabric_id, fabric_name, scan.base, rules), rewrite=True)
    build.provenance(rewrite_broken=True)
    raw_yaml = [
        f for f in scan.under("raw") if raw_file_role(f, rules.supported_extensions) == "pending"
    ] + [f for f in scan.under("raw") if f.path.endswith(ARCHIVE_SUFFIX)]
    build.add_new(scan.path("raw", README), README_TEXT.encode())
    if create_samples and not raw_yaml:
        build.add_new(scan.path("raw", SAMPLE_NAME), SAMPLE_TEXT.encode())
    for sub in subs:
        build.ensure_dir(f"managed/{sub}")
    changes = build.changes
    return changes, {
        "success": True,
        "initialized": True,
        "directories_created": _dirs_created(scan, changes, subs),
        "files_created": _files_created(snapshot, changes),
    }


# ------------------------------------------------------------------------------- repair


def repair_changes(
    snapshot: Snapshot,
    gitops_dir: str,
    fabric_id: int,
    fabric_name: str,
    *,
    issues: Iterable[str] = (),
    auto_detect: bool = True,
    validation_mode: str = "strict",
    required_subdirs: Iterable[str] = DEFAULT_REQUIRED_SUBDIRS,
    supported_extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    rules: IngestionRules | None = None,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The writes that repair what can be repaired without losing data, and the response.

    Issues are detected with ``validate_directory``; with ``auto_detect`` every repairable
    one is repaired, otherwise only those named in ``issues``. Everything still wrong after
    the changes is in ``remaining_issues`` (each with a ``reason``), as is every requested
    name that is not an issue name (``unknown issue``, severity warning). ``success``: no
    remaining issue of severity error.
    """
    subs = check_subdirs(required_subdirs)
    requested = list(dict.fromkeys(issues))
    report = validate_directory(
        snapshot,
        gitops_dir,
        validation_mode=validation_mode,
        required_subdirs=subs,
        supported_extensions=supported_extensions,
        fabric=(rules or IngestionRules()).fabric,
    )
    scan = scan_directory(snapshot, gitops_dir)
    rules = dataclasses.replace(rules or IngestionRules(), gitops_dir=scan.base)
    fresh = Manifest.for_fabric(fabric_id, fabric_name, scan.base, rules)
    build = _Builder(snapshot, scan)
    repairs: list[dict[str, Any]] = []
    remaining: list[dict[str, Any]] = []

    for issue in report["issues"]:
        name = issue["issue"]
        if not auto_detect and name not in requested:
            remaining.append({**issue, "reason": "not requested (auto_detect is off)"})
            continue
        if name not in REPAIRABLE:
            remaining.append({**issue, "reason": _NOT_REPAIRABLE_REASON[name]})
            continue
        before = dict(build.changes)
        try:
            repairs.append(_repair_one(build, issue, fresh, subs))
        except DirectoryInitializationError as exc:
            build.changes = before
            remaining.append({**issue, "reason": exc.details.get("reason", exc.message)})

    for name in requested:
        if name not in ISSUES:
            reason = _UNKNOWN_REASON.get(name, "unknown issue")
            remaining.append(
                {
                    "issue": name,
                    "path": None,
                    "message": reason,
                    "severity": "warning",
                    "reason": reason,
                }
            )
    return build.changes, {
        "success": not any(i["severity"] == "error" for i in remaining),
        "repairs_made": repairs,
        "remaining_issues": remaining,
    }


def _repair_one(
    build: _Builder, issue: dict[str, Any], fresh: Manifest, subs: tuple[str, ...]
) -> dict[str, Any]:
    name, scan = issue["issue"], build.scan
    done: dict[str, Any] = {"issue": name, "action": "created_directory", "path": issue["path"]}
    if name == "missing_gitops_dir":
        build.manifest(fresh, rewrite=False)
        build.provenance(rewrite_broken=False)
        build.add_new(scan.path("raw", README), README_TEXT.encode())
        for sub in subs:
            build.ensure_dir(f"managed/{sub}")
        done["action"] = "initialized_directory"
    elif name == "missing_raw_dir":
        build.add_new(scan.path("raw", README), README_TEXT.encode())
    elif name == "missing_managed_dir":
        for sub in subs or ("vpcs",):
            build.ensure_dir(f"managed/{sub}")
    elif name == "missing_subdir":
        build.add_new(issue["path"].lstrip("/") + "/" + GITKEEP, b"")
    elif name == "missing_metadata_dir":
        build.manifest(fresh, rewrite=False)
        build.provenance(rewrite_broken=False)
    elif name in ("missing_manifest", "invalid_manifest"):
        backup = build.manifest(fresh, rewrite=True)
        done["action"] = "recreated_manifest" if backup else "created_manifest"
        if backup:
            done["kept_as"] = api_path(backup)
    elif name == "invalid_provenance":
        backup = build.provenance(rewrite_broken=True)
        done["action"] = "recreated_provenance"
        if backup:
            done["kept_as"] = api_path(backup)
    return done
