"""The locks that keep one relay and one scheduler active at a time.

PostgreSQL: a session advisory lock on a dedicated connection (``lock_connector``) — outside
the pool, so that losing the connection loses the lock, and with TCP keepalives, so that a
silently dead server, and with it the lock's loss, is noticed within seconds.

SQLite: ``flock`` on a file beside the database (``FileLock``); for an in-memory database,
which no other process can open, a lock shared by this process's threads.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder

Connect = Callable[[], "psycopg.Connection[Any]"]


def lock_connector(recorder: PostgresApplicationRecorder, application_name: str) -> Connect:
    """A function opening such a connection with the pool's settings (its row factory aside)."""
    pool_kwargs: Any = recorder.datastore.pool.kwargs  # a dict (psycopg_pool allows a callable)
    kwargs = {k: v for k, v in pool_kwargs.items() if k != "row_factory"}

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(
            **kwargs,
            autocommit=True,
            connect_timeout=5,
            application_name=application_name[:63],
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )

    return connect


_MEMORY_LOCKS: dict[str, threading.Lock] = {}


class FileLock:
    """``flock`` on ``<database>.<suffix>`` beside a SQLite recorder's database file, or a
    process-wide lock for an in-memory one. ``acquire`` does not block and is True while
    this object holds the lock."""

    def __init__(self, recorder: Any, suffix: str) -> None:
        pool = recorder.datastore.pool
        self.memory = pool.is_sqlite_memory_mode
        self.path = Path(f"{pool.db_name}.{suffix}")
        self.memory_key = f"{id(recorder)}:{self.path}"
        self.handle: Any = None
        self.memory_lock: threading.Lock | None = None

    def acquire(self) -> bool:
        if self.handle is not None or self.memory_lock is not None:
            return True
        if self.memory:
            lock = _MEMORY_LOCKS.setdefault(self.memory_key, threading.Lock())
            if not lock.acquire(blocking=False):
                return False
            self.memory_lock = lock
            return True
        handle = open(self.path, "a+b")  # noqa: SIM115 — held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle is not None:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_UN)
            finally:
                self.handle.close()
                self.handle = None
        if self.memory_lock is not None:
            self.memory_lock.release()
            self.memory_lock = None
