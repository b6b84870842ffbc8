"""One active scheduler at a time: the lock a ``Scheduler`` holds while it acts.

A PostgreSQL session advisory lock on a connection of its own (losing the connection loses
the lock), or a ``flock`` beside the SQLite file (a process-wide lock for an in-memory
database). A standby polls the lock. Used by ``scheduler.Scheduler``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder

from fgd_workers.lock_connection import lock_connector

log = logging.getLogger("fgd_workers.scheduler")  # one logger name for the scheduler


def _lock_key(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresSchedulerLock:
    """A session advisory lock on a dedicated connection: losing the connection (or the
    process) loses the lock, and the next ``acquire`` notices."""

    def __init__(self, recorder: PostgresApplicationRecorder, name: str) -> None:
        datastore: Any = recorder.datastore
        self.name = name
        self.connect = lock_connector(recorder, f"fgd-scheduler:{name}")
        self.key = _lock_key(
            f"fgd_scheduler:{datastore.schema}.{recorder.events_table_name}:{name}"
        )
        self.conn: psycopg.Connection[Any] | None = None
        self.held = False
        self.failed = False  # the last attempt failed (its WARNING is written)

    def acquire(self) -> bool:
        try:
            if self.held and self.conn is not None and not self.conn.closed:
                self.conn.execute("SELECT 1")  # still our session, still our lock
                return True
            self.release()
            self.conn = self.connect()
            row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            self.held = bool(row and row[0])
            self.failed = False
            return self.held
        except psycopg.Error as exc:
            # Once per outage (the next success resets it), not once per tick.
            log.log(
                logging.DEBUG if self.failed else logging.WARNING,
                "scheduler %s: lock connection failed (%s); trying again each tick",
                self.name,
                type(exc).__name__,
            )
            self.failed = True
            self.release()
            return False

    def release(self) -> None:
        self.held = False
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()  # ends the session: the advisory lock goes with it
            self.conn = None


_MEMORY_LOCKS: dict[str, threading.Lock] = {}


class FileSchedulerLock:
    """``flock`` on ``<database>.<name>.scheduler.lock`` (a process-wide lock for an
    in-memory database)."""

    def __init__(self, recorder: Any, name: str) -> None:
        pool = recorder.datastore.pool
        self.memory = pool.is_sqlite_memory_mode
        self.memory_key = f"{id(recorder)}:{name}"
        self.path = Path(f"{pool.db_name}.{name}.scheduler.lock")
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
        handle = open(self.path, "a+b")  # noqa: SIM115 — held while this scheduler is active
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
