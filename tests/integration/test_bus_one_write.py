"""``fgd_workers.bus.one_write``: the frames published inside the block reach RabbitMQ in
one socket write, in order, and what was published before an error still leaves."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Queue

from fgd_workers.bus import one_write

BROKER = os.environ.get("FGD_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def conn() -> Iterator[Connection]:
    with Connection(BROKER) as connection:
        connection.ensure_connection(max_retries=3)
        yield connection


def counted_writes(conn: Connection) -> list[int]:
    """The sizes of the socket writes made on ``conn`` from now on."""
    transport: Any = conn.connection.transport
    sizes: list[int] = []
    send = transport._write

    def write(data: Any) -> None:
        sizes.append(len(data))
        send(data)

    transport._write = write
    return sizes


def publish_all(conn: Connection, queue: str, bodies: list[bytes]) -> None:
    channel = conn.default_channel
    for body in bodies:
        message = channel.prepare_message(body, content_type="application/octet-stream")
        channel.basic_publish(message, exchange="", routing_key=queue)


def received(conn: Connection, queue: Queue, n: int) -> list[bytes]:
    got: list[bytes] = []
    with conn.SimpleQueue(queue) as simple:
        for _ in range(n):
            message = simple.get(timeout=10)
            got.append(message.body)
            message.ack()
    return got


def test_the_frames_of_a_block_leave_in_one_write_in_order(conn: Connection) -> None:
    queue = Queue(f"test.one-write.{uuid.uuid4().hex[:8]}", auto_delete=True)
    queue(conn.default_channel).declare()
    bodies = [f"reply {i}".encode() * (i % 7 + 1) for i in range(100)]
    sizes = counted_writes(conn)
    with one_write(conn):
        publish_all(conn, queue.name, bodies)
        assert sizes == []  # nothing left yet
    assert len(sizes) == 1 and sizes[0] > sum(map(len, bodies))  # bodies + frame headers
    publish_all(conn, queue.name, [b"after"])  # the socket writer is restored
    assert len(sizes) == 2
    with Connection(BROKER) as reader:
        assert received(reader, queue, 101) == [*bodies, b"after"]


def test_what_was_published_before_an_error_still_leaves(conn: Connection) -> None:
    queue = Queue(f"test.one-write.{uuid.uuid4().hex[:8]}", auto_delete=True)
    queue(conn.default_channel).declare()
    sizes = counted_writes(conn)
    with pytest.raises(RuntimeError), one_write(conn):
        publish_all(conn, queue.name, [b"first", b"second"])
        raise RuntimeError("a reply failed")
    assert len(sizes) == 1
    with Connection(BROKER) as reader:
        assert received(reader, queue, 2) == [b"first", b"second"]


def test_a_connection_without_a_socket_writer_is_written_as_before() -> None:
    class NoTransport:
        connection = None

    with one_write(NoTransport()):  # type: ignore[arg-type]
        pass
