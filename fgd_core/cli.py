"""``fgd``: the command line. Every command builds its Application through bootstrap, so it
runs on the embedded SQLite default unless ``HEDGEHOG_FGD_DATABASE_URL`` is set.

A failing command prints the spec's error body as JSON on stderr and exits with status 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from fgd_core.cli_common import fgd_errors
from fgd_core.cli_output import chosen, emit, output_option


def _app() -> Any:
    from fgd_core.bootstrap import build_app

    return build_app(source="fgd_cli")


@click.group(context_settings={"max_content_width": 110})
@click.version_option(package_name="fgd-sync")
def main() -> None:
    """FGD Sync: GitOps sync engine for Hedgehog fabrics."""


# Bookkeeping events: the fabric lock, sync capacity, id registries and progress ticks.
# ``fgd events`` shows them with ``--all`` only (they are in the log, and replay needs them).
INTERNAL_EVENTS = frozenset({
    "fabric.syncing", "fabric.synced", "capacity.opened", "capacity.acquired",
    "capacity.released", "registry.opened", "registry.added", "registry.renamed",
    "tokenregistry.opened", "tokenregistry.added", "sync.progress",
})


def event_row(position: int, env: dict[str, Any]) -> dict[str, Any]:
    """One event as a person reads it: what happened, to which sync, stage or file."""
    payload = env["payload"]
    detail = [
        str(payload[key])
        for key in ("stage", "file_path", "final_state", "state", "action", "name", "error_code",
                    "message")
        if payload.get(key) not in (None, "")
    ]
    return {
        "position": position,
        "time": env["timestamp"],
        "fabric": env["fabric_id"] or "",
        "event": env["event_type"],
        "sync": str(payload.get("sync_id", ""))[:8],
        "detail": " ".join(detail)[:120],
    }


@main.command()
@click.option("--fabric", "fabric_id", type=int, help="Only events of this fabric.")
@click.option("--sync", "sync_id", help="Only events of this sync (its own events).")
@click.option("--after", type=int, default=0, show_default=True,
              help="Start after this log position.")
@click.option("--all", "show_all", is_flag=True,
              help="Include bookkeeping events (fabric lock, capacity, registries, progress).")
@click.option("--json", "as_json", is_flag=True, help="Same as -o json: whole envelopes.")
@output_option
@fgd_errors
def events(fabric_id: int | None, sync_id: str | None, after: int, show_all: bool,
           as_json: bool, output: str | None) -> None:
    """Replay the event log (for audits), in log order.

    The table shows one line per event (position, time, fabric, type, sync, stage/file/outcome);
    json and yaml print the whole envelopes. Log order is the order events were stored in;
    an event's time is when it was created, so times of events saved together can interleave.
    """
    from fgd_core.replay import history

    fmt = "json" if as_json else chosen(output)
    app = _app()
    recorded = [
        r for r in history(app, fabric_id=fabric_id, sync_id=sync_id, after=after)
        if show_all or r.envelope["event_type"] not in INTERNAL_EVENTS
    ]
    if fmt == "table":
        emit([event_row(r.position, r.envelope) for r in recorded], fmt)
    else:
        emit([r.envelope for r in recorded], fmt)


ENDING_EVENTS = frozenset({"sync.completed", "sync.failed", "sync.cancelled", "sync.timeout"})


def follow(app: Any, sync_id: str, fmt: str, poll: float = 0.25) -> None:
    """Print SYNC_ID's events as they are stored (from its first one) until it ends: a line
    per event on a table output, whole envelopes as JSON lines otherwise."""
    import time

    from fgd_core.replay import history

    first = app.position_of(sync_id, 1)
    position = (first or 1) - 1
    while True:
        ended = False
        for recorded in history(app, sync_id=sync_id, after=position):
            position = recorded.position
            env = recorded.envelope
            if fmt == "table":
                row = event_row(recorded.position, env)
                click.echo(f"{row['time'][11:19]}  {row['event']:<18} {row['detail']}")
            else:
                emit(env, fmt)
            ended = ended or env["event_type"] in ENDING_EVENTS
        if ended:
            return
        time.sleep(poll)


@main.command()
@click.argument("sync_id")
@click.option("--watch", is_flag=True,
              help="Follow the sync live until it ends, one line per event, then its status; "
              "exit status as fgd sync's (0, 1, or 3 when raw files are failing).")
@output_option
@fgd_errors
def status(sync_id: str, watch: bool, output: str | None) -> None:
    """The spec's sync status of SYNC_ID."""
    from fgd_core.cli_sync import exit_code, still_failing
    from fgd_core.domain.sync_operation import COMPLETED
    from fgd_core.views import sync_status

    app = _app()
    sync = app.get_sync(sync_id)
    if watch:
        follow(app, sync.sync_id, chosen(output))
        sync = app.get_sync(sync.sync_id)
    emit(sync_status(sync), output)
    if watch:
        sys.exit(exit_code(sync.state == COMPLETED, still_failing(sync)))


