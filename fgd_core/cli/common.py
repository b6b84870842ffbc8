"""What every ``fgd`` command module shares: JSON output and FGDError → the spec's error
body on stderr with exit status 1. Kept apart from ``cli`` so command modules can be
imported on their own (no import cycle)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from fgd_core.errors import FGDError, NotFoundError


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, sort_keys=False))


def error_line(exc: FGDError) -> str:
    """An error as a person reads it: code, what kind, message, and the field it names."""
    kind = " (not found)" if isinstance(exc, NotFoundError) else ""
    field = exc.details.get("field")
    where = f" [field {field}]" if field else ""
    return f"error {exc.code}{kind}: {exc.message}{where}"


def fgd_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn FGDError into exit status 1 with, on stderr, a readable line on a terminal and
    the spec's error body (JSON) otherwise, for scripts."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FGDError as exc:
            text = error_line(exc) if sys.stderr.isatty() else json.dumps(exc.to_body())
            click.echo(text, err=True)
            sys.exit(1)

    return wrapper


def remote_client() -> Any | None:
    """The HTTP API client when the command runs in remote mode (``fgd --api URL`` or
    ``HEDGEHOG_FGD_API_URL``; token from ``HEDGEHOG_FGD_TOKEN``), else None: local mode."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    url = obj.get("api") if isinstance(obj, dict) else None
    if not url:
        return None
    from fgd_core.cli.remote import ApiClient
    from fgd_core.config import runtime_settings

    token = runtime_settings().api_token
    return ApiClient(url, token.get_secret_value() if token else "")
