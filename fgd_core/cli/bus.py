"""``fgd bus``: the message bus from a shell — trigger a sync with a ``sync.trigger`` command
and follow ``fgd.events`` (``fgd_core.adapters.bus_client.FGDClient`` underneath).

The broker is ``HEDGEHOG_FGD_BROKER_URL`` (or ``--broker``); the API token is read from
``HEDGEHOG_FGD_TOKEN`` only, never from the command line, where ``ps`` would show it.
"""

from __future__ import annotations

import json
import sys

import click

from fgd_core.cli.common import fgd_errors, print_json
from fgd_core.config_env import API_TOKEN_ENV as TOKEN_ENV

EXIT_NO_REPLY = 2


def _broker(url: str | None) -> str:
    if url:
        return url
    from fgd_core.config import load_settings

    url = load_settings().broker_url  # checked as every fgd process checks it (amqp://)
    if not url:
        raise click.UsageError("no broker: set HEDGEHOG_FGD_BROKER_URL or pass --broker")
    return url


_broker_option = click.option(
    "--broker", "broker_url", default=None, metavar="AMQP_URL",
    help="RabbitMQ URL [default: HEDGEHOG_FGD_BROKER_URL].")


@click.group()
def bus() -> None:
    """Trigger syncs and follow events over RabbitMQ (the contract: asyncapi.yaml)."""


@bus.command("trigger")
@click.argument("fabric_id", type=click.IntRange(1))
@click.option("--trigger", "trigger_type", default="manual", show_default=True,
              type=click.Choice(["manual", "webhook", "scheduled", "fabric_created"]),
              help="The trigger recorded on the sync.")
@click.option("--force", "force_refresh", is_flag=True, help="force_refresh (needs "
              "force_fgd_sync).")
@click.option("--validate-only", is_flag=True, help="Validate, change nothing.")
@click.option("--no-github", is_flag=True, help="Do not commit and push.")
@click.option("--correlation-id", default=None, help="Carried by the sync's events.")
@click.option("--message-id", default=None,
              help="Deduplication key: the same id again starts nothing new.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for the reply (the sync's id) or only publish.")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds to wait for the reply.")
@_broker_option
@fgd_errors
def trigger(fabric_id: int, trigger_type: str, force_refresh: bool, validate_only: bool,
            no_github: bool, correlation_id: str | None, message_id: str | None, wait: bool,
            timeout: float, broker_url: str | None) -> None:
    """Publish sync.trigger for FABRIC_ID; print the reply as JSON.

    Exit status 1 with the spec's error body on stderr for an error answer: FGD_3001 (the
    fabric is syncing, the running sync in details) or a refused command — a refused or
    missing permission, an invalid token … (details.reason; it is also in fgd.dead); 2 when
    no reply came in time (is `fgd worker commands` running?)."""
    from fgd_core.adapters.bus_client import CommandError, CommandTimeout, FGDClient
    from fgd_core.config import runtime_settings

    secret = runtime_settings().api_token
    token = secret.get_secret_value() if secret else None
    if token is None:
        raise click.UsageError(f"no API token: set {TOKEN_ENV}")
    options = {"force_refresh": force_refresh, "validate_only": validate_only,
               "include_github_sync": not no_github}
    with FGDClient(_broker(broker_url), token=token) as fgd:
        try:
            reply = fgd.trigger_sync(fabric_id, trigger_type, options, correlation_id,
                                     wait=wait, timeout=timeout, message_id=message_id)
        except CommandError as exc:
            click.echo(json.dumps(exc.body), err=True)
            sys.exit(1)
        except CommandTimeout as exc:
            click.echo(f"{exc} (is `fgd worker commands` running?)", err=True)
            sys.exit(EXIT_NO_REPLY)
    print_json(reply)


@bus.command("events")
@click.option("--type", "event_types", multiple=True, metavar="ROUTING_KEY",
              help="Event types or topic patterns (sync.completed, sync.*); repeatable "
              "[default: every event].")
@click.option("--fabric", "fabric_id", type=int, default=None, help="One fabric's events.")
@click.option("--queue", default=None, help="A durable queue of this name (keeps events "
              "between runs; delete it when done) [default: a temporary one].")
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after N events.")
@click.option("--idle", type=click.FloatRange(0.1), default=None,
              help="Stop after this many seconds without an event.")
@_broker_option
@fgd_errors
def events(event_types: tuple[str, ...], fabric_id: int | None, queue: str | None,
           count: int | None, idle: float | None, broker_url: str | None) -> None:
    """Print envelopes published on fgd.events as JSON lines, as they arrive (validated
    against schemas/; an event seen twice is printed once)."""
    from fgd_core.adapters.bus_client import FGDClient

    seen = 0
    with FGDClient(_broker(broker_url)) as fgd:
        for envelope in fgd.events(list(event_types) or None, fabric_id=fabric_id,
                                   queue=queue, timeout=idle):
            print_json(envelope)
            seen += 1
            if count is not None and seen >= count:
                return
