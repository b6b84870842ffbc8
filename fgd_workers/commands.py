"""Bus commands on RabbitMQ: other systems trigger syncs and relay GitHub deliveries.

Topology (``asyncapi.yaml`` is the contract):

* ``fgd.commands`` — durable topic exchange, routing key = the command (``sync.trigger``,
  ``webhook.github``); its alternate exchange ``fgd.commands.unrouted`` (fanout) catches
  every routing key no queue is bound for.
* ``fgd.commands.intake`` — durable quorum queue bound to both commands and to the alternate
  exchange, dead-lettering to ``fgd.dlx`` after ``x-delivery-limit`` deliveries.

What a command does is ``fgd_workers.command_intake`` (no AMQP there). A command is acked only
after its outcome is committed and its reply (if ``reply_to``) published.

Refused — an unknown command, a body that is not JSON or breaks its schema, no/invalid
token, a permission missing, no ``message_id``, a bad GitHub signature: audited as a denied
action, republished (with publisher confirms) to ``fgd.dlx`` with header ``x-fgd-reason``
(and the token redacted), counted in ``fgd_commands_dead_lettered_total``, then acked; with
``reply_to`` (unless its properties were what was refused) it is also answered with the
spec's error body, so its sender need not wait. A handler that raises (database down …) is
requeued until its delivery count reaches the limit, then dead-lettered the same way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import orjson
from kombu import Connection, Consumer, Producer, Queue, binding
from prometheus_client import Counter

from fgd_core.adapters.bus_client import (
    AUTHORIZATION_HEADER,
    COMMANDS,
    COMMANDS_EXCHANGE,
    REASON_HEADER,
    UNROUTED_EXCHANGE,
    declare_command_exchanges,
)
from fgd_core.errors import FGDErrorCodes, error_body
from fgd_core.redact import REDACTED
from fgd_workers import command_guard
from fgd_workers.bus import (
    DEAD_LETTER_EXCHANGE,
    DEFAULT_DELIVERY_LIMIT,
    BusyHeartbeat,
    ConnectionFactory,
    consume_forever,
    dead_lettering_queue,
    declare_topology,
    one_write,
    until_store_answers,
)
from fgd_workers.command_intake import (
    REFUSAL_REASONS,
    Accepted,
    Command,
    CommandIntake,
    Refused,
    Result,
)

log = logging.getLogger("fgd_workers.commands")

INTAKE_QUEUE = "fgd.commands.intake"
POISON = "poison"  # failed delivery-limit times
DEAD_LETTER_REASONS = (*REFUSAL_REASONS, POISON)

COMMANDS_HANDLED = Counter(
    "fgd_commands_total", "Bus commands handled", ["command", "outcome"]
)
COMMANDS_DEAD = Counter(
    "fgd_commands_dead_lettered_total", "Bus commands refused and dead-lettered",
    ["command", "reason"],
)

# -- topology -------------------------------------------------------------------------------


def intake_queue(name: str = INTAKE_QUEUE, delivery_limit: int = DEFAULT_DELIVERY_LIMIT) -> Queue:
    """The intake: both commands and the alternate exchange (unknown routing keys)."""
    return dead_lettering_queue(
        name,
        [*(binding(COMMANDS_EXCHANGE, routing_key=key) for key in COMMANDS),
         binding(UNROUTED_EXCHANGE, routing_key="")],
        delivery_limit,
    )


def declare_intake(
    channel: Any, name: str = INTAKE_QUEUE, delivery_limit: int = DEFAULT_DELIVERY_LIMIT
) -> Queue:
    """``fgd.events``/``fgd.dlx``/``fgd.dead``, ``fgd.commands`` and the intake queue."""
    declare_topology(channel)
    declare_command_exchanges(channel)
    bound = intake_queue(name, delivery_limit)(channel)
    bound.declare()
    return bound


# -- the AMQP consumer ----------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def refusal_reply(cmd: Command, result: Result) -> dict[str, Any]:
    """The spec's error body answering a refused command (FGD_1003; ``details.reason`` is
    its ``x-fgd-reason-code``)."""
    return error_body(
        FGDErrorCodes.VALIDATION_FAILED,
        f"command refused: {result.dead}"[:500],
        {"reason": result.kind, "dead_lettered": True},
        cmd.correlation_id,
    )


def dead_letter_headers(cmd: Command, reason: str, kind: str, attempts: int) -> dict[str, Any]:
    headers = {k: v for k, v in cmd.headers.items() if not k.startswith("x-fgd-")}
    if AUTHORIZATION_HEADER in headers:
        headers[AUTHORIZATION_HEADER] = REDACTED  # fgd.dead is no place for credentials
    headers.update({
        REASON_HEADER: reason[:500],
        "x-fgd-reason-code": kind,
        "x-fgd-command": cmd.routing_key[:100],
        "x-fgd-original-exchange": COMMANDS_EXCHANGE.name,
        "x-fgd-delivery-attempts": attempts,
    })
    return headers


# Unacked commands a consumer holds: twice the largest batch, so that the next batch is
# delivered while one is recorded (bench/bench_commands.py: with 128 = one batch the
# consumer waited for the broker after every ack, the machine ~80 % busy).
DEFAULT_PREFETCH = 512


class CommandConsumer:
    """Consumes the intake queue on its own connection; run several for throughput.

    Group commit: after a delivery, the consumer drains whatever else the broker has already
    delivered (up to ``batch_size``, half the prefetch count by default: while one batch is
    recorded the broker has already delivered the next, so the consumer never waits for it
    after an ack; waiting at most ``batch_wait`` seconds for each next frame) and hands the
    first deliveries among them to
    ``CommandIntake.handle_batch`` together: one commit for all their outcomes. Only then
    are replies published, refused commands dead-lettered and every message acked. If the
    batch raises, nothing of it is acked: every message is requeued and, redelivered, handled
    on its own (``handle``; a redelivered message is never batched), so one poisonous command
    cannot hold the others back and is dead-lettered after ``delivery_limit`` deliveries as
    before. ``batch_size`` 1 (or ``delivery_limit`` 1) handles every command on its own."""

    def __init__(
        self,
        intake_: CommandIntake,
        connection_factory: ConnectionFactory,
        *,
        queue_name: str = INTAKE_QUEUE,
        prefetch: int = DEFAULT_PREFETCH,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        name: str = "commands",
        max_backoff: float = 5.0,
        batch_size: int | None = None,
        batch_wait: float = 0.002,
    ) -> None:
        self.intake = intake_
        self.connection_factory = connection_factory
        self.queue_name, self.prefetch = queue_name, prefetch
        self.delivery_limit, self.name, self.max_backoff = delivery_limit, name, max_backoff
        self.batch_size = max(1, min(prefetch, batch_size or prefetch // 2))
        self.batch_wait = batch_wait
        self.ready = threading.Event()
        self._channel: Any = None
        self._conn: Connection | None = None
        self._dead_conn: Connection | None = None
        self._pending: list[Any] = []
        self._stop = threading.Event()

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        consume_forever(self._consume, stop, self.name, self.max_backoff,
                        on_error=self._close_dead_conn)
        self._close_dead_conn()

    def _close_dead_conn(self) -> None:
        if self._dead_conn is not None:
            with contextlib.suppress(Exception):
                self._dead_conn.release()
            self._dead_conn = None

    def _consume(self, stop: threading.Event) -> None:
        self._pending = []  # deliveries of a closed channel are the broker's again
        with self.connection_factory() as conn:
            conn.ensure_connection(max_retries=1)
            beat = BusyHeartbeat(conn)  # while a batch waits for the store, say we are alive
            try:
                self._consume_on(conn, beat, stop)
            finally:
                beat.close()

    def _consume_on(self, conn: Connection, beat: BusyHeartbeat, stop: threading.Event) -> None:
        channel = conn.channel()
        queue = declare_intake(channel, self.queue_name, self.delivery_limit)
        self._channel, self._conn = channel, conn
        # Dead letters are published with confirms, on a connection of their own (a
        # confirm wait on the consuming connection would dispatch deliveries re-entrantly).
        self._dead_conn = conn.clone(transport_options={"confirm_publish": True})
        consumer = Consumer(channel, queues=[queue], on_message=self._on_message,
                            prefetch_count=self.prefetch, no_ack=False)
        with consumer:
            log.info("%s consuming %s (prefetch %d, batches of up to %d)", self.name,
                     self.queue_name, self.prefetch, self.batch_size)
            self.ready.set()
            while not stop.is_set():
                # (publishing a reply may itself read deliveries — py-amqp drains events
                # in basic_publish — so a batch can be waiting already)
                if not self._pending:
                    try:
                        conn.drain_events(timeout=1.0)
                    except TimeoutError:
                        conn.heartbeat_check()
                        continue
                # what the broker has already sent joins the batch (a delivery is
                # several frames: drain until none comes within batch_wait)
                while self._pending and len(self._pending) < self.batch_size:
                    try:
                        conn.drain_events(timeout=self.batch_wait)
                    except TimeoutError:
                        break
                batch, self._pending = self._pending, []
                if batch:
                    with beat.busy():
                        self._process(batch)

    def _on_message(self, message: Any) -> None:
        self._pending.append(message)

    @staticmethod
    def _command(message: Any) -> Command:
        props = message.properties
        return Command(
            routing_key=message.delivery_info.get("routing_key") or "",
            body=message.body if isinstance(message.body, bytes) else
            str(message.body).encode("utf-8"),
            headers=dict(message.headers or {}),
            message_id=_text(props.get("message_id")),
            correlation_id=_text(props.get("correlation_id")),
            reply_to=_text(props.get("reply_to")),
            app_id=_text(props.get("app_id")),
        )

    def _process(self, messages: list[Any]) -> None:
        """Handle ``messages`` in delivery order: runs of first deliveries together, any
        redelivered one on its own."""
        run: list[tuple[Any, Command, int]] = []
        for message in messages:
            cmd = self._command(message)
            attempts = int(cmd.headers.get("x-delivery-count") or 0) + 1
            first = attempts == 1 and not message.delivery_info.get("redelivered")
            if first and self.batch_size > 1 and self.delivery_limit > 1:
                run.append((message, cmd, attempts))
                continue
            self._handle_run(run)
            run = []
            self._handle_one(message, cmd, attempts)
        self._handle_run(run)

    def _handle_run(self, run: list[tuple[Any, Command, int]]) -> None:
        if not run:
            return
        if len(run) == 1:
            self._handle_one(*run[0])
            return
        try:
            results = until_store_answers(
                lambda: self.intake.handle_batch([cmd for _, cmd, _ in run]), self._stop,
                self.name, self.max_backoff)
        except Exception as exc:  # noqa: BLE001 — the consumer never crashes on a message
            # Nothing is acked: all of them come back, redelivered, and are handled one by
            # one (whatever a run committed before the failure answers as a duplicate).
            log.warning("%s: batch of %d commands failed (%s: %s); requeued", self.name,
                        len(run), type(exc).__name__, str(exc)[:300])
            time.sleep(0.2)
            for message, cmd, _ in run:
                COMMANDS_HANDLED.labels(cmd.routing_key[:50], "retry").inc()
                message.requeue()
            return
        # The run's replies and its ack leave in one socket write.
        with one_write(self._conn) if self._conn is not None else contextlib.nullcontext():
            for (message, cmd, attempts), result in zip(run, results, strict=True):
                self._finish(message, cmd, result, attempts, ack=False)
            # One ack for the run: every delivery up to its last is answered (anything
            # delivered meanwhile has a higher tag; the deliveries before it were settled in
            # order).
            run[-1][0].ack(multiple=True)

    def _handle_one(self, message: Any, cmd: Command, attempts: int) -> None:
        try:
            result = until_store_answers(lambda: self.intake.handle(cmd), self._stop, self.name,
                                         self.max_backoff)
        except Exception as exc:  # noqa: BLE001 — the consumer never crashes on a message
            reason = f"{type(exc).__name__}: {exc}"[:500]
            if attempts >= self.delivery_limit:
                log.error("%s: %s failed %d times (%s); dead-lettered", self.name,
                          cmd.routing_key, attempts, reason)
                self._dead_letter(cmd, f"failed {attempts} times: {reason}", POISON,
                                  attempts)
                COMMANDS_HANDLED.labels(cmd.routing_key[:50], "dead").inc()
                message.ack()
            else:
                log.warning("%s: %s failed (attempt %d: %s); requeued", self.name,
                            cmd.routing_key, attempts, reason)
                time.sleep(min(2.0, 0.2 * attempts))
                COMMANDS_HANDLED.labels(cmd.routing_key[:50], "retry").inc()
                message.requeue()
            return
        self._finish(message, cmd, result, attempts)

    def _finish(
        self, message: Any, cmd: Command, result: Result, attempts: int, *, ack: bool = True
    ) -> None:
        """Dead-letter or answer a command whose outcome is recorded, then ack it (unless
        the caller acks a run at once)."""
        if result.dead is not None:
            log.warning("%s: %s message %s refused (%s); dead-lettered", self.name,
                        cmd.routing_key[:100], cmd.message_id, result.dead)
            self._dead_letter(cmd, result.dead, result.kind, attempts)
            COMMANDS_HANDLED.labels(cmd.routing_key[:50], "dead").inc()
            if cmd.reply_to and result.kind != command_guard.REASON:
                # The sender is waiting: tell it now, not after its timeout (fgd.dead keeps
                # the record). Not when the properties themselves (reply_to) were refused.
                self._reply(cmd, refusal_reply(cmd, result))
        else:
            if cmd.reply_to and result.reply is not None:
                self._reply(cmd, result.reply)
            COMMANDS_HANDLED.labels(cmd.routing_key[:50], str(result.kind)[:30]).inc()
        if ack:
            message.ack()

    def _reply(self, cmd: Command, reply: dict[str, Any]) -> None:
        # The channel's own publish, not a Producer's: a reply is one small message and the
        # Producer's per-call preparation was a third of its cost (bench_commands).
        channel = self._channel
        assert channel is not None
        properties = {"correlation_id": cmd.correlation_id} if cmd.correlation_id else {}
        message = channel.prepare_message(
            orjson.dumps(reply), content_type="application/json", content_encoding="utf-8",
            headers={"x-fgd-command": cmd.routing_key, "x-fgd-message-id": cmd.message_id or ""},
            properties=properties,
        )
        channel.basic_publish(message, exchange="", routing_key=cmd.reply_to)

    def _dead_letter(self, cmd: Command, reason: str, kind: str, attempts: int) -> None:
        COMMANDS_DEAD.labels(cmd.routing_key[:50] if cmd.routing_key in COMMANDS else "unknown",
                             kind).inc()
        assert self._dead_conn is not None
        properties: dict[str, Any] = {}
        for key in ("message_id", "correlation_id", "reply_to", "app_id"):
            if getattr(cmd, key):
                properties[key] = getattr(cmd, key)
        Producer(self._dead_conn.default_channel).publish(
            cmd.body, exchange=DEAD_LETTER_EXCHANGE.name, routing_key=cmd.routing_key,
            headers=dead_letter_headers(cmd, reason, kind, attempts),
            content_type="application/octet-stream", content_encoding="binary",
            serializer=None, delivery_mode=2, retry=True, retry_policy={"max_retries": 3},
            **properties,
        )


def consumers(
    intake_: CommandIntake,
    connection_factory: ConnectionFactory,
    concurrency: int = 1,
    **kwargs: Any,
) -> list[CommandConsumer]:
    return [CommandConsumer(intake_, connection_factory, name=f"commands-{i}", **kwargs)
            for i in range(concurrency)]


__all__ = [
    "COMMANDS",
    "DEAD_LETTER_REASONS",
    "INTAKE_QUEUE",
    "Accepted",
    "Command",
    "CommandConsumer",
    "CommandIntake",
    "Refused",
    "Result",
    "consumers",
    "declare_intake",
    "intake_queue",
]
