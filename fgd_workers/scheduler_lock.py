"""One active scheduler at a time: the lock a ``Scheduler`` holds while it acts.

A PostgreSQL session advisory lock on a connection of its own (losing the connection loses
the lock), or a ``flock`` beside the SQLite file (a process-wide lock for an in-memory
database). A standby polls the lock. Used by ``scheduler.Scheduler``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder

from fgd_workers.locks import FileLock, lock_connector

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


def file_scheduler_lock(recorder: Any, name: str) -> FileLock:
    """``flock`` on ``<database>.<name>.scheduler.lock`` (a process-wide lock for an
    in-memory database)."""
    return FileLock(recorder, f"{name}.scheduler.lock")
