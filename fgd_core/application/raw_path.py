"""Checks of a fabric's GitOps directory and of one raw file, on a fetched Snapshot, made
before anything is started: the spec's directory errors where they belong.

- ``raw_file_to_process``: the file "Process Single File" names (REST, ``fgd process``) —
  a path outside ``raw/`` or a file no sync ingests is a bad request (FGD_1003, 422); a
  GitOps or ``raw/`` directory missing at the branch head is FGD_2001; a file missing from
  it is not found (FGD_1003, 404). Nothing is started for any of them.
- ``require_gitops_directory``: FGD_2001 when the GitOps directory does not exist at the
  branch head (for a sync's validation stage; see docs/decisions.md).
"""

from __future__ import annotations

from fgd_core.adapters.git_repo import Snapshot
from fgd_core.application.directory_scan import raw_file_role
from fgd_core.errors import DirectoryNotFoundError, NotFoundError, ValidationError
from fgd_core.ingestion.plan_inputs import IngestionRules

# raw_file_role's answers a sync ingests (a symlink is discovered, then fails with its error)
INGESTED_ROLES = ("pending", "symlink")


def repository_path(file_path: str) -> str:
    """``/gitops/raw/x.yaml`` (the spec's form) or ``gitops/raw/x.yaml`` → the git path;
    refused (FGD_1003) when it is not a clean repository-relative path."""
    path = file_path[1:] if file_path.startswith("/") else file_path
    parts = path.split("/")
    if not path or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise ValidationError(
            f"file_path {file_path!r} is not a clean repository path (no '.', '..' or '//')",
            details={"field": "file_path", "file_path": file_path},
        )
    return path


def require_gitops_directory(snapshot: Snapshot, rules: IngestionRules, what: str = "") -> None:
    """FGD_2001 when nothing lies under the GitOps directory (or ``what`` under it, e.g.
    ``raw``) at the snapshot's head — git keeps no empty directories."""
    base = rules.base.rstrip("/")
    path = f"{base}/{what}".strip("/") if what else base
    if snapshot.head is not None and (not path or snapshot.files(path + "/")):
        return
    shown = "/" + path
    raise DirectoryNotFoundError(
        f"{shown} does not exist on branch {snapshot.branch}"
        + ("" if what else ": initialize it (fgd directory initialize)"),
        details={"path": shown, "branch": snapshot.branch},
    )


def raw_file_to_process(snapshot: Snapshot, rules: IngestionRules, file_path: str) -> str:
    """The git path of the pending raw file ``file_path`` names, or the error to answer."""
    path = repository_path(file_path)
    raw_prefix = rules.raw_prefix
    shown = "/" + path
    if not path.startswith(raw_prefix):
        raise ValidationError(
            f"{shown} is not under /{raw_prefix}: only raw files are processed",
            details={"field": "file_path", "file_path": shown, "raw_directory": "/" + raw_prefix},
        )
    entry = snapshot.get(path)
    if entry is None:
        require_gitops_directory(snapshot, rules, "raw")
        raise NotFoundError(
            f"{shown} not found on branch {snapshot.branch}",
            details={"file_path": shown, "branch": snapshot.branch},
        )
    if raw_file_role(entry, rules.supported_extensions) not in INGESTED_ROLES:
        raise ValidationError(
            f"{shown} is not a file a sync ingests (README.md, .gitkeep, *.archived, *.sample "
            f"and extensions other than {', '.join(rules.supported_extensions)} never are)",
            details={"field": "file_path", "file_path": shown},
        )
    return path
