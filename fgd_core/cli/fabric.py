"""``fgd fabric …``: register, list, show, update, suspend, resume and delete fabrics, on the
database or (remote mode) through the HTTP API. Registration starts the fabric's first sync
(trigger ``fabric_created``), as the API's does; on the embedded default (no broker) this
process runs it, with a broker the workers do.

Every subcommand asks ``fabric_backend()`` for the object that does the work: ``LocalFabrics``
(the Application) or ``cli_remote.RemoteFabrics`` (the API). Both have one method per
subcommand returning the spec's fabric JSON, so a new subcommand adds a method to each and
prints what it returns; the command itself stays the same in both modes.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from fgd_core.cli.common import fgd_errors, remote_client
from fgd_core.cli.output import emit, output_option

LIST_COLUMNS = ("id", "name", "repository", "branch", "gitops_directory", "sync_enabled",
                "last_sync_status", "last_sync_at")


class LocalFabrics:
    """The fabric subcommands on this machine's database."""

    def __init__(self) -> None:
        from fgd_core.bootstrap import build_app

        self.app = build_app(source="fgd_cli")

    def list(self) -> list[dict[str, Any]]:
        from fgd_core.application.views import fabric_view

        return [fabric_view(item) for item in self.app.list_fabrics()]

    def show(self, fabric_id: int) -> dict[str, Any]:
        from fgd_core.application.views import fabric_view

        return fabric_view(self.app.get_fabric(fabric_id))

    def register(self, name: str, repository: str, fields: dict[str, Any],
                 fabric_id: int | None) -> dict[str, Any]:
        """Register (with the initial sync when ``sync_enabled``), run that sync here on
        the embedded default, and return the fabric's view with ``initial_sync``."""
        from fgd_core.application.views import fabric_view
        from fgd_core.bootstrap import build_runner
        from fgd_core.config import load_settings

        settings = load_settings()
        app, runner = build_runner(settings, source="fgd_cli")
        fabric = app.register_fabric(name, repository, fabric_id=fabric_id, initial_sync=True,
                                     **fields)
        first = fabric.running_sync_id
        initial: dict[str, Any] | None = None
        if first is not None:
            if not settings.broker_url:  # no worker would pick it up: run it to its end here
                runner.execute(first)
            sync = app.get_sync(first)
            initial = {"sync_id": first, "trigger": sync.trigger, "state": sync.state}
        elif fields.get("sync_enabled", True):  # every slot taken: the scheduler starts it
            initial = {"sync_id": None, "trigger": "fabric_created", "state": "deferred"}
        return {**fabric_view(app.get_fabric(fabric.fabric_id)), "initial_sync": initial}

    def update(self, fabric_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        from fgd_core.application.views import fabric_view

        return fabric_view(self.app.update_fabric(fabric_id, **changes))

    def suspend(self, fabric_id: int) -> dict[str, Any]:
        from fgd_core.application.views import fabric_view

        return fabric_view(self.app.suspend_fabric(fabric_id))

    def resume(self, fabric_id: int) -> dict[str, Any]:
        from fgd_core.application.views import fabric_view

        return fabric_view(self.app.resume_fabric(fabric_id))

    def describe(self, fabric_id: int) -> str:
        fabric = self.app.get_fabric(fabric_id)  # not found: said before asking anything
        return f"{fabric_id} ({fabric.name}, {fabric.repository})"

    def delete(self, fabric_id: int) -> dict[str, Any]:
        deleted = self.app.delete_fabric(fabric_id,
                                         reason=f"fabric {fabric_id} deleted from the CLI")
        return {"fabric_id": fabric_id, "name": deleted.name, "deleted": True,
                "cancelled_sync_id": deleted.cancelled_sync_id}


def fabric_backend() -> Any:
    """``RemoteFabrics`` in remote mode, else ``LocalFabrics``."""
    api = remote_client()
    if api is None:
        return LocalFabrics()
    from fgd_core.cli.remote import RemoteFabrics

    return RemoteFabrics(api)


@click.group()
def fabric() -> None:
    """Register, list, show, update, suspend, resume and delete fabrics."""


@fabric.command("register")
@click.argument("name")
@click.option("--repo", required=True, help="Git repository: path, file:// or https:// URL.")
@click.option("--branch", default="main", show_default=True, help="Branch to sync.")
@click.option("--path", "gitops_directory", default="gitops", show_default=True,
              help="GitOps directory inside the repository (holds raw/ and managed/).")
@click.option("--id", "fabric_id", type=int, help="Integer id (default: the next free one).")
@click.option("--sync-enabled/--sync-disabled", default=True, show_default=True,
              help="--sync-disabled registers it suspended: no sync at all until resumed.")
@output_option
@fgd_errors
def fabric_register(
    name: str, repo: str, branch: str, gitops_directory: str, fabric_id: int | None,
    sync_enabled: bool, output: str | None,
) -> None:
    """Register fabric NAME whose desired state lives in REPO, and start its first sync
    (trigger fabric_created; run by this process on the embedded default, by the workers
    with a broker), shown as initial_sync. Exit status 0 once registered, whatever that
    sync's outcome."""
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
              help="Whether the fabric syncs at all (--sync-disabled suspends it).")
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


@fabric.command("suspend")
@click.argument("fabric_id", type=int)
@output_option
@fgd_errors
def fabric_suspend(fabric_id: int, output: str | None) -> None:
    """Suspend fabric FABRIC_ID (sync_enabled false): no sync is started while suspended —
    scheduled and webhook syncs are not, a manual one is refused (FGD_3004); a running sync
    runs to its end."""
    emit(fabric_backend().suspend(fabric_id), output)


@fabric.command("resume")
@click.argument("fabric_id", type=int)
@output_option
@fgd_errors
def fabric_resume(fabric_id: int, output: str | None) -> None:
    """Resume fabric FABRIC_ID (sync_enabled true): syncs start again; the scheduler syncs
    it when due (at once if it never synced)."""
    emit(fabric_backend().resume(fabric_id), output)


@fabric.command("delete")
@click.argument("fabric_id", type=int)
@click.option("--yes", is_flag=True,
              help="Do not ask for confirmation (needed when stdin is not a terminal).")
@output_option
@fgd_errors
def fabric_delete(fabric_id: int, yes: bool, output: str | None) -> None:
    """Delete fabric FABRIC_ID: a running sync is cancelled first; its history stays in the
    event log (fgd events, fgd history); its repository is not touched. Its repository,
    branch and directory may then be registered again (as a new fabric, with a new id)."""
    backend = fabric_backend()
    if not yes:
        what = backend.describe(fabric_id)
        if not sys.stdin.isatty():
            raise click.UsageError("refusing to delete without --yes (stdin is not a terminal)")
        click.confirm(f"Delete fabric {what}?", abort=True)
    emit(backend.delete(fabric_id), output)
