"""``fgd``: the command line. Every command builds its Application through bootstrap, so it
runs on the embedded SQLite default unless ``HEDGEHOG_FGD_DATABASE_URL`` is set.

A failing command prints the spec's error body as JSON on stderr and exits with status 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from fgd_core.cli.common import fgd_errors, remote_client
from fgd_core.cli.follow import ENDING_EVENTS
from fgd_core.cli.output import chosen, emit, output_option


def _app() -> Any:
    from fgd_core.bootstrap import build_app

    return build_app(source="fgd_cli")


@click.group(context_settings={"max_content_width": 110})
@click.version_option(package_name="fgd-sync")
@click.option("--api", metavar="URL",
              help="Remote mode: run the command through the FGD Sync API at URL, such as "
              "http://fgd:8000, with the token in HEDGEHOG_FGD_TOKEN, instead of the database "
              "[env HEDGEHOG_FGD_API_URL]. For fabric, status, history, sync, cancel, files, "
              "process, directory and audit; other commands refuse it.")
@click.pass_context
def main(ctx: click.Context, api: str | None) -> None:
    """FGD Sync: GitOps sync engine for Hedgehog fabrics.

    Commands work on this machine's database (HEDGEHOG_FGD_DATABASE_URL, else the embedded
    SQLite file) unless --api names an API server (remote mode).

    Exit status of fgd sync, fgd process and fgd status --watch: 0 every raw file landed (or
    nothing to do), 1 the sync failed (or any error), 2 usage error, 3 the sync completed but
    raw files failed or are still failing, 4 no worker picked the sync up in time (with a
    broker: HEDGEHOG_FGD_CLI_PICKUP_TIMEOUT)."""
    from fgd_core.cli.remote import OFFLINE_COMMANDS, REMOTE_COMMANDS
    from fgd_core.config import runtime_settings

    api = api or runtime_settings().api_url  # HEDGEHOG_FGD_API_URL, read by the settings
    ctx.obj = {"api": api or None}
    command = ctx.invoked_subcommand
    if api and command not in REMOTE_COMMANDS | OFFLINE_COMMANDS:
        raise click.UsageError(
            f"fgd {command} has no remote form: it works on this machine's database and "
            "services. Drop --api (and unset HEDGEHOG_FGD_API_URL) to run it here.",
            ctx,
        )


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
    from fgd_core.application.replay import history

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


def follow(app: Any, sync_id: str, fmt: str, poll: float = 0.25) -> None:
    """Print SYNC_ID's events as they are stored (from its first one) until it ends: a line
    per event on a table output, whole envelopes as JSON lines otherwise."""
    import time

    from fgd_core.application.replay import history

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
    from fgd_core.application.views import sync_status
    from fgd_core.cli.sync import exit_code, still_failing
    from fgd_core.domain.sync_operation import COMPLETED

    api = remote_client()
    if api is not None:
        from fgd_core.cli.remote import failing_files, watch_status

        shown = (watch_status(api, sync_id, chosen(output)) if watch
                 else api.get(f"/sync-status/{sync_id}/"))
        emit(shown, output)
        if watch:
            sys.exit(exit_code(shown["state"] == COMPLETED, failing_files(shown)))
        return
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

    from fgd_core.application.views import history_item

    api = remote_client()
    if api is not None:
        items = api.get(f"/fabrics/{fabric_id}/sync-history/", limit=limit)["results"]
    else:
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
    from fgd_core.application.replay import history

    api = remote_client()
    if api is not None:
        page = api.get("/audit-log/", fabric_id=fabric_id, user=user, limit=limit, offset=offset)
        emit(page["results"], output, columns=AUDIT_COLUMNS)
        return
    entries = [
        {"timestamp": r.envelope["timestamp"], "fabric_id": r.envelope["fabric_id"] or None,
         **r.envelope["payload"]}
        for r in history(_app(), fabric_id=fabric_id)
        if r.envelope["event_type"] == "audit.recorded"
        and (user is None or r.envelope["payload"].get("user") == user)
    ]
    entries.reverse()
    emit(entries[offset:offset + limit], output, columns=AUDIT_COLUMNS)


AUDIT_COLUMNS = ("timestamp", "user", "action", "fabric_id", "success", "ip_address",
                 "error_message")


@main.command()
@click.argument("sync_id")
@output_option
@fgd_errors
def cancel(sync_id: str, output: str | None) -> None:
    """Cancel the running (or pending) sync SYNC_ID; prints the spec's cancel answer."""
    api = remote_client()
    if api is not None:
        emit(api.post(f"/sync-status/{sync_id}/cancel/"), output)
        return
    import getpass

    sync = _app().cancel_sync(sync_id, f"cancelled by {getpass.getuser()} (fgd cancel)")
    emit({"success": True, "message": "Sync operation cancelled", "final_state": sync.state},
         output)


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
    if shown["runtime"].get("broker_url"):
        shown["runtime"]["broker_url"] = redact_url(shown["runtime"]["broker_url"])
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
from fgd_core.cli.auth import token  # noqa: E402
from fgd_core.cli.bus import bus  # noqa: E402
from fgd_core.cli.fabric import fabric  # noqa: E402
from fgd_core.cli.gitops import directory, files, process  # noqa: E402
from fgd_core.cli.sync import example_repo, sync  # noqa: E402
from fgd_core.cli.validate import validate  # noqa: E402

for command in (sync, example_repo, fabric, directory, files, process, token, bus, validate):
    main.add_command(command)


# The processes: the API (fgd_api) and the bus workers (fgd_workers), imported when run.
from fgd_core.cli.projections import projections  # noqa: E402
from fgd_core.cli.serve import serve  # noqa: E402
from fgd_core.cli.worker import worker  # noqa: E402

for command in (serve, worker, projections):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    main()
