"""Is RabbitMQ reachable? For the health endpoint: a fresh short-timeout connection, its
answer kept for a couple of seconds so a busy health check does not hammer the broker."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from kombu import Connection


class BrokerProbe:
    def __init__(self, url: str, timeout: float = 2.0, ttl: float = 2.0) -> None:
        self.url, self.timeout, self.ttl = url, timeout, ttl
        self._answer: dict[str, Any] = {}
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, Any]:
        with self._lock:
            if time.monotonic() >= self._expires:
                self._answer = self._probe()
                self._expires = time.monotonic() + self.ttl
            return dict(self._answer)

    def _probe(self) -> dict[str, Any]:
        try:
            with Connection(self.url, connect_timeout=self.timeout) as conn:
                conn.ensure_connection(max_retries=0)
            return {"status": "ok"}
        except Exception as exc:  # any failure to reach the broker is "down"
            return {"status": "down", "code": "FGD_5003", "error": type(exc).__name__}


class QueueStats:
    """Messages ready and consumers of each work queue (passive declares: nothing declared,
    nothing consumed), kept for ``ttl`` seconds like ``BrokerProbe``. A queue the broker
    does not know is ``None``."""

    def __init__(self, url: str, timeout: float = 2.0, ttl: float = 2.0) -> None:
        self.url, self.timeout, self.ttl = url, timeout, ttl
        self._answer: dict[str, tuple[int, int] | None] = {}
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self, queues: list[str]) -> dict[str, tuple[int, int] | None]:
        with self._lock:
            if time.monotonic() >= self._expires or set(queues) - set(self._answer):
                self._answer = self._probe(queues)
                self._expires = time.monotonic() + self.ttl
            return {q: self._answer.get(q) for q in queues}

    def _probe(self, queues: list[str]) -> dict[str, tuple[int, int] | None]:
        counts: dict[str, tuple[int, int] | None] = {}
        with Connection(self.url, connect_timeout=self.timeout) as conn:
            conn.ensure_connection(max_retries=0)
            for queue in queues:
                channel = conn.channel()  # a 404 closes the channel: one per queue
                try:
                    _, messages, consumers = channel.queue_declare(queue=queue, passive=True)
                    counts[queue] = (int(messages), int(consumers))
                except Exception as exc:  # noqa: BLE001 — NOT_FOUND: nobody declared it
                    if "NOT_FOUND" not in str(exc) and "404" not in str(exc):
                        raise
                    counts[queue] = None
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
        return counts
