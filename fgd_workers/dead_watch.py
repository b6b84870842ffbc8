"""Dead letters nobody explained: a sync's message the broker itself dead-lettered.

A work queue is a quorum queue with ``x-delivery-limit``. A worker that gives up on a message
records why on the sync (``on_poison``) and republishes it to ``fgd.dlx`` with
``x-fgd-reason``. But a worker that dies mid-message on every delivery (kill -9, out of memory,
a machine lost) never gets that far: the broker dead-letters the message on its own once the
limit is reached, with only its ``x-death`` header to say why. Without this watcher such a sync
stays ``processing`` until the scheduler's timeout ends it (FGD_3002) minutes later.

The watcher consumes a queue of its own, ``fgd.dead.watch``, bound to ``fgd.dlx`` like
``fgd.dead`` (which keeps every dead letter for people to read; bounded here, so a watcher
that is not running cannot make it grow without end). For a dead letter without
``x-fgd-reason`` whose body is one of a sync's events, it records the broker's reason on the
sync and fails it (``FGDApplication.give_up_sync``: FGD_5001, idempotent). Anything else —
explained dead letters, refused commands, bodies that are not envelopes — is acked and left
to ``fgd.dead``. Run it anywhere (the scheduler process runs one); several are harmless.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kombu import Consumer, Queue
from prometheus_client import Counter

from fgd_core.application.app import FGDApplication
from fgd_core.events.envelope import decode_envelope
from fgd_workers.bus import DEAD_LETTER_EXCHANGE, ConnectionFactory, consume_forever

log = logging.getLogger("fgd_workers.dead_watch")

WATCH_QUEUE_NAME = "fgd.dead.watch"
WATCH_MAX_LENGTH = 10_000
SYNC_EVENT_PREFIXES = ("sync.", "file.", "stage.")  # what the work queues carry
GIVEN_UP = Counter("fgd_dead_letters_given_up_total",
                   "Syncs failed because the broker dead-lettered one of their messages")


def watch_queue(name: str = WATCH_QUEUE_NAME) -> Queue:
    return Queue(name, exchange=DEAD_LETTER_EXCHANGE, routing_key="#", durable=True,
                 queue_arguments={"x-queue-type": "quorum", "x-max-length": WATCH_MAX_LENGTH,
                                  "x-overflow": "drop-head"})


def broker_reason(headers: dict[str, Any]) -> str | None:
    """Why the broker dead-lettered a message; None if ours explained it (``x-fgd-reason``)
    or the broker did not dead-letter it (no ``x-death``)."""
    if headers.get("x-fgd-reason"):
        return None
    deaths = headers.get("x-death")
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], dict):
        return None
    death = deaths[0]
    reason = _text(death.get("reason")) or "unknown"
    queue = _text(death.get("queue")) or "?"
    deliveries = headers.get("x-delivery-count")
    after = f" after {int(deliveries) + 1} deliveries" if isinstance(deliveries, int) else ""
    return f"the broker dead-lettered it from {queue} ({reason}{after}): a worker died on it"


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


class DeadLetterWatcher:
    def __init__(
        self,
        app: FGDApplication,
        connection_factory: ConnectionFactory,
        *,
        queue_name: str = WATCH_QUEUE_NAME,
        max_backoff: float = 5.0,
    ) -> None:
        self.app = app
        self.connection_factory = connection_factory
        self.queue_name, self.max_backoff = queue_name, max_backoff
        self.ready = threading.Event()
        self._stop = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        consume_forever(self._consume, stop, "dead-letter watch", self.max_backoff)

    def _consume(self, stop: threading.Event) -> None:
        with self.connection_factory() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            queue = watch_queue(self.queue_name)(channel)
            queue.declare()
            with Consumer(channel, queues=[queue], on_message=self._on_message,
                          prefetch_count=16, no_ack=False):
                self.ready.set()
                while not stop.is_set():
                    try:
                        conn.drain_events(timeout=1.0)
                    except TimeoutError:
                        conn.heartbeat_check()

    def _on_message(self, message: Any) -> None:
        try:
            self.handle(dict(message.headers or {}), message.body)
        except Exception as exc:  # noqa: BLE001 — the database may be away: try again later
            log.warning("dead-letter watch: %s: %s; requeued", type(exc).__name__, exc)
            self._stop.wait(1.0)
            message.requeue()
            return
        message.ack()

    def handle(self, headers: dict[str, Any], body: bytes) -> str | None:
        """The sync failed because of this dead letter, if any."""
        reason = broker_reason(headers)
        if reason is None:
            return None
        try:
            envelope = decode_envelope(body)
        except Exception:  # noqa: BLE001 — not an event of ours: fgd.dead keeps it
            return None
        payload = envelope.get("payload") or {}
        sync_id = payload.get("sync_id")
        if not isinstance(sync_id, str) or not str(envelope.get("event_type")).startswith(
                SYNC_EVENT_PREFIXES):
            return None
        if not self.app.give_up_sync(sync_id, reason, payload.get("file_path")):
            return None  # ended already (or unknown): nothing to do
        log.error("sync %s failed: %s (%s)", sync_id, reason, envelope.get("event_type"))
        GIVEN_UP.inc()
        return sync_id


__all__ = ["WATCH_QUEUE_NAME", "DeadLetterWatcher", "broker_reason", "watch_queue"]
