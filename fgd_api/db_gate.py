"""Fail fast while PostgreSQL is down, recover by itself when it returns.

A request that reaches for a pooled connection while the server is gone waits for the pool's
timeout, retried by eventsourcing — tens of seconds. A watcher thread probes the server
every ``interval`` seconds with a fresh, short-timeout connection; while the probe fails the
API answers 503 with FGD_5002 at once, and lets requests through again as soon as it passes.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

log = logging.getLogger("fgd_api.db_gate")


def _conninfo(database_url: str) -> str:
    parts = urlsplit(database_url)
    query = {k: v for k, v in parse_qsl(parts.query) if k != "schema"}
    return urlunsplit(parts._replace(query=urlencode(query)))


class DatabaseGate:
    def __init__(self, database_url: str | None, interval: float = 0.5, timeout: int = 2) -> None:
        self.conninfo = _conninfo(database_url) if database_url else None
        self.interval, self.timeout = interval, timeout
        self.down = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def probe(self) -> bool:
        if self.conninfo is None:  # SQLite: a local file, nothing to watch
            return True
        try:
            with psycopg.connect(self.conninfo, connect_timeout=self.timeout) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            up = self.probe()
            if up == self.down:  # a change: log it once
                log.warning("database %s", "back" if up else "unreachable")
            self.down = not up

    def start(self) -> None:
        if self.conninfo is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._watch, name="fgd-db-gate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)
            self._thread = None