@main.command()
@click.argument("fabric_id", type=int)
@click.option("--limit", type=int, default=10, show_default=True, help="How many syncs.")
@output_option
@fgd_errors
def history(fabric_id: int, limit: int, output: str | None) -> None:
    """The last syncs of FABRIC_ID, newest first."""
    from itertools import islice

    from fgd_core.views import history_item

    items = [history_item(item) for item in islice(_app().syncs_of(fabric_id), limit)]
    emit(items, output, columns=("sync_id", "trigger", "state", "started_at", "completed_at",
                                 "duration_seconds", "files_processed", "errors", "warnings"))


@main.command()
@click.option("--fabric", "fabric_id", type=int, help="Only entries about this fabric.")
@click.option("--user", help="Only entries of this user.")
@click.option("--limit", type=int, default=50, show_default=True, help="How many entries.")
@click.option("--offset", type=int, default=0, show_default=True, help="Skip this many.")
@output_option
@fgd_errors
def audit(fabric_id: int | None, user: str | None, limit: int, offset: int,
          output: str | None) -> None:
    """The audit log (who did what, from where; refusals included), newest first — the
    filters of the API's /audit-log/."""
    from fgd_core.replay import history

    entries = [
        {"timestamp": r.envelope["timestamp"], "fabric_id": r.envelope["fabric_id"] or None,
         **r.envelope["payload"]}
        for r in history(_app(), fabric_id=fabric_id)
        if r.envelope["event_type"] == "audit.recorded"
        and (user is None or r.envelope["payload"].get("user") == user)
    ]
    entries.reverse()
    emit(entries[offset:offset + limit], output,
         columns=("timestamp", "user", "action", "fabric_id", "success", "ip_address",
                  "error_message"))


@main.group()
def fabric() -> None:
    """Register and inspect fabrics."""


@fabric.command("register")
@click.argument("name")
@click.option("--repo", required=True, help="Git repository: path, file:// or https:// URL.")
@click.option("--branch", default="main", show_default=True, help="Branch to sync.")
@click.option("--path", "gitops_directory", default="gitops", show_default=True,
              help="GitOps directory inside the repository (holds raw/ and managed/).")
@click.option("--id", "fabric_id", type=int, help="Integer id (default: the next free one).")
@click.option("--sync-enabled/--no-sync-enabled", default=True, show_default=True,
              help="--no-sync-enabled registers it suspended: no sync at all until resumed.")
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
    from fgd_core.cli_fabric import register_fabric

    emit(register_fabric(name, repo, branch, gitops_directory, fabric_id, sync_enabled), output)


@fabric.command("list")
@output_option
@fgd_errors
def fabric_list(output: str | None) -> None:
    """Every registered fabric with its settings and last sync."""
    from fgd_core.views import fabric_view

    emit([fabric_view(item) for item in _app().list_fabrics()], output,
         columns=("id", "name", "repository", "branch", "gitops_directory", "sync_enabled",
                  "last_sync_status", "last_sync"))


@main.group()
def config() -> None:
    """Check the configuration and its JSON Schema."""


@config.command("check")
@output_option
@fgd_errors
def config_check(output: str | None) -> None:
    """Load fgd_config.yaml and HEDGEHOG_FGD_* variables; print the result (no secrets)."""
    from fgd_core.config import load_settings, redact_url

    # model_dump(mode="json") shows a SecretStr as "**********"; URLs carry passwords.
    shown = load_settings().model_dump(mode="json")
    for key in ("database_url", "broker_url"):
        if shown.get(key):
            shown[key] = redact_url(shown[key])
    emit(shown, output)


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

from fgd_core.cli_fabric import LIFECYCLE_COMMANDS  # noqa: E402

for command in LIFECYCLE_COMMANDS:
    fabric.add_command(command)


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
