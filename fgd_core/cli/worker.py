"""``fgd worker …``: the processes on the bus. Each subcommand runs until SIGTERM/SIGINT.

One of ``fgd``'s command groups (``fgd_core.cli.main``); also runnable as
``python -m fgd_core.cli.worker``.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from fgd_core.application.app import FGDApplication
    from fgd_core.application.steps import SyncSteps
    from fgd_core.config import RuntimeSettings, Settings
    from fgd_workers.bus import ConnectionFactory
    from fgd_workers.change_check import ChangeCheck

log = logging.getLogger("fgd_workers")
T = TypeVar("T")


def open_when_store_answers(build: Callable[[], T], stop: threading.Event, name: str) -> T:
    """``build()`` (the process's Application), retried while the event store is unreachable.

    Building an Application opens the store; a process (re)started while PostgreSQL is down
    — after a crash, while it recovers — waits for it, as it waits for the broker, instead
    of exiting and needing someone to start it again."""
    from fgd_workers.bus import until_store_answers

    built = until_store_answers(build, stop, f"{name} start-up")
    # What start-up loaded (modules, schemas, settings: tens of thousands of objects) lives
    # as long as the process: frozen, the collector no longer scans it in every full
    # collection (one was ~30 ms; a busy worker ran one every few hundred commands).
    gc.collect()
    gc.freeze()
    return built


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
    if not logging.getLogger().handlers:  # JSON lines, as the API writes them
        from fgd_core.adapters.observability import configure_logging

        configure_logging("INFO")
    from fgd_core.config import load_settings
    from fgd_core.errors import ConfigurationError

    try:
        debug = load_settings().fgd.debug_mode  # fgd.debug_mode / HEDGEHOG_FGD_DEBUG
    except ConfigurationError:
        return  # the command reports it when it loads the configuration (--help still works)
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


def _runtime() -> RuntimeSettings:
    """The process's runtime variables (HEDGEHOG_FGD_*): option defaults come from them."""
    from fgd_core.config import runtime_settings

    return runtime_settings()


_metrics_port_option = click.option(
    "--metrics-port", default=0, show_default=True, type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics on this port (0: off; one port per process).")
_metrics_host_option = click.option(
    "--metrics-host", default=lambda: _runtime().metrics_host or "127.0.0.1",
    show_default="HEDGEHOG_FGD_METRICS_HOST, else 127.0.0.1",
    help="Address the metrics endpoint listens on.")


def _serve_metrics(port: int, host: str, app: FGDApplication | None,
                   factory: ConnectionFactory, queues: list[str], *,
                   enabled: bool = True) -> None:
    """The metrics endpoint of this process (a daemon thread, gone with the process): the
    spec's metrics from the events ``app`` records, and broker-side queue counts. Not served
    when ``fgd.monitoring.metrics_enabled`` is false (``enabled``), said in one log line."""
    if not port:
        return
    if not enabled:
        log.warning("metrics disabled (fgd.monitoring.metrics_enabled: false): not serving "
                    "--metrics-port %d", port)
        return
    from fgd_workers.metrics_server import (
        BrokerGauges,
        start_metrics_server,
        subscribe_event_metrics,
    )

    start_metrics_server(port, host)
    if app is not None:
        subscribe_event_metrics(app)
    BrokerGauges(factory, queues).start()


def _self_check(app: FGDApplication, settings: Settings, name: str,
                stop: threading.Event) -> None:
    """This process's self-check every ``monitoring.health_check_interval`` seconds."""
    from fgd_workers.self_check import SelfCheck

    SelfCheck(app, name, settings.fgd.monitoring.health_check_interval).start(stop)


@worker.command("relay")
@click.option("--name", default="relay", show_default=True,
              help="Relay name: its position row and its lock (one active relay per name).")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000),
              help="Events read from the store per batch.")
@click.option("--poll-interval", default=None, type=click.FloatRange(0.01, 3600),
              help="Seconds between polls [default: 1 on PostgreSQL (NOTIFY wakes it), 0.1 on "
              "SQLite].")
@_metrics_port_option
@_metrics_host_option
def relay(name: str, batch_size: int, poll_interval: float | None, metrics_port: int,
          metrics_host: str) -> None:
    """Publish every stored event to RabbitMQ (exchange fgd.events), at least once."""
    from fgd_core.config import load_settings
    from fgd_workers.bus import connection_factory
    from fgd_workers.relay import Relay

    settings = load_settings()
    stop = stop_on_signals()
    _serve_metrics(metrics_port, metrics_host, None, connection_factory(settings.broker_url),
                   [], enabled=settings.fgd.monitoring.metrics_enabled)
    # Its pool plus the coordinator's dedicated LISTEN/lock connection.
    app = open_when_store_answers(lambda: worker_app(settings, dedicated=1), stop,
                                  f"relay {name}")
    _self_check(app, settings, f"relay {name}", stop)
    try:
        relay = Relay(app, connection_factory(settings.broker_url), name=name,
                      batch_size=batch_size, poll_interval=poll_interval)
        log.info("relay %s started", name)
        relay.run(stop)
    finally:
        app.close()
    log.info("relay %s stopped", name)


