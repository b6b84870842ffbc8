"""What the directory operations share: the GitOps directory as a snapshot holds it.

Layout constants, path helpers (repository paths vs the spec's API paths), argument checks,
``scan_directory`` (the files under the GitOps directory, or what blocks it), and how a file
under ``raw/`` is classified (``raw_file_role``). Used by validate (``directory``), initialize
and repair (``directory_repair``) and list files (``directory_files``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fgd_core.adapters.git_repo import FileEntry, Snapshot
from fgd_core.application.manifest import (
    get_entry,
    list_entries,
)
from fgd_core.errors import (
    ValidationError,
)
from fgd_core.ingestion.plan import ARCHIVE_SUFFIX

DEFAULT_REQUIRED_SUBDIRS = ("vpcs", "connections", "switches")
DEFAULT_EXTENSIONS = (".yaml", ".yml")
GITKEEP = ".gitkeep"
README = "README.md"
# Samples are never ingested: initializing a directory must not put a VPC on the fabric.
SAMPLE_SUFFIX = ".sample"
SAMPLE_NAME = "example-vpc.yaml" + SAMPLE_SUFFIX


def clean_gitops_dir(gitops_dir: str) -> str:
    base = gitops_dir.strip("/")
    parts = base.split("/") if base else []
    if "\\" in base or "\0" in base or any(p in ("", ".", "..", ".git") for p in parts):
        raise ValidationError(
            f"gitops directory {gitops_dir!r} is not a clean repository-relative path",
            details={"field": "gitops_dir"},
        )
    return base


def join_path(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def api_path(path: str) -> str:
    """``gitops/raw`` → ``/gitops/raw`` (the spec's form)."""
    return "/" + path.strip("/")


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValidationError(
            f"{name} must be one of {', '.join(choices)}, got {value!r}",
            details={"field": name, "value": value},
        )


def check_subdirs(required_subdirs: Iterable[str]) -> tuple[str, ...]:
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


def write_blocker(snapshot: Snapshot, path: str) -> str | None:
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
class DirectoryScan:
    """The GitOps directory as the snapshot holds it."""

    base: str
    blocked: str | None  # the GitOps path (or a parent) is a file
    files: tuple[FileEntry, ...]

    def under(self, rel: str) -> list[FileEntry]:
        prefix = join_path(self.base, rel) + "/"
        return [f for f in self.files if f.path.startswith(prefix)]

    def path(self, *rel: str) -> str:
        return join_path(self.base, *rel)

    def exists(self, rel: str = "") -> bool:
        return bool(self.under(rel)) if rel else bool(self.files)


def scan_directory(snapshot: Snapshot, gitops_dir: str) -> DirectoryScan:
    base = clean_gitops_dir(gitops_dir)
    blocked = None
    parts = base.split("/") if base else []
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        entry = get_entry(snapshot, prefix)
        if entry is not None:
            kind = "a symlink" if entry.is_symlink else "a file"
            blocked = f"{api_path(prefix)} is {kind}, not a directory"
            break
    return DirectoryScan(base, blocked, () if blocked else list_entries(snapshot, base))


def make_issue(name: str, path: str, message: str, severity: str) -> dict[str, Any]:
    return {"issue": name, "path": api_path(path), "message": message, "severity": severity}


def file_kind(snapshot: Snapshot, path: str) -> str | None:
    entry = get_entry(snapshot, path)
    if entry is None:
        return None
    return "a symlink" if entry.is_symlink else "a file"
