"""The relay's coordination: one active relay per name, its recorded position, wake-ups.

PostgreSQL: a session advisory lock, LISTEN for the recorder's NOTIFY and the position
writes, all on one dedicated connection (losing it loses the lock and the right to record).
SQLite: a ``flock`` beside the database file, the position in the database, polling.
Used by ``relay.Relay``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from fgd_core.adapters.persistence import SCHEMA_LOCK
from fgd_workers.liveness import relay_lock_key
from fgd_workers.locks import FileLock, lock_connector

log = logging.getLogger("fgd_workers.relay")  # one logger name for the whole relay

POSITION_TABLE = "fgd_relay_position"


class PostgresCoordinator:
    """Advisory lock + LISTEN + position writes, all on one dedicated connection."""

    def __init__(self, recorder: PostgresApplicationRecorder, name: str) -> None:
        datastore = recorder.datastore
        self.name = name
        self.schema = datastore.schema
        self.connect = lock_connector(recorder, f"fgd-relay:{name}")
        self.channel = recorder.channel_name
        self.key = relay_lock_key(recorder, name)  # the health endpoint looks for it too
        self.table = SQL("{}.{}").format(Identifier(self.schema), Identifier(POSITION_TABLE))
        self.conn: psycopg.Connection[Any] | None = None
        self.position: int | None = None  # set while the lock is held

    def acquire(self) -> bool:
        if self.position is not None:
            return True
        if self.conn is None or self.conn.closed:
            self.conn = self.connect()
        conn = self.conn
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if not row or not row[0]:
            return False
        # LISTEN before reading the position: nothing committed after this can be missed.
        conn.execute(SQL("LISTEN {}").format(Identifier(self.channel)))
        with conn.transaction():
            conn.execute(SCHEMA_LOCK)
            conn.execute(
                SQL(
                    "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, position bigint"
                    " NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
                ).format(self.table)
            )
        conn.execute(
            SQL("INSERT INTO {} (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING").format(
                self.table
            ),
            (self.name,),
        )
        row = conn.execute(
            SQL("SELECT position FROM {} WHERE name = %s").format(self.table), (self.name,)
        ).fetchone()
        self.position = int(row[0]) if row else 0
        return True

    def store(self, position: int) -> None:
        assert self.conn is not None
        self.conn.execute(
            SQL(
                "UPDATE {} SET position = GREATEST(position, %s), updated_at = now()"
                " WHERE name = %s"
            ).format(self.table),
            (position, self.name),
        )
        self.position = position

    def wait(self, timeout: float, stop_event: threading.Event) -> bool:
        """Block until a NOTIFY (True) or ``timeout`` (False)."""
        assert self.conn is not None
        return any(True for _ in self.conn.notifies(timeout=timeout, stop_after=1))

    def release(self) -> None:
        self.position = None
        if self.conn is not None:
            try:
                self.conn.close()  # ends the session: the advisory lock goes with it
            except Exception:
                log.debug("closing the relay's database connection failed", exc_info=True)
            self.conn = None




class SQLiteCoordinator:
    """``flock`` on ``<database>.<name>.relay.lock``; position in the database; polling."""

    def __init__(self, recorder: Any, name: str) -> None:
        self.recorder = recorder
        self.name = name
        self.lock = FileLock(recorder, f"{name}.relay.lock")
        self.position: int | None = None

    def acquire(self) -> bool:
        if self.position is not None:
            return True
        if not self.lock.acquire():
            return False
        try:
            with self.recorder.datastore.transaction(commit=True) as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} (name TEXT PRIMARY KEY,"
                    " position INTEGER NOT NULL)"
                )
                cursor.execute(
                    f"INSERT OR IGNORE INTO {POSITION_TABLE} (name, position) VALUES (?, 0)",
                    (self.name,),
                )
                cursor.execute(
                    f"SELECT position FROM {POSITION_TABLE} WHERE name = ?", (self.name,)
                )
                row = cursor.fetchone()
        except BaseException:
            self.release()
            raise
        self.position = int(row[0]) if row else 0
        return True

    def store(self, position: int) -> None:
        with self.recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"UPDATE {POSITION_TABLE} SET position = max(position, ?) WHERE name = ?",
                (position, self.name),
            )
        self.position = position

    def wait(self, timeout: float, stop_event: threading.Event) -> bool:
        stop_event.wait(timeout)
        return False

    def release(self) -> None:
        self.position = None
        self.lock.release()
