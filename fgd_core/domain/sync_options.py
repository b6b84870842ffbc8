"""A sync's options: the spec's three flags, their defaults, and the check a request's options
pass before a ``SyncOperation`` records them."""

from __future__ import annotations

from typing import Any

from fgd_core.errors import ValidationError

OPTION_DEFAULTS: dict[str, bool] = {
    "force_refresh": False,
    "validate_only": False,
    "include_github_sync": True,
}


# Not one of the spec's options: the raw files (paths in the repository, e.g.
# ``gitops/raw/vpcs.yaml``) a sync is restricted to — the spec's "process one file" run by
# the workers. Present only when given, so every other sync's options stay the spec's three.
ONLY_PATHS = "only_paths"
MAX_ONLY_PATHS = 100


def normalize_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The spec's three options with defaults (and ``only_paths`` when given); anything
    else is a clear FGD_1003."""
    options = dict(options or {})
    allowed = {*OPTION_DEFAULTS, ONLY_PATHS}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValidationError(
            f"unknown sync option(s): {', '.join(unknown)}",
            details={"unknown_options": unknown, "allowed": sorted(allowed)},
        )
    if ONLY_PATHS in options:
        paths = options[ONLY_PATHS]
        if (not isinstance(paths, list) or not 0 < len(paths) <= MAX_ONLY_PATHS
                or not all(isinstance(p, str) and p and not p.startswith("/") for p in paths)):
            raise ValidationError(
                f"sync option {ONLY_PATHS!r} must be a list of 1 to {MAX_ONLY_PATHS} "
                "repository paths (no leading /)", details={"option": ONLY_PATHS})
        options[ONLY_PATHS] = sorted(set(paths))
    for key, value in options.items():
        if key != ONLY_PATHS and not isinstance(value, bool):
            raise ValidationError(
                f"sync option {key!r} must be a boolean", details={"option": key}
            )
    return {**OPTION_DEFAULTS, **options}
