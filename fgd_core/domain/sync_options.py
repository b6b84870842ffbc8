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


def normalize_options(options: dict[str, Any] | None) -> dict[str, bool]:
    """The spec's three options with defaults; anything else is a clear FGD_1003."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ValidationError(
            f"unknown sync option(s): {', '.join(unknown)}",
            details={"unknown_options": unknown, "allowed": sorted(OPTION_DEFAULTS)},
        )
    for key, value in options.items():
        if not isinstance(value, bool):
            raise ValidationError(
                f"sync option {key!r} must be a boolean", details={"option": key}
            )
    return {**OPTION_DEFAULTS, **options}
