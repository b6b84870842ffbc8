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
import fcntl
import logging
import socket
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import amqp
import orjson
import psycopg
from eventsourcing.persistence import Notification, PersistenceError
from eventsourcing.postgres import PostgresApplicationRecorder
from kombu import Producer
from kombu.exceptions import KombuError
from prometheus_client import Counter, Gauge, Histogram
from psycopg.sql import SQL, Identifier

from fgd_core.adapters.observability import traceparent
from fgd_core.adapters.persistence import SCHEMA_LOCK
from fgd_core.events.envelope import decode_envelope
from fgd_core.events.redaction import redacted_envelope
from fgd_workers.bus import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    HEARTBEAT_SECONDS,
    ConnectionFactory,
    declare_topology,
)
from fgd_workers.liveness import relay_lock_key

log = logging.getLogger("fgd_workers.relay")

POSITION_TABLE = "fgd_relay_position"
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


class BrokerUnavailable(Exception):
    """The broker connection failed, a publish was nacked or confirms timed out."""


class StoreUnavailable(Exception):
    """The event store (or the relay's lock/position connection) failed."""


BROKER_ERRORS = (OSError, amqp.exceptions.AMQPError, KombuError, BrokerUnavailable)
STORE_ERRORS = (psycopg.Error, PersistenceError, sqlite3.Error, OSError, StoreUnavailable)


# --- publishing ------------------------------------------------------------------------------


class _Publisher:
    """One broker connection + channel in confirm mode. ``publish`` N, then
    ``wait_for_confirms`` once: the broker acks batches (``multiple``), far cheaper than a
    round trip per message."""

    def __init__(self, connection: Any, confirm_timeout: float) -> None:
        self.connection = connection
        self.confirm_timeout = confirm_timeout
        # One attempt, no kombu-internal sleeping retries: the relay's loop owns the backoff.
        connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)
        self.channel = connection.channel()
        declare_topology(self.channel)
        raw = getattr(connection.connection, "confirm_publish", None)
        # py-amqp channel: confirm mode with our own ack bookkeeping. Any other transport
        # (memory://, a connection opened with confirm_publish): kombu's per-message path.
        self.native = isinstance(self.channel, amqp.Channel) and not raw
        self._tag = 0
        self._unconfirmed: set[int] = set()
        self._nacked = False
        if self.native:
            self.channel.confirm_select()
            self.channel.events["basic_ack"].add(self._on_ack)
            self.channel.events["basic_nack"].add(self._on_nack)
        else:
            self.producer = Producer(self.channel)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > tag}
        else:
            self._unconfirmed.discard(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._nacked = True
        self._on_ack(tag, multiple)

    def publish(
        self, body: bytes, exchange: str, routing_key: str, headers: dict[str, Any],
        message_id: str, correlation_id: str | None, content_type: str,
    ) -> None:
        if self.native:
            message = amqp.Message(
                body,
                content_type=content_type,
                delivery_mode=2,
                message_id=message_id,
                correlation_id=correlation_id,
                application_headers=headers,
            )
            self.channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
            self._tag += 1
            self._unconfirmed.add(self._tag)
        else:
            self.producer.publish(
                body, exchange=exchange, routing_key=routing_key, headers=headers,
                message_id=message_id, correlation_id=correlation_id,
                content_type=content_type, content_encoding="binary", delivery_mode=2,
                serializer=None, retry=False,
            )

    def wait_for_confirms(self) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        while self._unconfirmed and not self._nacked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerUnavailable(f"{len(self._unconfirmed)} publishes not confirmed")
            try:
                self.connection.drain_events(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
        if self._nacked:
            self._nacked = False
            self._unconfirmed.clear()
            raise BrokerUnavailable("the broker nacked a publish")

    def heartbeat(self) -> None:
        """Keep an idle connection alive (and notice a dead one)."""
        if not self.native:
            return
        self.connection.heartbeat_check()
        with contextlib.suppress(TimeoutError, socket.timeout):
            self.connection.drain_events(timeout=0.001)

    def close(self) -> None:
        try:
            self.connection.release()
        except Exception:  # closing a broken connection may fail in many ways
            log.debug("closing the broker connection failed", exc_info=True)


# --- coordination: one active relay, its position, wake-ups ---------------------------------


class _PostgresCoordinator:
    """Advisory lock + LISTEN + position writes, all on one dedicated connection."""

    def __init__(self, recorder: PostgresApplicationRecorder, name: str) -> None:
        datastore = recorder.datastore
        self.name = name
        self.schema = datastore.schema
        pool_kwargs: Any = datastore.pool.kwargs  # a dict (psycopg_pool allows a callable)
        self.kwargs = {k: v for k, v in pool_kwargs.items() if k != "row_factory"}
        self.channel = recorder.channel_name
        self.key = relay_lock_key(recorder, name)  # the health endpoint looks for it too
        self.table = SQL("{}.{}").format(Identifier(self.schema), Identifier(POSITION_TABLE))
        self.conn: psycopg.Connection[Any] | None = None
        self.position: int | None = None  # set while the lock is held

    def acquire(self) -> bool:
        if self.position is not None:
            return True
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(
                **self.kwargs,
                autocommit=True,
                connect_timeout=5,
                application_name=f"fgd-relay:{self.name}"[:63],
                # A silently dead server is noticed within seconds, and so is the lock's loss.
                keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
            )
        conn = self.conn
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if not row or not row[0]:
            return False
        # LISTEN before reading the position: nothing committed after this can be missed.
        conn.execute(SQL("LISTEN {}").format(Identifier(self.channel)))
        with conn.transaction():
            conn.execute(SCHEMA_LOCK)
            conn.execute(
                SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, position bigint"
                    " NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())").format(self.table)
            )
        conn.execute(
            SQL("INSERT INTO {} (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING").format(
                self.table), (self.name,),
        )
        row = conn.execute(
            SQL("SELECT position FROM {} WHERE name = %s").format(self.table), (self.name,)
        ).fetchone()
        self.position = int(row[0]) if row else 0
        return True

    def store(self, position: int) -> None:
        assert self.conn is not None
        self.conn.execute(
            SQL("UPDATE {} SET position = GREATEST(position, %s), updated_at = now()"
                " WHERE name = %s").format(self.table), (position, self.name),
        )
        self.position = position

    def wait(self, timeout: float, stop_event: threading.Event) -> bool:
        """Block until a NOTIFY (True) or ``timeout`` (False)."""
        assert self.conn is not None
        return any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))

    def release(self) -> None:
        self.position = None
        if self.conn is not None:
            try:
                self.conn.close()  # ends the session: the advisory lock goes with it
            except Exception:
                log.debug("closing the relay's database connection failed", exc_info=True)
            self.conn = None


