"""``fgd fabric …``: register, list, show and update fabrics, on the database or (remote mode)
through the HTTP API.

Every subcommand asks ``fabric_backend()`` for the object that does the work: ``LocalFabrics``
(the Application) or ``cli_remote.RemoteFabrics`` (the API). Both have one method per
subcommand returning the spec's fabric JSON, so a new subcommand adds a method to each and
prints what it returns; the command itself stays the same in both modes.
"""

from __future__ import annotations

from typing import Any

import click

from fgd_core.cli_common import fgd_errors, remote_client
from fgd_core.cli_output import emit, output_option

LIST_COLUMNS = ("id", "name", "repository", "branch", "gitops_directory", "sync_enabled",
                "last_sync_status", "last_sync_at")


class LocalFabrics:
    """The fabric subcommands on this machine's database."""

    def __init__(self) -> None:
        from fgd_core.bootstrap import build_app

        self.app = build_app(source="fgd_cli")

    def list(self) -> list[dict[str, Any]]:
        from fgd_core.views import fabric_view

        return [fabric_view(item) for item in self.app.list_fabrics()]

    def show(self, fabric_id: int) -> dict[str, Any]:
        from fgd_core.views import fabric_view

        return fabric_view(self.app.get_fabric(fabric_id))

    def register(self, name: str, repository: str, fields: dict[str, Any],
                 fabric_id: int | None) -> dict[str, Any]:
        from fgd_core.views import fabric_view

        return fabric_view(self.app.register_fabric(name, repository, fabric_id=fabric_id,
                                                    **fields))

    def update(self, fabric_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        from fgd_core.views import fabric_view

        return fabric_view(self.app.update_fabric(fabric_id, **changes))


def fabric_backend() -> Any:
    """``RemoteFabrics`` in remote mode, else ``LocalFabrics``."""
    api = remote_client()
    if api is None:
        return LocalFabrics()
    from fgd_core.cli_remote import RemoteFabrics

    return RemoteFabrics(api)


@click.group()
def fabric() -> None:
    """Register, list, show and update fabrics."""


@fabric.command("register")
@click.argument("name")
@click.option("--repo", required=True, help="Git repository: path, file:// or https:// URL.")
@click.option("--branch", default="main", show_default=True, help="Branch to sync.")
@click.option("--path", "gitops_directory", default="gitops", show_default=True,
              help="GitOps directory inside the repository (holds raw/ and managed/).")
@click.option("--id", "fabric_id", type=int, help="Integer id (default: the next free one).")
@click.option("--sync-enabled/--sync-disabled", default=True, show_default=True,
              help="Whether scheduled and webhook syncs run (manual syncs always can).")
@output_option
@fgd_errors
def fabric_register(
    name: str, repo: str, branch: str, gitops_directory: str, fabric_id: int | None,
    sync_enabled: bool, output: str | None,
) -> None:
    """Register fabric NAME whose desired state lives in REPO."""
    fields = {"branch": branch, "gitops_directory": gitops_directory,
              "sync_enabled": sync_enabled}
    emit(fabric_backend().register(name, repo, fields, fabric_id), output)


@fabric.command("list")
@output_option
@fgd_errors
def fabric_list(output: str | None) -> None:
    """Every registered fabric with its settings and last sync."""
    emit(fabric_backend().list(), output, columns=LIST_COLUMNS)


@fabric.command("show")
@click.argument("fabric_id", type=int)
@output_option
@fgd_errors
def fabric_show(fabric_id: int, output: str | None) -> None:
    """FABRIC_ID's settings, directory status and sync counts."""
    emit(fabric_backend().show(fabric_id), output)


@fabric.command("update")
@click.argument("fabric_id", type=int)
@click.option("--name", help="New name.")
@click.option("--repo", "repository", help="New git repository.")
@click.option("--branch", help="New branch.")
@click.option("--path", "gitops_directory", help="New GitOps directory.")
@click.option("--sync-enabled/--sync-disabled", "sync_enabled", default=None,
              help="Whether scheduled and webhook syncs run.")
@click.option("--auto-sync/--no-auto-sync", "auto_sync_on_change", default=None,
              help="Sync when the repository changes (webhook).")
@click.option("--interval", "sync_interval_minutes", type=int,
              help="Minutes between scheduled syncs.")
@output_option
@fgd_errors
def fabric_update(fabric_id: int, output: str | None, **changes: Any) -> None:
    """Change FABRIC_ID's settings (only the options given)."""
    given = {key: value for key, value in changes.items() if value is not None}
    if not given:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    emit(fabric_backend().update(fabric_id, given), output)
