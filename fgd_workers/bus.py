"""RabbitMQ topology shared by every process, and the connection factory.

Every persisted event is published once (at least) to the durable topic exchange
``fgd.events`` with routing key = ``event_type``. Anyone binds a queue of their own to it.
Work queues are quorum queues (replicated, with a bounded ``x-delivery-limit``) that
dead-letter to ``fgd.dlx``; ``fgd.dead`` keeps everything dead-lettered for inspection.

Declarations are idempotent, so each process declares what it uses on every (re)connect
and no start-up order is needed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from kombu import Connection, Exchange, Queue, binding

from fgd_core.config import runtime_settings
from fgd_core.errors import is_store_outage

log = logging.getLogger("fgd_workers")
T = TypeVar("T")

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"

EVENTS_EXCHANGE = Exchange("fgd.events", type="topic", durable=True)
DEAD_LETTER_EXCHANGE = Exchange("fgd.dlx", type="topic", durable=True)
DEAD_QUEUE = Queue(
    "fgd.dead",
    exchange=DEAD_LETTER_EXCHANGE,
    routing_key="#",
    durable=True,
    queue_arguments={"x-queue-type": "quorum"},
)

# A message redelivered this many times is poison: the broker dead-letters it.
DEFAULT_DELIVERY_LIMIT = 5
HEARTBEAT_SECONDS = 20
CONNECT_TIMEOUT_SECONDS = 5.0

ConnectionFactory = Callable[[], Connection]


def broker_url(environ: Mapping[str, str] | None = None) -> str:
    """HEDGEHOG_FGD_BROKER_URL (Settings.runtime.broker_url), else the local default."""
    return runtime_settings(environ).broker_url or DEFAULT_BROKER_URL


def connect(
    url: str | None = None,
    *,
    heartbeat: float = HEARTBEAT_SECONDS,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    **transport_options: Any,
) -> Connection:
    """A (lazy) kombu connection. ``str(conn)`` / ``conn.as_uri()`` mask the password, so
    log those, never ``url``."""
    return Connection(
        url or broker_url(),
        heartbeat=heartbeat,
        connect_timeout=connect_timeout,
        transport_options=dict(transport_options),
    )


def connection_factory(url: str | None = None, **kwargs: Any) -> ConnectionFactory:
    """A zero-argument callable that opens a fresh connection each call (for reconnects)."""
    resolved = url or broker_url()
    return lambda: connect(resolved, **kwargs)


def declare_topology(channel: Any) -> None:
    """``fgd.events``, ``fgd.dlx`` and ``fgd.dead`` on ``channel`` (idempotent)."""
    EVENTS_EXCHANGE(channel).declare()
    DEAD_LETTER_EXCHANGE(channel).declare()
    DEAD_QUEUE(channel).declare()


def dead_lettering_queue(
    name: str,
    bindings: Iterable[Any],
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    arguments: Mapping[str, Any] | None = None,
) -> Queue:
    """A durable quorum queue with ``bindings``, whose rejected or too-often-redelivered
    (``delivery_limit``) messages go to ``fgd.dlx`` (routing key kept)."""
    if delivery_limit < 1:
        raise ValueError("delivery_limit must be at least 1")
    return Queue(
        name,
        bindings=list(bindings),
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name,
            "x-delivery-limit": delivery_limit,
            **(arguments or {}),
        },
    )


def work_queue(
    name: str,
    routing_keys: Iterable[str],
    *,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    arguments: Mapping[str, Any] | None = None,
) -> Queue:
    """A dead-lettering quorum queue bound to ``fgd.events`` with each routing key."""
    keys = list(routing_keys)
    if not keys:
        raise ValueError("a work queue needs at least one routing key")
    return dead_lettering_queue(
        name, [binding(EVENTS_EXCHANGE, routing_key=key) for key in keys], delivery_limit,
        arguments,
    )


def declare_work_queue(
    channel: Any,
    name: str,
    routing_keys: Iterable[str],
    *,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    arguments: Mapping[str, Any] | None = None,
) -> Queue:
    """Declare the topology and the work queue (with its bindings); returns the bound queue."""
    declare_topology(channel)
    queue = work_queue(name, routing_keys, delivery_limit=delivery_limit, arguments=arguments)
    bound = queue(channel)
    bound.declare()
    return bound


# A consume run that lasted this long had connected: its failure starts a new outage.
CONNECTED_FOR = 30.0


def consume_forever(
    consume: Callable[[threading.Event], None],
    stop: threading.Event,
    name: str,
    max_backoff: float,
    on_error: Callable[[], None] | None = None,
) -> None:
    """Run ``consume(stop)`` until ``stop`` is set, reconnecting after any failure (broker
    gone, channel closed, …) with exponential backoff up to ``max_backoff`` seconds; a run
    that returns normally resets the backoff. ``on_error`` cleans up after a failure."""
    backoff = 0.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            consume(stop)
            backoff = 0.0
        except Exception as exc:  # noqa: BLE001 — a consumer outlives its connections
            if time.monotonic() - started > CONNECTED_FOR:
                backoff = 0.0  # it was connected: a new outage, worth its own WARNING line
            first = backoff == 0.0
            backoff = min(max_backoff, backoff * 2 or 0.2)
            if first:
                log.warning("%s: %s: %s; reconnecting in %.1fs, with backoff up to %.0fs "
                            "(attempts logged at debug)", name, type(exc).__name__, exc,
                            backoff, max_backoff)
            else:
                log.debug("%s: %s: %s; reconnecting in %.1fs", name, type(exc).__name__, exc,
                          backoff)
            if on_error is not None:
                on_error()
            stop.wait(backoff)


class BusyHeartbeat:
    """AMQP heartbeats for a connection whose consuming thread is busy in a handler.

    The consuming thread sends heartbeats only between messages (``heartbeat_check`` in its
    drain loop). A handler that takes long — a git fetch, a retry waiting out a rate limit
    for up to ``retry_policy.max_delay`` — would let the broker close the connection after
    two missed heartbeats, and the message would be handled twice. While ``busy()`` is
    entered, a helper thread sends a heartbeat frame every ``interval`` seconds (py-amqp's
    frame writer is locked, so this write cannot interleave with the handler's own). It only
    sends: the broker's heartbeats are read when the consuming thread drains again."""

    def __init__(self, conn: Connection, interval: float | None = None) -> None:
        self.conn = conn
        negotiated = getattr(conn.connection, "heartbeat", None)  # connected by now
        beat = float(negotiated or conn.heartbeat or HEARTBEAT_SECONDS)
        self.interval = interval if interval is not None else max(0.2, beat / 3)
        self._busy = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="amqp-busy-heartbeat")
        self._thread.start()

    def _run(self) -> None:
        while not self._closed.is_set():
            if not self._busy.wait(0.5):
                continue
            if self._closed.wait(self.interval) or not self._busy.is_set():
                continue
            try:
                self.conn.connection.send_heartbeat()
            except Exception:  # noqa: BLE001 — a dead connection: the consumer will notice
                log.debug("heartbeat not sent", exc_info=True)

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        self._busy.set()
        try:
            yield
        finally:
            self._busy.clear()

    def close(self) -> None:
        self._closed.set()
        self._busy.set()  # wake the thread so that it sees the close
        self._thread.join(timeout=5)


