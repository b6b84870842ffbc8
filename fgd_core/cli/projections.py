"""``fgd projections rebuild|status|skip``: the REST API's read model from the command line.

Like every ``fgd`` command it builds the Application through bootstrap (embedded SQLite
unless ``HEDGEHOG_FGD_DATABASE_URL`` is set) and prints JSON; errors are the spec's error
body on stderr with exit status 1.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from fgd_core.cli.common import fgd_errors


@contextmanager
def _projections() -> Iterator[Any]:
    from fgd_api.projections import Projections
    from fgd_core.bootstrap import build_app

    app = build_app(source="fgd_cli")
    try:
        yield Projections(app)
    finally:
        app.close()


@click.group("projections")
def projections() -> None:
    """Read models behind the REST API (the spec's netbox_hedgehog_fgd_* tables)."""


@projections.command()
@fgd_errors
def status() -> None:
    """Position of the read model, the newest event in the store, the lag between, the event
    it is stuck at (exit status 2) and the events an operator skipped."""
    with _projections() as read_model:
        result = read_model.status()
    click.echo(json.dumps(result))
    if result["stuck"] is not None:
        click.echo(f"read model stuck at event {result['stuck']['position']} "
                   f"({result['stuck']['event_type']}): {result['stuck']['error']}", err=True)
        sys.exit(2)


@projections.command()
@click.argument("position", type=click.IntRange(min=1))
@fgd_errors
def skip(position: int) -> None:
    """Move the read model past event POSITION (only the next one, e.g. the event it is
    stuck at) without applying it; recorded as skipped, and skipped again by a rebuild."""
    with _projections() as read_model:
        result = {"skipped_event": read_model.skip(position), **read_model.status()}
    click.echo(json.dumps(result))


@projections.command()
@fgd_errors
def rebuild() -> None:
    """Drop the read tables and replay the whole event log into them."""
    started = time.monotonic()
    with _projections() as read_model:
        read_model.rebuild()
        result = {**read_model.status(), "seconds": round(time.monotonic() - started, 3)}
    click.echo(json.dumps(result))
