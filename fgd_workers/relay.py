"""Event store → RabbitMQ relay: the event store is the outbox.

The relay follows the notification log from its recorded position and publishes each stored
envelope, byte for byte, to ``fgd.events`` (routing key = ``event_type``, ``message_id`` =
``event_id``). It publishes a batch, waits for the broker to confirm all of it, and only then
records the new position: a crash between the two republishes the batch (at-least-once;
consumers deduplicate on ``message_id``), it never loses an event.

One relay of a given name is active at a time: on PostgreSQL it holds a session advisory
lock (on the same connection that LISTENs for the recorder's NOTIFY and writes the position,
so losing that connection loses the lock and the right to record); on SQLite a ``flock``
beside the database file. A second relay polls the lock and publishes nothing meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from datetime import datetime
from typing import Any

import amqp
import orjson
import psycopg
from eventsourcing.persistence import Notification, PersistenceError
from eventsourcing.postgres import PostgresApplicationRecorder
from kombu.exceptions import KombuError
from prometheus_client import Counter, Gauge, Histogram

from fgd_core.adapters.observability import traceparent
from fgd_core.events.envelope import decode_envelope
from fgd_core.events.redaction import redacted_envelope
from fgd_workers.bus import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    HEARTBEAT_SECONDS,
    ConnectionFactory,
)
from fgd_workers.relay_coordination import PostgresCoordinator, SQLiteCoordinator
from fgd_workers.relay_publisher import BrokerUnavailable, ConfirmingPublisher

log = logging.getLogger("fgd_workers.relay")

INVALID_ROUTING_KEY = "relay.invalid"

PUBLISHED = Counter(
    "fgd_relay_published_total", "Events the relay published and the broker confirmed", ["relay"]
)
DEAD_LETTERED = Counter(
    "fgd_relay_dead_lettered_total", "Stored events that failed validation, sent to fgd.dlx",
    ["relay"],
)
LAG = Gauge("fgd_relay_lag", "Max notification id minus the relay's recorded position", ["relay"])
LATENCY = Histogram(
    "fgd_relay_publish_latency_seconds",
    "Event timestamp to broker confirm",
    ["relay"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RECONNECTS = Counter(
    "fgd_relay_reconnects_total", "Broker or database reconnections", ["relay", "side"]
)


class StoreUnavailable(Exception):
    """The event store (or the relay's lock/position connection) failed."""


BROKER_ERRORS = (OSError, amqp.exceptions.AMQPError, KombuError, BrokerUnavailable)
STORE_ERRORS = (psycopg.Error, PersistenceError, sqlite3.Error, OSError, StoreUnavailable)


# --- the relay -------------------------------------------------------------------------------


class Relay:
    """Publish every stored event to ``fgd.events``, at least once, in log order.

    ``run_once()`` publishes everything pending (0 if another relay holds the lock);
    ``run(stop_event)`` follows the log until ``stop_event`` is set, riding out broker and
    database outages with backoff.
    """

    def __init__(
        self,
        app: Any,
        connection_factory: ConnectionFactory,
        name: str = "relay",
        *,
        batch_size: int = 1000,
        poll_interval: float | None = None,
        lock_poll_interval: float = 0.5,
        confirm_timeout: float = 30.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.app = app
        self.recorder = app.recorder
        self.connection_factory = connection_factory
        self.name = name
        self.batch_size = batch_size
        self.is_postgres = isinstance(self.recorder, PostgresApplicationRecorder)
        self.coordinator: PostgresCoordinator | SQLiteCoordinator
        if self.is_postgres:
            self.coordinator = PostgresCoordinator(self.recorder, name)
        else:
            self.coordinator = SQLiteCoordinator(self.recorder, name)
        # PostgreSQL wakes us with NOTIFY; the poll is only a safety net there.
        self.poll_interval = poll_interval or (1.0 if self.is_postgres else 0.1)
        self.lock_poll_interval = lock_poll_interval
        self.confirm_timeout = confirm_timeout
        self.max_backoff = max_backoff
        self.publisher: ConfirmingPublisher | None = None
        self._published = PUBLISHED.labels(name)
        self._dead = DEAD_LETTERED.labels(name)
        self._lag = LAG.labels(name)
        self._latency = LATENCY.labels(name)

    @property
    def position(self) -> int | None:
        """The recorded position while this relay is the active one, else None."""
        return self.coordinator.position

    # -- public loop ----------------------------------------------------------------------

    def run_once(self) -> int:
        """Publish everything pending; the number published (0 if not the active relay)."""
        try:
            if not self._acquire():
                return 0
            total = 0
            while True:
                count, more = self._cycle()
                total += count
                if not more:
                    return total
        except BrokerUnavailable:
            self._drop_publisher()
            raise
        except StoreUnavailable:
            self.coordinator.release()
            raise

    def run(self, stop_event: threading.Event) -> None:
        delay = 0.0
        waiting_logged = False
        try:
            while not stop_event.is_set():
                try:
                    if not self._acquire():
                        if not waiting_logged:
                            log.info("relay %s: another relay is active; waiting", self.name)
                            waiting_logged = True
                        stop_event.wait(self.lock_poll_interval)
                        continue
                    if waiting_logged:
                        log.info("relay %s: now the active relay", self.name)
                        waiting_logged = False
                    _, more = self._cycle()
                    if delay:
                        log.info("relay %s: broker and event store answer again", self.name)
                    delay = 0.0
                    if not more:
                        self._idle(stop_event)
                except BrokerUnavailable as exc:
                    # One WARNING per outage; its further attempts at debug.
                    level = logging.DEBUG if delay else logging.WARNING
                    delay = min(self.max_backoff, delay * 2 or 0.1)
                    log.log(level, "relay %s: broker unavailable (%s); retrying in %.1fs, with "
                            "backoff up to %.0fs", self.name, exc.__cause__ or exc, delay,
                            self.max_backoff)
                    RECONNECTS.labels(self.name, "broker").inc()
                    self._drop_publisher()
                    stop_event.wait(delay)
                except StoreUnavailable as exc:
                    level = logging.DEBUG if delay else logging.WARNING
                    delay = min(self.max_backoff, delay * 2 or 0.1)
                    log.log(level, "relay %s: event store unavailable (%s); retrying in %.1fs, "
                            "with backoff up to %.0fs", self.name,
                            type(exc.__cause__ or exc).__name__, delay, self.max_backoff)
                    RECONNECTS.labels(self.name, "database").inc()
                    self.coordinator.release()
                    stop_event.wait(delay)
        finally:
            self.close()

    def close(self) -> None:
        self._drop_publisher()
        self.coordinator.release()

    # -- steps ----------------------------------------------------------------------------

    def _acquire(self) -> bool:
        try:
            return self.coordinator.acquire()
        except STORE_ERRORS as exc:
            self.coordinator.release()
            raise StoreUnavailable(str(exc)) from exc

    def _connect(self) -> ConfirmingPublisher:
        if self.publisher is None:
            connection = self.connection_factory()
            try:
                self.publisher = ConfirmingPublisher(connection, self.confirm_timeout)
            except BROKER_ERRORS as exc:
                with contextlib.suppress(Exception):
                    connection.release()
                raise BrokerUnavailable(str(exc)) from exc
            log.info("relay %s: connected to %s", self.name, connection.as_uri())
        return self.publisher

    def _drop_publisher(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None

    def _cycle(self) -> tuple[int, bool]:
        """Publish one batch after the position; (events published, maybe more pending)."""
        position = self.coordinator.position
        assert position is not None
        try:
            notifications = self.recorder.select_notifications(
                start=position, limit=self.batch_size, inclusive_of_start=False
            )
        except STORE_ERRORS as exc:
            raise StoreUnavailable(str(exc)) from exc
        if not notifications:
            self._update_lag(position)
            return 0, False
        publisher = self._connect()
        timestamps: list[str] = []
        try:
            for notification in notifications:
                timestamp = self._publish(publisher, notification)
                if timestamp is not None:
                    timestamps.append(timestamp)
            publisher.wait_for_confirms()
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(str(exc)) from exc
        confirmed = time.time()
        new_position = notifications[-1].id
        try:
            self.coordinator.store(new_position)
        except STORE_ERRORS as exc:
            # Published but not recorded: the next active relay republishes this batch.
            raise StoreUnavailable(str(exc)) from exc
        self._published.inc(len(timestamps))
        dead = len(notifications) - len(timestamps)
        if dead:
            self._dead.inc(dead)
        for ts in timestamps:
            self._latency.observe(max(0.0, confirmed - datetime.fromisoformat(ts).timestamp()))
        more = len(notifications) >= self.batch_size
        self._update_lag(new_position)
        return len(timestamps), more

    def _publish(self, publisher: ConfirmingPublisher, notification: Notification) -> str | None:
        """Publish one stored event; its timestamp, or None if it was dead-lettered."""
        body = notification.state
        try:
            envelope = decode_envelope(body)
        except Exception as exc:  # whatever is wrong with it, it must not reach consumers
            reason = f"{type(exc).__name__}: {exc}"[:500]
            log.error("relay %s: stored event %s is not a valid envelope (%s); dead-lettered",
                      self.name, notification.id, reason)
            publisher.publish(
                body, DEAD_LETTER_EXCHANGE.name, INVALID_ROUTING_KEY,
                headers={"x-fgd-reason": reason, "x-fgd-notification-id": notification.id,
                         "x-fgd-originator-id": str(notification.originator_id),
                         "x-fgd-originator-version": notification.originator_version},
                message_id=f"{notification.originator_id}:{notification.originator_version}",
                correlation_id=None, content_type="application/octet-stream",
            )
            return None
        if (shown := redacted_envelope(envelope)) is not None:  # a legacy URL's credentials
            body = orjson.dumps(shown)
        event_id = envelope["event_id"]
        correlation_id = envelope["correlation_id"]
        publisher.publish(
            body,
            EVENTS_EXCHANGE.name,
            envelope["event_type"],
            headers={
                "traceparent": traceparent(correlation_id, event_id),
                "fabric_id": envelope["fabric_id"],
                "correlation_id": correlation_id,
            },
            message_id=event_id,
            correlation_id=correlation_id,
            content_type="application/json",
        )
        return str(envelope["timestamp"])

    def _update_lag(self, position: int) -> None:
        try:
            top = self.recorder.max_notification_id() or 0
        except STORE_ERRORS:
            return  # a metric is not worth failing the loop for
        self._lag.set(max(0, top - position))

    def _idle(self, stop_event: threading.Event) -> None:
        """Wait for a NOTIFY (PostgreSQL) or the poll interval, keeping the broker alive."""
        deadline = time.monotonic() + self.poll_interval
        tick = min(1.0, HEARTBEAT_SECONDS / 4)
        while not stop_event.is_set():
            if self.publisher is not None:
                try:
                    self.publisher.heartbeat()
                except BROKER_ERRORS as exc:
                    raise BrokerUnavailable(str(exc)) from exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                if self.coordinator.wait(min(remaining, tick), stop_event):
                    return
            except STORE_ERRORS as exc:
                raise StoreUnavailable(str(exc)) from exc


__all__ = ["BrokerUnavailable", "Relay", "StoreUnavailable"]