_MEMORY_LOCKS: dict[str, threading.Lock] = {}


class _SQLiteCoordinator:
    """``flock`` on ``<database>.<name>.relay.lock``; position in the database; polling."""

    def __init__(self, recorder: Any, name: str) -> None:
        self.recorder = recorder
        self.name = name
        pool = recorder.datastore.pool
        self.memory = pool.is_sqlite_memory_mode
        self.lock_path = Path(f"{pool.db_name}.{name}.relay.lock")
        self.lock_file: Any = None
        self.memory_lock: threading.Lock | None = None
        self.position: int | None = None

    def acquire(self) -> bool:
        if self.position is not None:
            return True
        if self.memory:
            lock = _MEMORY_LOCKS.setdefault(f"{id(self.recorder)}:{self.name}", threading.Lock())
            if not lock.acquire(blocking=False):
                return False
            self.memory_lock = lock
        else:
            handle = open(self.lock_path, "a+b")  # noqa: SIM115 — held for the relay's life
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self.lock_file = handle
        try:
            with self.recorder.datastore.transaction(commit=True) as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} (name TEXT PRIMARY KEY,"
                    " position INTEGER NOT NULL)"
                )
                cursor.execute(
                    f"INSERT OR IGNORE INTO {POSITION_TABLE} (name, position) VALUES (?, 0)",
                    (self.name,),
                )
                cursor.execute(
                    f"SELECT position FROM {POSITION_TABLE} WHERE name = ?", (self.name,)
                )
                row = cursor.fetchone()
        except BaseException:
            self.release()
            raise
        self.position = int(row[0]) if row else 0
        return True

    def store(self, position: int) -> None:
        with self.recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"UPDATE {POSITION_TABLE} SET position = max(position, ?) WHERE name = ?",
                (position, self.name),
            )
        self.position = position

    def wait(self, timeout: float, stop_event: threading.Event) -> bool:
        stop_event.wait(timeout)
        return False

    def release(self) -> None:
        self.position = None
        if self.lock_file is not None:
            try:
                fcntl.flock(self.lock_file, fcntl.LOCK_UN)
            finally:
                self.lock_file.close()
                self.lock_file = None
        if self.memory_lock is not None:
            self.memory_lock.release()
            self.memory_lock = None


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
        self.coordinator: _PostgresCoordinator | _SQLiteCoordinator
        if self.is_postgres:
            self.coordinator = _PostgresCoordinator(self.recorder, name)
        else:
            self.coordinator = _SQLiteCoordinator(self.recorder, name)
        # PostgreSQL wakes us with NOTIFY; the poll is only a safety net there.
        self.poll_interval = poll_interval or (1.0 if self.is_postgres else 0.1)
        self.lock_poll_interval = lock_poll_interval
        self.confirm_timeout = confirm_timeout
        self.max_backoff = max_backoff
        self.publisher: _Publisher | None = None
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

    def _connect(self) -> _Publisher:
        if self.publisher is None:
            connection = self.connection_factory()
            try:
                self.publisher = _Publisher(connection, self.confirm_timeout)
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

    def _publish(self, publisher: _Publisher, notification: Notification) -> str | None:
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
