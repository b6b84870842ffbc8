"""The consume loop every worker shares: one durable quorum queue, a handler, ack after commit.

A message is acked only after its handler returned, i.e. after the handler's result was
saved in the event store. While the event store is unreachable the handler is retried in
place (``until_store_answers``; the message stays unacked and keeps its delivery count, and
heartbeats keep the connection). A handler that raises anything else gets the message back
(requeued, after a short pause) until its delivery count reaches the queue's limit; then
``on_poison`` records the reason on the sync and the message is rejected without requeue,
which dead-letters it to ``fgd.dlx`` (kept in ``fgd.dead``). A body that is not a valid
envelope is dead-lettered at once. A dead letter carries why: the worker republishes it to
``fgd.dlx`` with the headers ``x-fgd-reason``, ``x-fgd-worker`` and ``x-fgd-queue`` (on the
consuming channel, so it precedes the ack), and falls back to a plain reject (the broker's
``x-death``) if it cannot.
Broker loss: reconnect with backoff; unacked messages come back and the idempotent steps
make them no-ops.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from kombu import Consumer, Producer
from prometheus_client import Counter

from fgd_core.config import runtime_settings
from fgd_core.events.envelope import decode_envelope
from fgd_workers.bus import (
    DEAD_LETTER_EXCHANGE,
    DEFAULT_DELIVERY_LIMIT,
    BusyHeartbeat,
    ConnectionFactory,
    consume_forever,
    declare_work_queue,
    until_store_answers,
)

log = logging.getLogger("fgd_workers.consumer")
T = TypeVar("T")

# Test hook: seconds a handler sleeps before it starts (to kill a worker mid-message):
# HEDGEHOG_FGD_TEST_HANDLER_DELAY, read into Settings.runtime.test_handler_delay.

HANDLED = Counter("fgd_worker_messages_total", "Messages handled", ["worker", "outcome"])
DEAD = Counter("fgd_worker_dead_lettered_total", "Messages a worker dead-lettered", ["worker"])

Handler = Callable[[dict[str, Any]], str]
# Several envelopes at once (a worker's prefetched messages): one outcome each, in order.
BatchHandler = Callable[[list[dict[str, Any]]], list[str]]
Poison = Callable[[dict[str, Any], str], None]


def queue_prefix(environ: Mapping[str, str] | None = None) -> str:
    """HEDGEHOG_FGD_QUEUE_PREFIX (Settings.runtime.queue_prefix), else ``fgd``."""
    return runtime_settings(environ).queue_prefix


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
        batch_handler: BatchHandler | None = None,
    ) -> None:
        self.name, self.queue_name = name, queue_name
        self.routing_keys = list(routing_keys)
        self.handler, self.on_poison = handler, on_poison
        self.connection_factory = connection_factory
        self.prefetch, self.delivery_limit = prefetch, delivery_limit
        self.max_backoff = max_backoff
        self.delay = float(runtime_settings().test_handler_delay or 0)
        self.ready = threading.Event()  # set once the queue is declared and consumed
        # With a batch handler and prefetch > 1, the messages that arrived together are
        # handled together (e.g. recorded in one save) and acked after that one commit.
        self.batch_handler = batch_handler if prefetch > 1 else None
        self._pending: list[tuple[Any, dict[str, Any]]] = []
        self._beat: BusyHeartbeat | None = None
        self._stop = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        consume_forever(self._consume, stop, f"worker {self.name}", self.max_backoff)

    def _consume(self, stop: threading.Event) -> None:
        with self.connection_factory() as conn, self._heartbeats(conn):
            channel = conn.channel()
            queue = declare_work_queue(
                channel, self.queue_name, self.routing_keys, delivery_limit=self.delivery_limit
            )
            consumer = Consumer(
                channel,
                queues=[queue],
                on_message=self._on_message,
                prefetch_count=self.prefetch,
                no_ack=False,
            )
            with consumer:
                log.info(
                    "worker %s consuming %s (prefetch %d)",
                    self.name,
                    self.queue_name,
                    self.prefetch,
                )
                self.ready.set()
                self._pending.clear()
                while not stop.is_set():
                    try:
                        conn.drain_events(timeout=1.0)
                    except TimeoutError:
                        conn.heartbeat_check()
                    if self.batch_handler is not None and self._pending:
                        self._run_batch(conn)

    @contextlib.contextmanager
    def _heartbeats(self, conn: Any) -> Iterator[None]:
        conn.ensure_connection(max_retries=1)
        self._beat = BusyHeartbeat(conn)
        try:
            yield
        finally:
            self._beat.close()
            self._beat = None

    def _busy(self) -> contextlib.AbstractContextManager[None]:
        return self._beat.busy() if self._beat is not None else contextlib.nullcontext()

    def _until_store_answers(self, call: Callable[[], T]) -> T:
        return until_store_answers(call, self._stop, f"worker {self.name}", self.max_backoff)

    def _run_batch(self, conn: Any) -> None:
        """Take what else is already here (up to the prefetch), then handle it at once."""
        while len(self._pending) < self.prefetch:
            try:
                conn.drain_events(timeout=0.002)
            except TimeoutError:
                break
        batch, self._pending = self._pending, []
        if self.delay:
            time.sleep(self.delay)
        if len(batch) > 1:
            try:
                with self._busy():
                    outcomes = self._until_store_answers(
                        lambda: self.batch_handler([e for _, e in batch]))  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 — one by one, with per-message retries
                log.warning(
                    "worker %s: batch of %d failed (%s: %s); one by one",
                    self.name,
                    len(batch),
                    type(exc).__name__,
                    exc,
                )
            else:
                for (message, _), outcome in zip(batch, outcomes, strict=True):
                    HANDLED.labels(self.name, outcome).inc()
                    message.ack()
                return
        for message, envelope in batch:
            self._handle(message, envelope)

    def _on_message(self, message: Any) -> None:
        try:
            envelope = decode_envelope(message.body)
        except Exception as exc:  # noqa: BLE001 — whatever it is, it is not ours to run
            log.error("worker %s: invalid envelope (%s); dead-lettered", self.name, exc)
            DEAD.labels(self.name).inc()
            HANDLED.labels(self.name, "dead").inc()
            self._dead_letter(message, f"invalid envelope: {type(exc).__name__}: {exc}"[:500])
            return
        self._log_redelivery(message, envelope)
        if self.batch_handler is not None:
            self._pending.append((message, envelope))
            return
        if self.delay:
            time.sleep(self.delay)
        self._handle(message, envelope)

    def _log_redelivery(self, message: Any, envelope: dict[str, Any]) -> None:
        """One INFO line per message the broker delivers again (requeued, or unacked by a
        worker or connection that died): which event, which delivery."""
        count = int((message.headers or {}).get("x-delivery-count") or 0)
        if not count and not (message.delivery_info or {}).get("redelivered"):
            return
        payload = envelope.get("payload") or {}
        log.info("worker %s: %s redelivered (delivery %d)%s", self.name,
                 envelope["event_type"], count + 1,
                 f" for {payload['file_path']}" if payload.get("file_path") else "",
                 extra={"correlation_id": envelope.get("correlation_id"),
                        "event_id": envelope.get("event_id"), "delivery": count + 1,
                        "sync_id": payload.get("sync_id")})

    def _handle(self, message: Any, envelope: dict[str, Any]) -> None:
        try:
            with self._busy():
                outcome = self._until_store_answers(lambda: self.handler(envelope))
        except Exception as exc:  # noqa: BLE001
            headers = message.headers or {}
            attempts = int(headers.get("x-delivery-count") or 0) + 1
            reason = f"{type(exc).__name__}: {exc}"[:500]
            if attempts >= self.delivery_limit:
                log.error(
                    "worker %s: %s failed %d times (%s); dead-lettered",
                    self.name,
                    envelope["event_type"],
                    attempts,
                    reason,
                )
                if self.on_poison is not None:
                    with contextlib.suppress(Exception):
                        self.on_poison(envelope, reason)
                DEAD.labels(self.name).inc()
                HANDLED.labels(self.name, "dead").inc()
                self._dead_letter(message, reason)
            else:
                log.warning(
                    "worker %s: %s failed (attempt %d: %s); requeued",
                    self.name,
                    envelope["event_type"],
                    attempts,
                    reason,
                    exc_info=True,
                )
                time.sleep(min(2.0, 0.2 * attempts))
                HANDLED.labels(self.name, "retry").inc()
                message.requeue()
            return
        HANDLED.labels(self.name, outcome).inc()
        message.ack()

    def _dead_letter(self, message: Any, reason: str) -> None:
        """To ``fgd.dlx`` with the reason in its headers, then ack; a plain reject (the
        broker dead-letters it, reason ``rejected``) if that publish cannot be made."""
        headers = {
            **(message.headers or {}),
            "x-fgd-reason": reason,
            "x-fgd-worker": self.name,
            "x-fgd-queue": self.queue_name,
        }
        props = message.properties or {}
        extra = {
            k: props[k]
            for k in ("message_id", "correlation_id", "timestamp", "type")
            if props.get(k) is not None
        }
        try:
            Producer(message.channel).publish(
                message.body,
                exchange=DEAD_LETTER_EXCHANGE,
                routing_key=(message.delivery_info or {}).get("routing_key") or self.queue_name,
                headers=headers,
                content_type=message.content_type or "application/octet-stream",
                content_encoding=message.content_encoding or "binary",
                delivery_mode=2,
                retry=False,
                declare=[],
                **extra,
            )
        except Exception as exc:  # noqa: BLE001
            log.warning(
                "worker %s: could not republish a dead letter (%s); rejecting", self.name, exc
            )
            message.reject(requeue=False)
            return
        message.ack()
