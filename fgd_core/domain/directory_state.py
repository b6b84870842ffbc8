"""What a directory validation says about a fabric's GitOps directory, for the Fabric's
``gitops_initialized`` (the aggregate and the read model apply the same rule)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Issues that say the directory was never initialized (no valid manifest where it belongs).
NOT_INITIALIZED = frozenset(
    {"missing_gitops_dir", "gitops_is_file", "missing_metadata_dir", "metadata_is_file",
     "missing_manifest", "invalid_manifest"}
)


def initialized_by(issues: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a validation with these issues found the directory initialized."""
    return not any(i.get("issue") in NOT_INITIALIZED for i in issues)
