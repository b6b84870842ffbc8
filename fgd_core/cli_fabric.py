"""``fgd fabric register|delete|suspend|resume``: a fabric's lifecycle from the command line
(``fgd fabric list`` lives in ``cli``). Registration starts the fabric's first sync
(trigger ``fabric_created``), as the API's does; on the embedded default (no broker) this
process runs it, with a broker the workers do."""

from __future__ import annotations

import sys
from typing import Any

import click

from fgd_core.cli_common import fgd_errors
from fgd_core.cli_output import emit, output_option


def register_fabric(name: str, repo: str, branch: str, gitops_directory: str,
                    fabric_id: int | None, sync_enabled: bool) -> dict[str, Any]:
    """Register (with the initial sync when ``sync_enabled``), run that sync here on the
    embedded default, and return the fabric's view with ``initial_sync``."""
    from fgd_core.bootstrap import build_runner
    from fgd_core.config import load_settings
    from fgd_core.views import fabric_view

    settings = load_settings()
    app, runner = build_runner(settings, source="fgd_cli")
    fabric = app.register_fabric(
        name, repo, branch=branch, gitops_directory=gitops_directory, fabric_id=fabric_id,
        sync_enabled=sync_enabled, initial_sync=True,
    )
    first = fabric.running_sync_id
    initial: dict[str, Any] | None = None
    if first is not None:
        if not settings.broker_url:  # no worker would pick it up: run it to its end here
            runner.execute(first)
        sync = app.get_sync(first)
        initial = {"sync_id": first, "trigger": sync.trigger, "state": sync.state}
    elif sync_enabled:  # every max_concurrent_syncs slot taken: the scheduler starts it
        initial = {"sync_id": None, "trigger": "fabric_created", "state": "deferred"}
    return {**fabric_view(app.get_fabric(fabric.fabric_id)), "initial_sync": initial}


@click.command("delete")
@click.argument("fabric_id", type=int)
@click.option("--yes", is_flag=True,
              help="Do not ask for confirmation (needed when stdin is not a terminal).")
@output_option
@fgd_errors
def fabric_delete(fabric_id: int, yes: bool, output: str | None) -> None:
    """Delete fabric FABRIC_ID: a running sync is cancelled first; its history stays in the
    event log (fgd events, fgd history); its repository is not touched. Its repository,
    branch and directory may then be registered again (as a new fabric, with a new id)."""
    from fgd_core.bootstrap import build_app

    app = build_app(source="fgd_cli")
    fabric = app.get_fabric(fabric_id)  # not found: said before asking anything
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("refusing to delete without --yes (stdin is not a terminal)")
        click.confirm(f"Delete fabric {fabric_id} ({fabric.name}, {fabric.repository})?",
                      abort=True)
    deleted = app.delete_fabric(fabric_id, reason=f"fabric {fabric_id} deleted from the CLI")
    emit({"fabric_id": fabric_id, "name": deleted.name, "deleted": True,
          "cancelled_sync_id": deleted.cancelled_sync_id}, output)


@click.command("suspend")
@click.argument("fabric_id", type=int)
@output_option
@fgd_errors
def fabric_suspend(fabric_id: int, output: str | None) -> None:
    """Suspend fabric FABRIC_ID (sync_enabled false): no sync is started while suspended —
    scheduled and webhook syncs are not, a manual one is refused (FGD_3004); a running sync
    runs to its end."""
    from fgd_core.bootstrap import build_app
    from fgd_core.views import fabric_view

    emit(fabric_view(build_app(source="fgd_cli").suspend_fabric(fabric_id)), output)


@click.command("resume")
@click.argument("fabric_id", type=int)
@output_option
@fgd_errors
def fabric_resume(fabric_id: int, output: str | None) -> None:
    """Resume fabric FABRIC_ID (sync_enabled true): syncs start again; the scheduler syncs
    it when due (at once if it never synced)."""
    from fgd_core.bootstrap import build_app
    from fgd_core.views import fabric_view

    emit(fabric_view(build_app(source="fgd_cli").resume_fabric(fabric_id)), output)


LIFECYCLE_COMMANDS = (fabric_delete, fabric_suspend, fabric_resume)
