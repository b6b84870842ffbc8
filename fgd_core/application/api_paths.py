"""One path format wherever a path leaves FGD Sync through the API, the WebSocket, the CLI's
views or the read model: the spec's, repository-relative with a leading ``/``
(``/gitops/raw/x.yaml``, as in its file list and process-file examples).

Events and aggregates keep the git form (``gitops/raw/x.yaml``): the stored log is not
rewritten, and the sync pipeline works with git paths. The views convert at the edge
(docs/decisions.md, "One path format").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Keys whose value is a repository path, in file records and event payloads.
PATH_KEYS = ("file_path", "current_file", "archived_to", "file")
PATH_LIST_KEYS = ("target_files", "claimed")
# Keys whose value is a list of problems that may name a file.
PROBLEM_LIST_KEYS = ("errors", "warnings", "validation_errors")


def spec_path(path: str | None) -> str | None:
    """``gitops/raw/x.yaml`` → ``/gitops/raw/x.yaml``; already in that form, or None,
    unchanged."""
    if not path:
        return path
    return path if path.startswith("/") else "/" + path


def spec_paths(paths: Iterable[str]) -> list[str]:
    return [spec_path(p) or p for p in paths]


def with_spec_paths(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of a file record, problem or event payload with its paths in the spec's form
    (one level of problem lists included)."""
    out = dict(item)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = spec_path(value)
    for key in PATH_LIST_KEYS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = spec_paths(value)
    for key in PROBLEM_LIST_KEYS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [problem_paths(p) for p in value]
    return out


def problem_paths(problem: Any) -> Any:
    """An error or warning with its ``file`` in the spec's form (anything else unchanged)."""
    if isinstance(problem, dict) and isinstance(problem.get("file"), str):
        return {**problem, "file": spec_path(problem["file"])}
    return problem
