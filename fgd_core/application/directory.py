"""The spec's directory operations (validate, initialize, repair) on a Snapshot; list files is
in ``directory_files``.

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

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fgd_core.adapters.git_repo import FileEntry, Snapshot
from fgd_core.application.manifest import (
    METADATA_DIR,
    Manifest,
    get_entry,
    keep_broken,
    list_entries,
    manifest_path,
    parse_manifest,
    parse_provenance,
    provenance_path,
    render_manifest,
    render_provenance,
)
from fgd_core.errors import (
    DirectoryInitializationError,
    FGDError,
    ValidationError,
)
from fgd_core.ingestion.hedgehog.fabric_check import managed_objects, tree_errors
from fgd_core.ingestion.hedgehog.fabric_config import DEFAULT_FABRIC_CONFIG, FabricConfig
from fgd_core.ingestion.kinds import KINDS
from fgd_core.ingestion.plan import ARCHIVE_SUFFIX, IngestionRules

DEFAULT_REQUIRED_SUBDIRS = ("vpcs", "connections", "switches")
DEFAULT_EXTENSIONS = (".yaml", ".yml")
GITKEEP = ".gitkeep"
README = "README.md"
# Samples are never ingested: initializing a directory must not put a VPC on the fabric.
SAMPLE_SUFFIX = ".sample"
SAMPLE_NAME = "example-vpc.yaml" + SAMPLE_SUFFIX

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


# ------------------------------------------------------------------------------ helpers


def _clean_dir(gitops_dir: str) -> str:
    base = gitops_dir.strip("/")
    parts = base.split("/") if base else []
    if "\\" in base or "\0" in base or any(p in ("", ".", "..", ".git") for p in parts):
        raise ValidationError(
            f"gitops directory {gitops_dir!r} is not a clean repository-relative path",
            details={"field": "gitops_dir"},
        )
    return base


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def api_path(path: str) -> str:
    """``gitops/raw`` → ``/gitops/raw`` (the spec's form)."""
    return "/" + path.strip("/")


def _check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValidationError(
            f"{name} must be one of {', '.join(choices)}, got {value!r}",
            details={"field": name, "value": value},
        )


def _check_subdirs(required_subdirs: Iterable[str]) -> tuple[str, ...]:
    subs = tuple(required_subdirs)
    for sub in subs:
        if not isinstance(sub, str) or not sub or "/" in sub or sub in (".", "..", ".git"):
            raise ValidationError(
                f"required subdirectory {sub!r} must be a plain directory name",
                details={"field": "required_subdirs"},
            )
    return subs


def snapshot_time(snapshot: Snapshot) -> str | None:
    """The commit time of the snapshot (git keeps no per-file modification time)."""
    seconds = snapshot.commit_time()
    if seconds is None:
        return None
    when = datetime.fromtimestamp(seconds, UTC)
    return when.isoformat().replace("+00:00", "Z")


def raw_file_role(entry: FileEntry, supported_extensions: Iterable[str]) -> str:
    """What a file under raw/ is: ``pending``, ``expected``, ``symlink`` or ``unsupported``.

    ``expected`` files (README.md, .gitkeep, *.archived, *.sample) are never ingested nor
    issues.
    """
    name = entry.path.rsplit("/", 1)[-1]
    if entry.is_symlink:
        return "symlink"
    if not entry.is_regular:
        return "unsupported"  # a submodule
    if name == GITKEEP or name.lower() == README.lower() or name.endswith(SAMPLE_SUFFIX):
        return "expected"
    if entry.path.endswith(ARCHIVE_SUFFIX):
        return "expected"
    if name.lower().endswith(tuple(e.lower() for e in supported_extensions)):
        return "pending"
    return "unsupported"


def _blocker(snapshot: Snapshot, path: str) -> str | None:
    """Why ``path`` cannot be written as a file without removing something, or None."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if get_entry(snapshot, prefix) is not None:
            return f"{api_path(prefix)} is a file, not a directory"
    if list_entries(snapshot, path):
        return f"{api_path(path)} is a directory"
    return None


@dataclasses.dataclass
class _Scan:
    """The GitOps directory as the snapshot holds it."""

    base: str
    blocked: str | None  # the GitOps path (or a parent) is a file
    files: tuple[FileEntry, ...]

    def under(self, rel: str) -> list[FileEntry]:
        prefix = _join(self.base, rel) + "/"
        return [f for f in self.files if f.path.startswith(prefix)]

    def path(self, *rel: str) -> str:
        return _join(self.base, *rel)

    def exists(self, rel: str = "") -> bool:
        return bool(self.under(rel)) if rel else bool(self.files)


def _scan(snapshot: Snapshot, gitops_dir: str) -> _Scan:
    base = _clean_dir(gitops_dir)
    blocked = None
    parts = base.split("/") if base else []
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        entry = get_entry(snapshot, prefix)
        if entry is not None:
            kind = "a symlink" if entry.is_symlink else "a file"
            blocked = f"{api_path(prefix)} is {kind}, not a directory"
            break
    return _Scan(base, blocked, () if blocked else list_entries(snapshot, base))


def _issue(name: str, path: str, message: str, severity: str) -> dict[str, Any]:
    return {"issue": name, "path": api_path(path), "message": message, "severity": severity}


def _is_file(snapshot: Snapshot, path: str) -> str | None:
    entry = get_entry(snapshot, path)
    if entry is None:
        return None
    return "a symlink" if entry.is_symlink else "a file"


# ----------------------------------------------------------------------------- validate


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
    _check_choice("validation_mode", validation_mode, ("strict", "lenient"))
    subs = _check_subdirs(required_subdirs)
    extensions = tuple(supported_extensions)
    known_dirs = set(kind_directories or {k.directory for k in KINDS.values()})
    mode_severity = "error" if validation_mode == "strict" else "warning"
    scan = _scan(snapshot, gitops_dir)
    issues: list[dict[str, Any]] = []
    raw = {"exists": False, "file_count": 0, "pending_files": 0}
    managed: dict[str, Any] = {"exists": False, "file_count": 0, "subdirectories": []}
    metadata: dict[str, Any] = {"exists": False, "manifest_valid": False, "last_updated": None}

    if scan.blocked:
        issues.append(_issue("gitops_is_file", scan.base, scan.blocked, "error"))
    elif not scan.exists():
        issues.append(
            _issue("missing_gitops_dir", scan.base, "the GitOps directory is empty", "error")
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
    scan: _Scan,
    out: dict[str, Any],
    extensions: tuple[str, ...],
    mode_severity: str,
) -> list[dict[str, Any]]:
    path = scan.path("raw")
    what = _is_file(snapshot, path)
    if what:
        return [_issue("raw_is_file", path, f"raw is {what}, not a directory", "error")]
    files = scan.under("raw")
    if not files:
        return [_issue("missing_raw_dir", path, "raw/ does not exist", "error")]
    issues = []
    out["exists"] = True
    out["file_count"] = sum(1 for f in files if not f.path.endswith("/" + GITKEEP))
    for f in files:
        role = raw_file_role(f, extensions)
        if role == "pending":
            out["pending_files"] += 1
        elif role == "symlink":
            msg = "symlinks are never ingested (the target could be anywhere)"
            issues.append(_issue("symlink_in_raw", f.path, msg, "error"))
        elif role == "unsupported":
            msg = (
                "a submodule is not a file"
                if not f.is_regular
                else f"not ingested: supported extensions are {', '.join(extensions)}"
            )
            issues.append(_issue("unsupported_file_in_raw", f.path, msg, mode_severity))
    return issues


def _check_managed(
    snapshot: Snapshot,
    scan: _Scan,
    out: dict[str, Any],
    subs: tuple[str, ...],
    known_dirs: set[str],
    mode_severity: str,
) -> list[dict[str, Any]]:
    path = scan.path("managed")
    what = _is_file(snapshot, path)
    if what:
        return [_issue("managed_is_file", path, f"managed is {what}, not a directory", "error")]
    files = scan.under("managed")
    if not files:
        return [_issue("missing_managed_dir", path, "managed/ does not exist", "error")]
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
            issues.append(_issue("unknown_managed_file", f.path, msg, "warning"))
    out["subdirectories"] = sorted(present)
    for sub in subs:
        # A kind's directory is created by the first sync that writes one of its objects
        # (a VPC-only fabric has no connections/): missing, it is not an issue.
        if sub not in present and sub not in known_dirs:
            msg = f"required subdirectory managed/{sub}/ does not exist"
            issues.append(_issue("missing_subdir", _join(path, sub), msg, mode_severity))
    for sub in sorted(present):
        if sub not in known_dirs:
            msg = f"managed/{sub}/ is not the directory of any supported kind"
            issues.append(_issue("unknown_managed_dir", _join(path, sub), msg, "warning"))
    return issues


def _check_fabric(snapshot: Snapshot, scan: _Scan, fabric: FabricConfig) -> list[dict[str, Any]]:
    """managed/ as one fabric, by Hedgehog's cross-object rules: what a hand edit broke
    (a dangling reference after a connection file was deleted, a reused VLAN …)."""
    prefix = scan.path("managed") + "/"
    entries = ((f.path, f.blob_id) for f in scan.under("managed") if not f.is_symlink)
    objects = managed_objects(entries, snapshot.read_blob, prefix)
    return [
        _issue("fabric_rule_broken", obj.source,
               f"{obj.kind} {obj.name!r}: {e.message} ({e.rule}, {e.field})", "error")
        for obj, e in tree_errors(objects, fabric)
    ]


def _check_metadata(snapshot: Snapshot, scan: _Scan, out: dict[str, Any]) -> list[dict[str, Any]]:
    path = scan.path(METADATA_DIR)
    what = _is_file(snapshot, path)
    if what:
        return [_issue("metadata_is_file", path, f".hnp is {what}, not a directory", "error")]
    if not scan.under(METADATA_DIR):
        return [_issue("missing_metadata_dir", path, ".hnp/ does not exist", "error")]
    out["exists"] = True
    issues = []
    mpath = manifest_path(scan.base)
    entry = get_entry(snapshot, mpath)
    if entry is None:
        issues.append(_issue("missing_manifest", mpath, "manifest.yaml does not exist", "error"))
    elif not entry.is_regular:
        issues.append(_issue("invalid_manifest", mpath, "manifest.yaml is a symlink", "error"))
    else:
        try:
            manifest = parse_manifest(snapshot.read(entry))
        except FGDError as exc:
            issues.append(_issue("invalid_manifest", mpath, exc.message, "error"))
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
            issues.append(_issue("invalid_provenance", ppath, exc.message, "warning"))
    return issues


# --------------------------------------------------------------------------- initialize


class _Builder:
    """Collects writes that never replace an existing file (except the manifest's own)."""

    def __init__(self, snapshot: Snapshot, scan: _Scan) -> None:
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
        reason = _blocker(self.snapshot, path)
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


def _dirs_created(scan: _Scan, changes: Mapping[str, bytes], subs: Iterable[str]) -> list[str]:
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
    subs = _check_subdirs(required_subdirs)
    scan = _scan(snapshot, gitops_dir)
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
    subs = _check_subdirs(required_subdirs)
    requested = list(dict.fromkeys(issues))
    report = validate_directory(
        snapshot,
        gitops_dir,
        validation_mode=validation_mode,
        required_subdirs=subs,
        supported_extensions=supported_extensions,
        fabric=(rules or IngestionRules()).fabric,
    )
    scan = _scan(snapshot, gitops_dir)
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


# Public names for directory_files (the same objects).
check_choice, scan = _check_choice, _scan
Scan = _Scan
