"""The consume loop every worker shares: one durable quorum queue, a handler, ack after commit.

A message is acked only after its handler returned, i.e. after the handler's result was
saved in the event store. A handler that raises gets the message back (requeued, after a
short pause) until its delivery count reaches the queue's limit; then ``on_poison`` records
the reason on the sync and the message is rejected without requeue, which dead-letters it
to ``fgd.dlx`` (kept in ``fgd.dead``). A body that is not a valid envelope is dead-lettered
at once. Broker loss: reconnect with backoff; unacked messages come back and the idempotent
steps make them no-ops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kombu import Consumer
from prometheus_client import Counter

from fgd_core.events.envelope import decode_envelope
from fgd_workers.bus import DEFAULT_DELIVERY_LIMIT, ConnectionFactory, declare_work_queue

log = logging.getLogger("fgd_workers.consumer")

QUEUE_PREFIX_ENV = "HEDGEHOG_FGD_QUEUE_PREFIX"
DEFAULT_QUEUE_PREFIX = "fgd"
# Test hook: seconds a handler sleeps before it starts (to kill a worker mid-message).
DELAY_ENV = "HEDGEHOG_FGD_TEST_HANDLER_DELAY"

HANDLED = Counter("fgd_worker_messages_total", "Messages handled", ["worker", "outcome"])
DEAD = Counter("fgd_worker_dead_lettered_total", "Messages a worker dead-lettered", ["worker"])

Handler = Callable[[dict[str, Any]], str]
Poison = Callable[[dict[str, Any], str], None]


def queue_prefix(environ: Any = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get(QUEUE_PREFIX_ENV, "").strip() or DEFAULT_QUEUE_PREFIX


class QueueWorker:
    def __init__(
        self,
        name: str,
        queue_name: str,
        routing_keys: Iterable[str],
        handler: Handler,
        connection_factory: ConnectionFactory,
        *,
        prefetch: int = 1,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        on_poison: Poison | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        self.name, self.queue_name = name, queue_name
        self.routing_keys = list(routing_keys)
        self.handler, self.on_poison = handler, on_poison
        self.connection_factory = connection_factory
        self.prefetch, self.delivery_limit = prefetch, delivery_limit
        self.max_backoff = max_backoff
        self.delay = float(os.environ.get(DELAY_ENV, "0") or 0)
        self.ready = threading.Event()  # set once the queue is declared and consumed

    def run(self, stop: threading.Event) -> None:
        backoff = 0.0
        while not stop.is_set():
            try:
                self._consume(stop)
                backoff = 0.0
            except Exception as exc:  # broker gone, channel closed, …: reconnect
                backoff = min(self.max_backoff, backoff * 2 or 0.2)
                log.warning("worker %s: %s: %s; reconnecting in %.1fs", self.name,
                            type(exc).__name__, exc, backoff)
                stop.wait(backoff)

    def _consume(self, stop: threading.Event) -> None:
        with self.connection_factory() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            queue = declare_work_queue(
                channel, self.queue_name, self.routing_keys, delivery_limit=self.delivery_limit
            )
            consumer = Consumer(
                channel, queues=[queue], on_message=self._on_message,
                prefetch_count=self.prefetch, no_ack=False,
            )
            with consumer:
                log.info("worker %s consuming %s (prefetch %d)", self.name, self.queue_name,
                         self.prefetch)
                self.ready.set()
                while not stop.is_set():
                    try:
                        conn.drain_events(timeout=1.0)
                    except TimeoutError:
                        conn.heartbeat_check()

    def _on_message(self, message: Any) -> None:
        try:
            envelope = decode_envelope(message.body)
        except Exception as exc:  # noqa: BLE001 — whatever it is, it is not ours to run
            log.error("worker %s: invalid envelope (%s); dead-lettered", self.name, exc)
            DEAD.labels(self.name).inc()
            message.reject(requeue=False)
            return
        if self.delay:
            time.sleep(self.delay)
        try:
            outcome = self.handler(envelope)
        except Exception as exc:  # noqa: BLE001
            headers = message.headers or {}
            attempts = int(headers.get("x-delivery-count") or 0) + 1
            reason = f"{type(exc).__name__}: {exc}"[:500]
            if attempts >= self.delivery_limit:
                log.error("worker %s: %s failed %d times (%s); dead-lettered", self.name,
                          envelope["event_type"], attempts, reason)
                if self.on_poison is not None:
                    with contextlib.suppress(Exception):
                        self.on_poison(envelope, reason)
                DEAD.labels(self.name).inc()
                HANDLED.labels(self.name, "dead").inc()
                message.reject(requeue=False)
            else:
                log.warning("worker %s: %s failed (attempt %d: %s); requeued", self.name,
                            envelope["event_type"], attempts, reason, exc_info=True)
                time.sleep(min(2.0, 0.2 * attempts))
                HANDLED.labels(self.name, "retry").inc()
                message.requeue()
            return
        HANDLED.labels(self.name, outcome).inc()
        message.ack()
