"""``fgd``: the command line. Every command builds its Application through bootstrap, so it
runs on the embedded SQLite default unless ``HEDGEHOG_FGD_DATABASE_URL`` is set.

A failing command prints the spec's error body as JSON on stderr and exits with status 1.
"""

from __future__ import annotations

import json
from typing import Any

import click

from fgd_core.cli_common import fgd_errors
from fgd_core.cli_common import print_json as _print_json


def _app() -> Any:
    from fgd_core.bootstrap import build_app

    return build_app(source="fgd_cli")


@click.group()
@click.version_option(package_name="fgd-sync")
def main() -> None:
    """FGD Sync: GitOps sync engine for Hedgehog fabrics."""


@main.command()
@click.option("--fabric", "fabric_id", type=int, help="Only events of this fabric.")
@click.option("--sync", "sync_id", help="Only events of this sync.")
@click.option("--after", type=int, default=0, show_default=True, help="Start after position.")
@click.option("--json", "as_json", is_flag=True, help="One envelope per line, as JSON.")
@fgd_errors
def events(fabric_id: int | None, sync_id: str | None, after: int, as_json: bool) -> None:
    """Replay the event log (for audits), in log order."""
    from fgd_core.replay import history

    app = _app()
    for recorded in history(app, fabric_id=fabric_id, sync_id=sync_id, after=after):
        env = recorded.envelope
        if as_json:
            _print_json(env)
        else:
            subject = env["payload"].get("sync_id", "")
            click.echo(
                f"{recorded.position:>8}  {env['timestamp']}  {env['event_type']:<22}"
                f" fabric={env['fabric_id']} {subject}"
            )


@main.command()
@click.argument("sync_id")
@fgd_errors
def status(sync_id: str) -> None:
    """The spec's sync status of SYNC_ID, as JSON."""
    from fgd_core.views import sync_status

    _print_json(sync_status(_app().get_sync(sync_id)))


@main.command()
@click.argument("fabric_id", type=int)
@click.option("--limit", type=int, default=10, show_default=True)
@fgd_errors
def history(fabric_id: int, limit: int) -> None:
    """The last syncs of FABRIC_ID, newest first, as JSON lines."""
    from itertools import islice

    from fgd_core.views import history_item

    for item in islice(_app().syncs_of(fabric_id), limit):
        _print_json(history_item(item))


@main.group()
def fabric() -> None:
    """Register and inspect fabrics."""


@fabric.command("register")
@click.argument("name")
@click.option("--repo", required=True, help="Git repository: path, file:// or https:// URL.")
@click.option("--branch", default="main", show_default=True)
@click.option("--path", "gitops_directory", default="gitops", show_default=True)
@click.option("--id", "fabric_id", type=int, help="Integer id (default: the next free one).")
@fgd_errors
def fabric_register(
    name: str, repo: str, branch: str, gitops_directory: str, fabric_id: int | None
) -> None:
    from fgd_core.views import fabric_view

    app = _app()
    registered = app.register_fabric(
        name, repo, branch=branch, gitops_directory=gitops_directory, fabric_id=fabric_id
    )
    _print_json(fabric_view(registered))


@fabric.command("list")
@fgd_errors
def fabric_list() -> None:
    from fgd_core.views import fabric_view

    for item in _app().list_fabrics():
        _print_json(fabric_view(item))


@main.group()
def config() -> None:
    """Check the configuration and its JSON Schema."""


@config.command("check")
@fgd_errors
def config_check() -> None:
    """Load fgd_config.yaml and HEDGEHOG_FGD_* variables; print the result (no secrets)."""
    from fgd_core.config import load_settings

    settings = load_settings()
    click.echo(repr(settings))


@config.command("schema")
@click.option("--write", type=click.Path(dir_okay=False), help="Write to this file.")
def config_schema(write: str | None) -> None:
    """Print (or write) the JSON Schema of fgd_config.yaml."""
    from fgd_core.config import config_json_schema, write_config_schema

    if write:
        write_config_schema(write)
    else:
        click.echo(json.dumps(config_json_schema(), indent=2, sort_keys=True))


# Command groups that live in modules of their own.
from fgd_core.cli_auth import token  # noqa: E402
from fgd_core.cli_bus import bus  # noqa: E402
from fgd_core.cli_gitops import directory, files, process  # noqa: E402
from fgd_core.cli_sync import example_repo, sync  # noqa: E402
from fgd_core.cli_validate import validate  # noqa: E402

for command in (sync, example_repo, directory, files, process, token, bus, validate):
    main.add_command(command)


def _load_plugin_commands() -> None:
    """Commands of the other packages (``fgd serve``, ``fgd worker``, ``fgd projections``)
    come in through the ``fgd.commands`` entry points: fgd_core imports neither of them."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="fgd.commands"):
        try:
            main.add_command(entry.load(), entry.name)
        except ImportError:  # a package that is not installed: its commands are absent
            continue


_load_plugin_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
