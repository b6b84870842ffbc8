"""A Python client for FGD Sync's bus: trigger syncs, relay GitHub deliveries, follow events.

    from fgd_core.adapters.bus_client import FGDClient

    with FGDClient("amqp://user:pw@rabbit:5672//", token="0123…") as fgd:
        ended = fgd.events(["sync.completed", "sync.failed"], fabric_id=3)  # from now on
        reply = fgd.trigger_sync(3)                  # {"sync_id": "…", "status": "started"}
        for envelope in ended:
            print(envelope["event_type"], envelope["payload"]["sync_id"])
            break

The client is a convenience, not the contract: ``asyncapi.yaml`` documents every exchange,
routing key, header and payload, and plain kombu/pika/any AMQP 0-9-1 client is enough.

Commands go to the topic exchange ``fgd.commands`` (routing key = the command's name) with a
unique ``message_id`` (a redelivered or republished command with the same id starts nothing
new) and ``authorization: Token <key>`` in the headers. With ``reply_to`` set, the outcome is
published to that queue with the command's ``correlation_id``. A command the consumer
refuses (no/invalid token, permission, schema, not JSON, unknown command) gets NO reply: it is
dead-lettered to ``fgd.dlx`` (kept in ``fgd.dead``) with the reason in header
``x-fgd-reason``, so a waiting ``trigger_sync`` times out.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections import OrderedDict
from collections.abc import Generator, Iterable
from typing import Any
from uuid import uuid4

import orjson
from kombu import Connection, Consumer, Exchange, Producer, Queue, binding

__all__ = [
    "AUTHORIZATION_HEADER",
    "COMMANDS",
    "COMMANDS_EXCHANGE",
    "REASON_HEADER",
    "SYNC_TRIGGER",
    "UNROUTED_EXCHANGE",
    "WEBHOOK_GITHUB",
    "CommandError",
    "CommandTimeout",
    "FGDClient",
]

# -- the contract (asyncapi.yaml) ------------------------------------------------------------

EVENTS_EXCHANGE_NAME = "fgd.events"
COMMANDS_EXCHANGE_NAME = "fgd.commands"
UNROUTED_EXCHANGE_NAME = "fgd.commands.unrouted"
SYNC_TRIGGER = "sync.trigger"
WEBHOOK_GITHUB = "webhook.github"
COMMANDS = (SYNC_TRIGGER, WEBHOOK_GITHUB)
AUTHORIZATION_HEADER = "authorization"
REASON_HEADER = "x-fgd-reason"

# Commands no queue is bound for (unknown routing keys) reach the intake queue through this
# alternate exchange, so they are dead-lettered with a reason rather than dropped.
UNROUTED_EXCHANGE = Exchange(UNROUTED_EXCHANGE_NAME, type="fanout", durable=True)
COMMANDS_EXCHANGE = Exchange(
    COMMANDS_EXCHANGE_NAME,
    type="topic",
    durable=True,
    arguments={"alternate-exchange": UNROUTED_EXCHANGE_NAME},
)
EVENTS_EXCHANGE = Exchange(EVENTS_EXCHANGE_NAME, type="topic", durable=True)


def declare_command_exchanges(channel: Any) -> None:
    """``fgd.commands`` and its alternate exchange (idempotent, same arguments everywhere)."""
    UNROUTED_EXCHANGE(channel).declare()
    COMMANDS_EXCHANGE(channel).declare()


class CommandError(Exception):
    """The consumer answered with the spec's error body (e.g. FGD_3001, a sync is running)."""

    def __init__(self, body: dict[str, Any]) -> None:
        error = body.get("error") or {}
        self.body = body
        self.code: str = error.get("code", "")
        self.message: str = error.get("message", "")
        self.details: dict[str, Any] = error.get("details") or {}
        self.correlation_id: str | None = error.get("correlation_id")
        super().__init__(f"{self.code}: {self.message}")


class CommandTimeout(TimeoutError):
    """No reply in time: the consumer is down or slow (a refused command is answered with
    an error: CommandError), or the command was refused for its properties or failed
    ``x-delivery-limit`` times (see ``fgd.dead``, header ``x-fgd-reason``)."""