# --- sync workers ----------------------------------------------------------------------------

_prefix_option = click.option(
    "--queue-prefix", default=lambda: _runtime().queue_prefix,
    show_default="HEDGEHOG_FGD_QUEUE_PREFIX, else fgd",
    help="Work queues are <prefix>.discovery, <prefix>.ingestion, <prefix>.github.")
_cache_option = click.option(
    "--cache-dir", default=lambda: _runtime().git_cache,
    type=click.Path(file_okay=False), help="Git object cache of this process (one directory "
    "per fabric) [default: HEDGEHOG_FGD_GIT_CACHE, else a temporary directory of this "
    "process].")


def worker_app(settings: Settings, *, dedicated: int = 0,
               source: str = "fgd_core") -> FGDApplication:
    """The Application of a worker process (``fgd_core.bootstrap.build_worker_app``)."""
    from fgd_core.bootstrap import build_worker_app

    return build_worker_app(settings, dedicated=dedicated, source=source)


def _steps(settings: Settings, cache_dir: str | None, stop: threading.Event,
           dedicated: int = 0) -> tuple[FGDApplication, SyncSteps]:
    from fgd_core.bootstrap import build_steps, build_worker_app, git_cache_root

    # Every message re-reads its sync: fgd.caches.worker_aggregates kept in memory.
    app = open_when_store_answers(
        lambda: build_worker_app(settings, dedicated=dedicated,
                                 aggregate_cache=settings.fgd.caches.worker_aggregates),
        stop, "worker")
    return app, build_steps(app, settings, git_cache_root(cache_dir))


def _run_workers(kinds: list[str], queue_prefix: str, prefetch: int, cache_dir: str | None,
                 with_relay: bool, metrics_port: int = 0, metrics_host: str = "127.0.0.1",
                 with_scheduler: bool = False, tick: float = 5.0,
                 with_commands: bool = False) -> None:
    from fgd_core.config import load_settings
    from fgd_workers.bus import connection_factory
    from fgd_workers.discovery import discovery_worker
    from fgd_workers.github import github_worker
    from fgd_workers.ingestion import ingestion_worker

    settings = load_settings()
    stop = stop_on_signals()
    # `all`: the relay's and the scheduler's dedicated connections come out of the budget.
    app, steps = _steps(settings, cache_dir, stop,
                        dedicated=int(with_relay) + int(with_scheduler))
    factory = connection_factory(settings.broker_url)
    builders = {"discovery": lambda: discovery_worker(steps, factory, queue_prefix),
                "ingestion": lambda: ingestion_worker(steps, factory, queue_prefix, prefetch),
                "github": lambda: github_worker(steps, factory, queue_prefix)}
    # ingestion.worker_pool_size (HEDGEHOG_FGD_WORKER_CONCURRENCY): that many competing
    # ingestion consumers in this process, each on its own connection and thread.
    pool = {"ingestion": settings.fgd.ingestion.worker_pool_size}
    targets: list[Callable[[threading.Event], None]] = [
        builders[k]().run for k in kinds for _ in range(pool.get(k, 1))]
    if with_relay:
        from fgd_workers.relay import Relay

        targets.append(Relay(app, factory).run)
    if with_scheduler:
        from fgd_workers.dead_watch import DeadLetterWatcher
        from fgd_workers.scheduler import Scheduler

        targets.append(Scheduler(app, settings.fgd.sync, interval=tick,
                                 connection_factory=factory, queue_prefix=queue_prefix,
                                 change_check=_change_check(app, settings, steps.cache_root)
                                 ).run)
        targets.append(DeadLetterWatcher(app, factory).run)
    if with_commands:  # bus intake; the syncs it starts go to the workers above via the bus
        from fgd_workers.commands import INTAKE_QUEUE, CommandConsumer, CommandIntake

        intake = CommandIntake(app, settings.fgd.github.webhook_secret)
        queue = settings.runtime.commands_queue or INTAKE_QUEUE  # HEDGEHOG_FGD_COMMANDS_QUEUE
        targets.append(CommandConsumer(intake, factory, queue_name=queue).run)
    _serve_metrics(metrics_port, metrics_host, app, factory,
                   [f"{queue_prefix}.{k}" for k in kinds],
                   enabled=settings.fgd.monitoring.metrics_enabled)
    _self_check(app, settings, "worker " + "+".join(kinds), stop)
    threads = [threading.Thread(target=t, args=(stop,), daemon=True) for t in targets[1:]]
    for thread in threads:
        thread.start()
    log.info("worker %s started (queue prefix %s)", "+".join(kinds), queue_prefix)
    try:
        targets[0](stop)
        for thread in threads:
            thread.join(timeout=10)
    finally:
        app.close()  # type: ignore[attr-defined]
    log.info("worker %s stopped", "+".join(kinds))


@worker.command("discovery")
@_prefix_option
@_cache_option
@_metrics_port_option
@_metrics_host_option
def discovery(queue_prefix: str, cache_dir: str | None, metrics_port: int,
              metrics_host: str) -> None:
    """sync.started → list raw files, record file.discovered."""
    _run_workers(["discovery"], queue_prefix, 1, cache_dir, with_relay=False,
                 metrics_port=metrics_port, metrics_host=metrics_host)