@contextlib.contextmanager
def one_write(conn: Connection) -> Iterator[None]:
    """The frames written on ``conn`` inside the block leave in ONE socket write at its end.

    A batch of commands answers each with a reply and then acks them: a hundred small
    frames, each its own ``sendall`` (a system call here, a TCP segment for the broker to
    read). Collected, they are one. py-amqp hands its writer a view of a buffer it reuses,
    so each frame is copied; its frame writer is locked, so a heartbeat sent meanwhile from
    another thread joins the collection in order. Whatever was collected is written even if
    the block raises (what was published before the error leaves, as it would have)."""
    transport = getattr(getattr(conn, "connection", None), "transport", None)
    send = getattr(transport, "_write", None)  # py-amqp's socket writer (sock.sendall)
    if send is None:
        yield
        return
    chunks: list[bytes] = []
    transport._write = lambda data: chunks.append(bytes(data))  # type: ignore[union-attr]
    try:
        yield
    finally:
        transport._write = send  # type: ignore[union-attr]
        if chunks:
            transport.write(b"".join(chunks))  # type: ignore[union-attr]


def until_store_answers(call: Callable[[], T], stop: threading.Event, name: str,
                        max_backoff: float = 5.0) -> T:
    """``call()``, again and again while the event store is unreachable (``is_store_outage``),
    with backoff up to ``max_backoff`` seconds — until it answers or ``stop`` is set (then the
    last error is raised). An outage is not the message's fault: retried here, in place and
    unacked, it does not use up the message's delivery limit and become poison. Any other
    error is raised at once."""
    delay = 0.2
    since: float | None = None  # when this outage was first met (one WARNING line for it)
    while True:
        try:
            result = call()
        except Exception as exc:
            if not is_store_outage(exc) or stop.is_set():
                raise
            if since is None:
                since = time.monotonic()
                log.warning("%s: event store unreachable (%s: %s); trying again in %.1fs, with "
                            "backoff up to %.0fs (attempts logged at debug)", name,
                            type(exc).__name__, str(exc)[:200], delay, max_backoff)
            else:
                log.debug("%s: event store still unreachable (%s); trying again in %.1fs",
                          name, type(exc).__name__, delay)
            stop.wait(delay)
            delay = min(max_backoff, delay * 2)
            continue
        if since is not None:
            log.info("%s: event store answers again (after %.1fs)", name,
                     time.monotonic() - since)
        return result
