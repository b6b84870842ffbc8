"""One output option for every ``fgd`` command: ``-o table|json|yaml``.

The default is a table on a terminal and JSON otherwise, so a person reads a table and a
script piping the output gets JSON without asking. JSON is one compact document per line (a
list prints one line per item, ready for ``jq``); YAML is one document (a list stays a list).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "yaml")


def output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Adds ``-o/--output`` (parameter ``output``) to a command."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(FORMATS),
        default=None,
        help="Output format: table (the default on a terminal), json (the default otherwise: "
        "one JSON document per line), yaml.",
    )(func)


def chosen(output: str | None) -> str:
    return output or ("table" if sys.stdout.isatty() else "json")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def emit(
    value: dict[str, Any] | Sequence[dict[str, Any]],
    output: str | None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Print one object (a dict) or a list of objects in the chosen format. ``columns``
    picks and orders a list's table columns (default: the keys of the first item)."""
    fmt = chosen(output)
    if fmt == "json":
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            click.echo(json.dumps(item, ensure_ascii=False, default=str))
        return
    if fmt == "yaml":
        plain = json.loads(json.dumps(value, default=str))  # tuples, datetimes → plain YAML
        click.echo(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True), nl=False)
        return
    table = Table(title=title)
    if isinstance(value, dict):
        table.add_column("field")
        table.add_column("value", overflow="fold")
        for key, item in value.items():
            table.add_row(str(key), _cell(item))
    else:
        names = list(columns or (value[0].keys() if value else ()))
        for name in names:
            table.add_column(name, overflow="fold")
        for row in value:
            table.add_row(*(_cell(row.get(name)) for name in names))
    # Piped into a file or a pager, a table is not folded to 80 columns.
    Console(width=None if sys.stdout.isatty() else 240).print(table)
