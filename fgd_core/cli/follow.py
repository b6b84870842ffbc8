"""A sync handed to the workers and followed from its events (``fgd sync`` with a broker).

With ``HEDGEHOG_FGD_BROKER_URL`` set the workers run the syncs: the CLI starts one exactly as
the API does (``request_sync`` records ``sync.started``; the relay publishes it and the
discovery worker picks it up) and never runs a step itself, so it cannot race the workers.
It then reads the sync's own events from the store until one ends it. When no worker has
recorded anything for the sync within ``fgd.cli.pickup_timeout_seconds`` the CLI cancels
the sync (so the fabric is free again) and says so: exit status 4.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

FILE_DONE = frozenset({"file.processed", "file.failed", "file.skipped"})
ENDING_EVENTS = frozenset({"sync.completed", "sync.failed", "sync.cancelled", "sync.timeout"})
# Exit status when no worker picked the sync up (0, 1 and 3 are fgd sync's own; 2 is usage).
EXIT_NOT_PICKED_UP = 4
POLL_SECONDS = 0.2


class NotPickedUp(click.ClickException):
    """No worker recorded anything for the sync in time."""

    exit_code = EXIT_NOT_PICKED_UP


class SyncProgress:
    """The progress bar of ``fgd sync``: one stage name, files done of files discovered."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("sync", total=None, current="")

    def __enter__(self) -> SyncProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def on_event(self, env: dict[str, Any]) -> None:
        kind, payload = env["event_type"], env["payload"]
        if kind == "stage.started":
            self.progress.update(self.task, description=payload["stage"])
        elif kind == "file.discovered":
            total = self.progress.tasks[0].total or 0
            self.progress.update(self.task, total=total + 1)
        elif kind in FILE_DONE:
            self.progress.update(self.task, advance=1, current=payload["file_path"])


def follow_events(
    app: Any,
    sync_id: str,
    on_event: Callable[[dict[str, Any]], None],
    pickup_timeout: float | None = None,
) -> None:
    """Call ``on_event`` with each of SYNC_ID's stored events, in log order, until one ends
    it. With ``pickup_timeout``: raise ``NotPickedUp`` (after cancelling the sync) when
    nothing but ``sync.started`` was recorded for it within that many seconds."""
    from fgd_core.application.replay import history
    from fgd_core.errors import FGDError

    position = (app.position_of(sync_id, 1) or 1) - 1
    since = time.monotonic()
    picked_up = pickup_timeout is None
    while True:
        ended = False
        for recorded in history(app, sync_id=sync_id, after=position):
            position = recorded.position
            env = recorded.envelope
            picked_up = picked_up or env["event_type"] != "sync.started"
            on_event(env)
            ended = ended or env["event_type"] in ENDING_EVENTS
        if ended:
            return
        if not picked_up and time.monotonic() - since > (pickup_timeout or 0):
            try:
                app.cancel_sync(sync_id, f"no worker picked it up within {pickup_timeout:g} s")
            except FGDError:  # a worker moved it on meanwhile: follow it after all
                picked_up = True
                continue
            raise NotPickedUp(
                f"no worker picked up sync {sync_id} within {pickup_timeout:g} s, so it was "
                "cancelled: are `fgd worker relay` and `fgd worker discovery` (or `fgd worker "
                "all`) running on this broker? (wait longer: HEDGEHOG_FGD_CLI_PICKUP_TIMEOUT)"
            )
        time.sleep(POLL_SECONDS)


def is_first_sync_alike(trigger: str, running: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """A fabric this command has just registered may already run its first sync (trigger
    ``fabric_created``): with the same options it is the sync asked for, so it is followed
    rather than refused with FGD_3001."""
    return trigger == "fabric_created" and all(running.get(k) == v for k, v in wanted.items())


def sync_on_workers(
    app: Any, fabric_id: int, options: dict[str, Any], console: Console, pickup_timeout: float
) -> Any:
    """Start a manual sync for the workers, show its progress, return it once it ended."""
    from fgd_core.errors import SyncAlreadyInProgressError

    try:
        sync = app.request_sync(fabric_id, "manual", options).sync
    except SyncAlreadyInProgressError as exc:
        sync = app.get_sync(exc.details["sync_id"])
        if not is_first_sync_alike(sync.trigger, dict(sync.options), options):
            raise
    with SyncProgress(console) as progress:
        follow_events(app, sync.sync_id, progress.on_event, pickup_timeout)
    return app.get_sync(sync.sync_id)
