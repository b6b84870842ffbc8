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

from fgd_core.errors import FGDError


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, sort_keys=False))


def fgd_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn FGDError into the spec's error body on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FGDError as exc:
            click.echo(json.dumps(exc.to_body()), err=True)
            sys.exit(1)

    return wrapper


