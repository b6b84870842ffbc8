"""Prometheus metrics of a worker process: the HTTP endpoint, the spec's metrics fed from
the events this process records, and broker-side counts read with passive declares.

Which process reports what (Prometheus sums counters across instances):

* ``fgd_files_processed_total`` / ``fgd_file_processing_duration_seconds`` — ingestion
  workers, from the ``file.processed|failed|skipped`` events they record.
* ``fgd_sync_total`` / ``fgd_sync_duration_seconds`` — whichever process records a sync's
  end (the GitHub worker for completions, any worker for failures, the scheduler for
  timeouts); the trigger is read from the sync when this process did not see it start.
* ``fgd_active_syncs`` / ``fgd_queue_depth`` — the scheduler only, *set* from the store each
  tick (a per-process inc/dec would drift: a sync starts in one process and ends in another).
* ``fgd_relay_lag`` — the relay (``fgd_workers.relay``).
* ``fgd_dead_letter_messages`` (messages in ``fgd.dead``) and
  ``fgd_worker_queue_messages{queue}`` — every worker with a metrics port, for its queues.

The spec's metric objects live in :mod:`fgd_core.adapters.metrics`; they are reused, never
redefined.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Gauge, start_http_server

from fgd_core.adapters.metrics import (
    FINAL,
    EventMetrics,
    fgd_sync_duration_seconds,
    fgd_sync_total,
)
from fgd_workers.bus import DEAD_QUEUE, ConnectionFactory

log = logging.getLogger("fgd_workers.metrics")

DEFAULT_METRICS_HOST = "127.0.0.1"

DEAD_LETTERS = Gauge(
    "fgd_dead_letter_messages", "Messages waiting in the dead-letter queue fgd.dead"
)
QUEUE_MESSAGES = Gauge(
    "fgd_worker_queue_messages", "Messages ready in a work queue (passive declare)", ["queue"]
)


class MetricsServer:
    """prometheus_client's HTTP server on ``host:port`` (port 0: any free port)."""

    def __init__(self, port: int, host: str = DEFAULT_METRICS_HOST,
                 registry: CollectorRegistry = REGISTRY) -> None:
        self.server, self.thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port = int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(port: int, host: str = DEFAULT_METRICS_HOST) -> MetricsServer:
    server = MetricsServer(port, host)
    log.info("metrics on %s", server.url)
    return server


# --- the spec's metrics from recorded events ------------------------------------------------


class SyncEventMetrics(EventMetrics):
    """:class:`EventMetrics` for a worker process: every metric except ``fgd_active_syncs``,
    which the scheduler sets from the store (here a sync's start and end are usually seen by
    different processes). A sync's trigger for ``fgd_sync_total`` is read from the sync
    (its first event only) when this process did not record its start."""

    def __init__(self, trigger_of: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self.trigger_of = trigger_of

    def __call__(self, stored: list[tuple[int, dict[str, Any]]]) -> None:
        # A listener runs after the commit, inside the caller's save(): never fail it.
        for _, env in stored:
            try:
                self.observe(env)
            except Exception:  # noqa: BLE001 — a metric is not worth failing a step for
                log.debug("metrics: %s not observed", env.get("event_type"), exc_info=True)

    def observe(self, env: dict[str, Any]) -> None:
        kind, payload = env["event_type"], env["payload"]
        if kind == "sync.started":
            return  # the trigger is looked up at the end; the gauge is the scheduler's
        if kind in FINAL:
            fabric, sync_id = str(env["fabric_id"]), str(payload["sync_id"])
            trigger = self.triggers.pop(sync_id, None) or self._trigger(sync_id)
            fgd_sync_total.labels(fabric, trigger, payload["final_state"]).inc()
            fgd_sync_duration_seconds.labels(fabric, trigger).observe(
                payload["duration_seconds"]
            )
            return
        super().observe(env)

    def _trigger(self, sync_id: str) -> str:
        if self.trigger_of is None:
            return "unknown"
        try:
            return self.trigger_of(sync_id)
        except Exception:  # noqa: BLE001
            return "unknown"


def subscribe_event_metrics(app: Any) -> Callable[[], None]:
    """Feed the spec's metrics from every event ``app`` saves; returns unsubscribe."""

    def trigger_of(sync_id: str) -> str:
        return str(app.get_sync(sync_id, version=1).trigger)

    return app.subscribe(SyncEventMetrics(trigger_of))  # type: ignore[no-any-return]


# --- broker-side counts ---------------------------------------------------------------------


class QueueProbe:
    """Message counts of queues by passive declare (declares nothing, consumes nothing).
    One lazily opened connection; any broker error drops it and the count is None."""

    def __init__(self, connection_factory: ConnectionFactory) -> None:
        self.connection_factory = connection_factory
        self.connection: Any = None
        self._lock = threading.Lock()

    def message_count(self, queue: str) -> int | None:
        with self._lock:
            try:
                if self.connection is None:
                    self.connection = self.connection_factory()
                    self.connection.ensure_connection(max_retries=1)
                channel = self.connection.default_channel
                _, count, _ = channel.queue_declare(queue=queue, passive=True)
                return int(count)
            except Exception as exc:  # noqa: BLE001 — missing queue, broker down, …
                log.debug("queue %s not counted: %s", queue, exc)
                self._drop()
                return None

    def _drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.release()
            self.connection = None

    def close(self) -> None:
        with self._lock:
            self._drop()


def probe_queues(probe: QueueProbe, queues: Iterable[str]) -> dict[str, int | None]:
    """Set ``fgd_worker_queue_messages`` for ``queues`` and ``fgd_dead_letter_messages``;
    returns every count by queue name (None: the broker could not be asked)."""
    counts: dict[str, int | None] = {}
    for queue in queues:
        counts[queue] = count = probe.message_count(queue)
        if count is not None:
            QUEUE_MESSAGES.labels(queue).set(count)
    counts[DEAD_QUEUE.name] = dead = probe.message_count(DEAD_QUEUE.name)
    if dead is not None:
        DEAD_LETTERS.set(dead)
    return counts


class BrokerGauges:
    """A daemon thread that refreshes the broker-side gauges every ``interval`` seconds."""

    def __init__(self, connection_factory: ConnectionFactory, queues: Iterable[str],
                 interval: float = 15.0) -> None:
        self.probe = QueueProbe(connection_factory)
        self.queues = list(queues)
        self.interval = interval
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fgd-broker-gauges", daemon=True)

    def start(self) -> BrokerGauges:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            probe_queues(self.probe, self.queues)
            self._stop.wait(self.interval)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self.probe.close()


__all__ = [
    "DEAD_LETTERS",
    "DEFAULT_METRICS_HOST",
    "QUEUE_MESSAGES",
    "BrokerGauges",
    "MetricsServer",
    "QueueProbe",
    "SyncEventMetrics",
    "probe_queues",
    "start_metrics_server",
    "subscribe_event_metrics",
]
