"""``fgd worker commands``: consume ``fgd.commands`` (sync.trigger, webhook.github).

Add to the ``worker`` group with ``worker.add_command(commands)``; also runnable on its own
as ``python -m fgd_core.cli.worker_commands``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from fgd_core.application.ports import SyncExecutor
    from fgd_core.config import RuntimeSettings

log = logging.getLogger("fgd_workers")


def _runtime() -> RuntimeSettings:
    from fgd_core.config import runtime_settings

    return runtime_settings()


@click.command("commands")
@click.option("--queue", "queue_name",
              default=lambda: _runtime().commands_queue or "fgd.commands.intake",
              show_default="HEDGEHOG_FGD_COMMANDS_QUEUE, else fgd.commands.intake",
              help="The intake queue (durable quorum queue bound to fgd.commands).")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Consumers (threads, one connection each) on the queue. More threads in "
              "one process contend for the interpreter and answer fewer commands: for more "
              "throughput run more processes (bench/bench_commands.py).")
@click.option("--prefetch", default=512, show_default=True, type=click.IntRange(1, 1000),
              help="Unacked commands each consumer holds; it records them in batches of "
              "up to half of it in one commit each (the next batch is delivered while one "
              "is recorded).")
@click.option("--delivery-limit", default=5, show_default=True, type=click.IntRange(1, 100),
              help="Deliveries of a failing command before it is dead-lettered.")
@click.option("--embedded/--distributed", default=False, show_default=True,
              help="--embedded: run the syncs commands start in this process (small "
              "installs). --distributed: leave them to the discovery/ingestion/github "
              "workers, which pick sync.started up from fgd.events (a relay must run).")
@click.option("--metrics-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Serve Prometheus metrics on this port (0: off).")
def commands(queue_name: str, concurrency: int, prefetch: int, delivery_limit: int,
             embedded: bool, metrics_port: int) -> None:
    """Turn bus commands into syncs: validated, authorized by API token, exactly once."""
    from fgd_core.bootstrap import build_runner
    from fgd_core.cli.worker import open_when_store_answers, stop_on_signals, worker_app
    from fgd_core.config import load_settings
    from fgd_workers.bus import connection_factory
    from fgd_workers.commands import CommandIntake, consumers

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    if settings.fgd.debug_mode:  # fgd.debug_mode / HEDGEHOG_FGD_DEBUG
        logging.getLogger().setLevel(logging.DEBUG)
    stop = stop_on_signals()
    # Bus commands come from other people: the Applications below hold repositories to
    # fgd.repositories.allowed (no command sets one today; any that does is covered).
    if metrics_port and not settings.fgd.monitoring.metrics_enabled:
        log.warning("metrics disabled (fgd.monitoring.metrics_enabled: false): not serving "
                    "--metrics-port %d", metrics_port)
    elif metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    executor: SyncExecutor | None = None
    if embedded:
        from fgd_core.bootstrap import build_embedded_executor

        app, runner = open_when_store_answers(
            lambda: build_runner(settings, source="fgd_workers", for_others=True), stop,
            "commands")
        executor = build_embedded_executor(settings, runner)
    else:
        # A worker process: its pool within the connection budget. (Embedded, above, runs
        # syncs in this process, like `fgd serve`: it keeps the API's configurable pool.)
        app = open_when_store_answers(
            lambda: worker_app(settings, source="fgd_workers"), stop, "commands")
    from fgd_workers.self_check import SelfCheck

    SelfCheck(app, "commands", settings.fgd.monitoring.health_check_interval).start(stop)
    intake = CommandIntake(
        app, settings.fgd.github.webhook_secret,
        submit=executor.submit if executor is not None else None,
    )
    workers = consumers(intake, connection_factory(settings.broker_url), concurrency,
                        queue_name=queue_name, prefetch=prefetch,
                        delivery_limit=delivery_limit)
    threads = [threading.Thread(target=w.run, args=(stop,), daemon=True, name=w.name)
               for w in workers]
    for thread in threads:
        thread.start()
    for w in workers:
        while not w.ready.wait(0.5) and not stop.is_set():
            pass
    log.info("commands worker started: %d consumer(s) on %s (%s)", concurrency, queue_name,
             "embedded" if embedded else "distributed")
    try:
        while not stop.wait(1.0):
            pass
        for thread in threads:
            thread.join(timeout=10)
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
        app.close()
    log.info("commands worker stopped")


if __name__ == "__main__":  # pragma: no cover
    commands()
