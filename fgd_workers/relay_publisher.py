"""The relay's broker side: one connection and channel in confirm mode, batches confirmed.

``ConfirmingPublisher`` publishes stored envelopes to ``fgd.events`` and waits for the
broker to confirm a whole batch; ``BrokerUnavailable`` is how it says the broker failed.
Used by ``relay.Relay``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from typing import Any

import amqp
from kombu import Producer

from fgd_workers.bus import (
    declare_topology,
)

log = logging.getLogger("fgd_workers.relay")  # one logger name for the whole relay


class BrokerUnavailable(Exception):
    """The broker connection failed, a publish was nacked or confirms timed out."""


class ConfirmingPublisher:
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
        self,
        body: bytes,
        exchange: str,
        routing_key: str,
        headers: dict[str, Any],
        message_id: str,
        correlation_id: str | None,
        content_type: str,
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
                body,
                exchange=exchange,
                routing_key=routing_key,
                headers=headers,
                message_id=message_id,
                correlation_id=correlation_id,
                content_type=content_type,
                content_encoding="binary",
                delivery_mode=2,
                serializer=None,
                retry=False,
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