class FGDClient:
    """One connection to the broker; not thread-safe (use one client per thread)."""

    def __init__(
        self,
        broker_url: str,
        token: str | None = None,
        *,
        heartbeat: float = 20,
        connect_timeout: float = 5.0,
    ) -> None:
        self.token = token
        self.connection = Connection(
            broker_url,
            heartbeat=heartbeat,
            connect_timeout=connect_timeout,
            transport_options={"confirm_publish": True},
        )
        self._channel: Any = None
        self._reply_queue: str | None = None
        self._replies: dict[str, dict[str, Any]] = {}
        self._reply_consumer: Consumer | None = None

    # -- plumbing ------------------------------------------------------------------------

    def __enter__(self) -> FGDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._reply_consumer is not None:
                self._reply_consumer.cancel()
        self._reply_consumer, self._reply_queue, self._channel = None, None, None
        self.connection.release()

    @property
    def channel(self) -> Any:
        if self._channel is None:
            self.connection.ensure_connection(max_retries=3)
            self._channel = self.connection.channel()
            declare_command_exchanges(self._channel)
        return self._channel

    def _ensure_reply_queue(self) -> str:
        """An exclusive, auto-delete queue for this client's replies."""
        if self._reply_queue is None:
            queue = Queue(f"fgd.reply.{uuid4().hex}", exclusive=True, auto_delete=True,
                          durable=False)
            bound = queue(self.channel)
            bound.declare()
            self._reply_queue = bound.name
            self._reply_consumer = Consumer(
                self.channel, queues=[bound], on_message=self._on_reply, no_ack=True
            )
            self._reply_consumer.consume()
        return self._reply_queue

    def _on_reply(self, message: Any) -> None:
        cid = message.properties.get("correlation_id")
        try:
            body = orjson.loads(message.body)
        except orjson.JSONDecodeError:
            body = {"error": {"code": "FGD_5001", "message": "reply is not JSON", "details": {}}}
        if cid:
            self._replies[cid] = body

    def _wait_reply(self, correlation_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while correlation_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandTimeout(f"no reply for correlation id {correlation_id} "
                                     f"within {timeout} s")
            with contextlib.suppress(TimeoutError):
                self.connection.drain_events(timeout=min(remaining, 1.0))
        return self._replies.pop(correlation_id)

    def publish_command(
        self,
        command: str,
        body: dict[str, Any],
        *,
        correlation_id: str | None = None,
        message_id: str | None = None,
        reply: bool = True,
        headers: dict[str, Any] | None = None,
    ) -> tuple[str, str]:
        """Publish one command (confirmed by the broker); returns (message_id, correlation id).
        With ``reply``, the reply queue is declared first, so no answer can be missed."""
        cid = correlation_id or str(uuid4())
        mid = message_id or str(uuid4())
        all_headers = dict(headers or {})
        if self.token:
            all_headers.setdefault(AUTHORIZATION_HEADER, f"Token {self.token}")
        properties: dict[str, Any] = {}
        if reply:
            properties["reply_to"] = self._ensure_reply_queue()
        Producer(self.channel).publish(
            orjson.dumps(body),
            exchange=COMMANDS_EXCHANGE_NAME,
            routing_key=command,
            headers=all_headers,
            message_id=mid,
            correlation_id=cid,
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=2,
            serializer=None,
            retry=False,
            **properties,
        )
        return mid, cid

    def _command(
        self,
        command: str,
        body: dict[str, Any],
        correlation_id: str | None,
        message_id: str | None,
        wait: bool,
        timeout: float,
    ) -> dict[str, Any]:
        mid, cid = self.publish_command(
            command, body, correlation_id=correlation_id, message_id=message_id, reply=wait
        )
        if not wait:
            return {"status": "published", "message_id": mid, "correlation_id": cid}
        reply = self._wait_reply(cid, timeout)
        if "error" in reply:
            raise CommandError(reply)
        return reply

    # -- commands ------------------------------------------------------------------------

    def trigger_sync(
        self,
        fabric_id: int,
        trigger: str = "manual",
        options: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        wait: bool = True,
        timeout: float = 30,
        *,
        message_id: str | None = None,
    ) -> dict[str, Any]:
        """Ask for a sync of ``fabric_id``. With ``wait``: ``{"sync_id", "status": "started"}``
        once it is recorded (its ``sync.started`` carries ``correlation_id``); CommandError
        for an error answer (FGD_3001 names the running sync in ``details``), CommandTimeout
        without an answer. Without ``wait``: ``{"status": "published", "message_id",
        "correlation_id"}``. Republishing with the same ``message_id`` starts nothing new."""
        cid = correlation_id or str(uuid4())
        body: dict[str, Any] = {"fabric_id": fabric_id, "trigger": trigger,
                                "options": dict(options or {}), "correlation_id": cid}
        return self._command(SYNC_TRIGGER, body, cid, message_id, wait, timeout)

    def deliver_webhook(
        self,
        event: str,
        delivery_id: str,
        signature: str,
        body: bytes | str,
        *,
        wait: bool = True,
        timeout: float = 30,
        correlation_id: str | None = None,
    ) -> dict[str, Any]:
        """Relay a GitHub delivery exactly as received (``X-GitHub-Event``,
        ``X-GitHub-Delivery``, ``X-Hub-Signature-256`` and the raw body). The reply is the
        HTTP endpoint's body (``accepted`` with ``triggered`` syncs, ``duplicate``, ``pong``,
        ``ignored``); a bad signature is dead-lettered and answered with an error
        (CommandError, ``details.reason`` "signature")."""
        command: dict[str, Any] = {"event": event, "delivery_id": delivery_id,
                                   "signature": signature}
        if isinstance(body, str):
            command["body"] = body
        else:
            try:
                command["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                command["body_base64"] = base64.b64encode(body).decode("ascii")
        return self._command(WEBHOOK_GITHUB, command, correlation_id, delivery_id, wait, timeout)

    # -- events --------------------------------------------------------------------------

    def events(
        self,
        event_types: Iterable[str] | None = None,
        fabric_id: int | None = None,
        queue: str | None = None,
        *,
        timeout: float | None = None,
        validate: bool = True,
    ) -> Generator[dict[str, Any], None, None]:
        """Envelopes published on ``fgd.events``, in order of arrival, validated against
        ``schemas/``. ``event_types`` are routing keys (``sync.completed``, or AMQP topic
        patterns such as ``sync.*``); ``fabric_id`` keeps that fabric's events only.

        ``queue=None``: an exclusive, auto-delete queue of this iteration (events published
        while nobody iterates are not kept). ``queue="name"``: a durable quorum queue of that
        name — it keeps events between runs; delete it when done. A message is acked when the
        next one is asked for (at-least-once); repeats of an ``event_id`` already yielded by
        this iterator are skipped. ``timeout``: stop after that many idle seconds.

        The queue is declared and consumed when ``events`` is called, so events published
        between the call and the first ``next()`` are kept; close the iterator (or the
        client) to let the queue go."""
        keys = list(event_types or ["#"])
        bindings = [binding(EVENTS_EXCHANGE, routing_key=k) for k in keys]
        if queue is None:
            q = Queue(f"fgd.client.{uuid4().hex}", bindings=bindings, exclusive=True,
                      auto_delete=True, durable=False)
        else:
            q = Queue(queue, bindings=bindings, durable=True, auto_delete=False,
                      queue_arguments={"x-queue-type": "quorum"})
        self.connection.ensure_connection(max_retries=3)
        channel = self.connection.channel()
        EVENTS_EXCHANGE(channel).declare()
        pending: list[Any] = []
        consumer = Consumer(channel, queues=[q], on_message=pending.append, no_ack=False,
                            prefetch_count=100)
        # Declared and consuming now, not at the first next(): what is published after this
        # call (e.g. by a trigger_sync made before iterating) is not missed.
        consumer.consume()
        return self._follow(channel, consumer, pending, fabric_id, timeout, validate)

    def _follow(
        self,
        channel: Any,
        consumer: Consumer,
        pending: list[Any],
        fabric_id: int | None,
        timeout: float | None,
        validate: bool,
    ) -> Generator[dict[str, Any], None, None]:
        from fgd_core.events.envelope import decode_envelope

        seen: OrderedDict[str, None] = OrderedDict()
        try:
            idle_since = time.monotonic()
            while True:
                if not pending:
                    try:
                        self.connection.drain_events(timeout=1.0)
                    except TimeoutError:
                        if timeout is not None and time.monotonic() - idle_since > timeout:
                            return
                    continue
                idle_since = time.monotonic()
                message = pending.pop(0)
                try:
                    envelope = (decode_envelope(message.body) if validate
                                else orjson.loads(message.body))
                except Exception:  # noqa: BLE001 — not ours to yield: leave it to fgd.dead
                    message.reject(requeue=False)
                    continue
                event_id = str(envelope.get("event_id"))
                wanted = fabric_id is None or envelope.get("fabric_id") == fabric_id
                if not wanted or event_id in seen:
                    message.ack()
                    continue
                seen[event_id] = None
                if len(seen) > 10_000:
                    seen.popitem(last=False)
                yield envelope
                message.ack()
        finally:
            with contextlib.suppress(Exception):
                consumer.cancel()
            with contextlib.suppress(Exception):
                channel.close()
