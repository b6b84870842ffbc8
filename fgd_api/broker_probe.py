"""Is RabbitMQ reachable? For the health endpoint: a fresh short-timeout connection, its
answer kept for a couple of seconds so a busy health check does not hammer the broker."""

from __future__ import annotations

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