@worker.command("ingestion")
@_prefix_option
@_cache_option
@click.option("--prefetch", default=4, show_default=True, type=click.IntRange(1, 4),
              help="Files a worker holds at once (competing consumers share the rest).")
@_metrics_port_option
@_metrics_host_option
def ingestion(queue_prefix: str, cache_dir: str | None, prefetch: int, metrics_port: int,
              metrics_host: str) -> None:
    """file.discovered → parse, validate, normalize one file; record the result."""
    _run_workers(["ingestion"], queue_prefix, prefetch, cache_dir, with_relay=False,
                 metrics_port=metrics_port, metrics_host=metrics_host)


@worker.command("github")
@_prefix_option
@_cache_option
@_metrics_port_option
@_metrics_host_option
def github(queue_prefix: str, cache_dir: str | None, metrics_port: int,
           metrics_host: str) -> None:
    """file_ingestion completed → one commit, pushed with compare-and-swap; complete."""
    _run_workers(["github"], queue_prefix, 1, cache_dir, with_relay=False,
                 metrics_port=metrics_port, metrics_host=metrics_host)


def _change_check(app: FGDApplication, settings: Settings, cache_dir: object) -> ChangeCheck:
    """The scheduler's change check, with the configured git timeouts and token and a git
    object cache per fabric (``--cache-dir``, else a temporary directory)."""
    from fgd_core.bootstrap import build_remote_factory, git_cache_root
    from fgd_workers.change_check import ChangeCheck

    root = git_cache_root(str(cache_dir) if cache_dir else None, prefix="fgd-check-")
    return ChangeCheck(app, build_remote_factory(settings, root))


_tick_option = click.option(
    "--tick", default=lambda: _runtime().scheduler_tick or 5.0,
    show_default="HEDGEHOG_FGD_SCHEDULER_TICK, else 5.0", type=click.FloatRange(0.1, 3600),
    help="Seconds between scheduler passes.")


@worker.command("scheduler")
@click.option("--name", default="scheduler", show_default=True,
              help="Scheduler name: its lock (one active scheduler per name).")
@_tick_option
@_prefix_option
@_cache_option
@_metrics_port_option
@_metrics_host_option
def scheduler(name: str, tick: float, queue_prefix: str, cache_dir: str | None,
              metrics_port: int, metrics_host: str) -> None:
    """Scheduled syncs, sync timeouts (FGD_3002), max_concurrent_syncs, webhook follow-ups;
    syncs whose message the broker dead-lettered are failed at once (fgd_workers.dead_watch)."""
    from fgd_core.config import load_settings
    from fgd_workers.bus import connection_factory
    from fgd_workers.dead_watch import DeadLetterWatcher
    from fgd_workers.scheduler import Scheduler

    settings = load_settings()
    stop = stop_on_signals()
    # Its pool plus the lock's dedicated connection.
    from fgd_core.bootstrap import build_worker_app

    app = open_when_store_answers(
        lambda: build_worker_app(settings, dedicated=1,
                                 aggregate_cache=settings.fgd.caches.scheduler_aggregates),
        stop, f"scheduler {name}")
    factory = connection_factory(settings.broker_url)
    _serve_metrics(metrics_port, metrics_host, app, factory, [f"{queue_prefix}.discovery"],
                   enabled=settings.fgd.monitoring.metrics_enabled)
    _self_check(app, settings, f"scheduler {name}", stop)
    try:
        runner = Scheduler(app, settings.fgd.sync, name=name, interval=tick,
                           connection_factory=factory, queue_prefix=queue_prefix,
                           change_check=_change_check(app, settings, cache_dir))
        watch = threading.Thread(target=DeadLetterWatcher(app, factory).run, args=(stop,),
                                 daemon=True, name="dead-letter-watch")
        watch.start()
        log.info("scheduler %s started (tick %.1fs)", name, tick)
        runner.run(stop)
        watch.join(timeout=10)
    finally:
        app.close()
    log.info("scheduler %s stopped", name)


@worker.command("all")
@_prefix_option
@_cache_option
@_tick_option
@_metrics_port_option
@_metrics_host_option
def all_workers(queue_prefix: str, cache_dir: str | None, tick: float, metrics_port: int,
                metrics_host: str) -> None:
    """Relay, scheduler, bus intake and every worker in one process (threads), for small
    installs."""
    _run_workers(["discovery", "ingestion", "github"], queue_prefix, 2, cache_dir,
                 with_relay=True, metrics_port=metrics_port, metrics_host=metrics_host,
                 with_scheduler=True, tick=tick, with_commands=True)


# Bus intake (`fgd worker commands`) lives in a module of its own. Registered before the
# `__main__` guard, so `python -m fgd_core.cli.worker commands` knows it too.
from fgd_core.cli.worker_commands import commands  # noqa: E402

worker.add_command(commands)

if __name__ == "__main__":  # pragma: no cover
    worker()
