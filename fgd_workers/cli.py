"""``fgd worker …``: the processes on the bus. Each subcommand runs until SIGTERM/SIGINT.

Registered with ``fgd`` through the ``fgd.commands`` entry point
(``worker = "fgd_workers.cli:worker"``); also runnable as ``python -m fgd_workers.cli``.
"""

from __future__ import annotations

import logging
import signal
import threading

import click

log = logging.getLogger("fgd_workers")


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT (a second SIGINT still interrupts)."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


@click.group("worker")
def worker() -> None:
    """Run a worker process (relay, …) against PostgreSQL and RabbitMQ."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                            "%(message)s")


@worker.command("relay")
@click.option("--name", default="relay", show_default=True,
              help="Relay name: its position row and its lock (one active relay per name).")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--poll-interval", default=None, type=click.FloatRange(0.01, 3600),
              help="Seconds between polls [default: 1 on PostgreSQL (NOTIFY wakes it), 0.1 on "
              "SQLite].")
@click.option("--metrics-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Serve Prometheus metrics on this port (0: off).")
def relay(name: str, batch_size: int, poll_interval: float | None, metrics_port: int) -> None:
    """Publish every stored event to RabbitMQ (exchange fgd.events), at least once."""
    from fgd_core.bootstrap import build_app
    from fgd_core.config import load_settings
    from fgd_workers.bus import connection_factory
    from fgd_workers.relay import Relay

    settings = load_settings()
    stop = stop_on_signals()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    app = build_app(settings)
    try:
        relay = Relay(app, connection_factory(settings.broker_url), name=name,
                      batch_size=batch_size, poll_interval=poll_interval)
        log.info("relay %s started", name)
        relay.run(stop)
    finally:
        app.close()
    log.info("relay %s stopped", name)


if __name__ == "__main__":  # pragma: no cover
    worker()
