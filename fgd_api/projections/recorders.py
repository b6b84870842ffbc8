"""Tracking recorders that also hold the read model: eventsourcing's PostgreSQL and SQLite
tracking recorders, plus the read-model tables, written in the transaction that records
the position (so a crash can neither skip an event nor apply one twice).

Writers take the projection's lock first, read the position inside the transaction and
apply only notifications after it, reading any they were not handed from the event store
itself (same database, same transaction). So the live runner, ``catch_up`` and a rebuild may
run at once, in any number of processes, and each event is applied exactly once, in order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Composed

from fgd_api.projections.dialects import Dialect, PostgresDialect, SQLiteDialect, as_uuid
from fgd_api.projections.faults import APPLICATION_NAME, Faults
from fgd_api.projections.handlers import Batch, Row
from fgd_api.projections.tables import FABRIC, FILE, SYNC, TABLES, Table
from fgd_core.adapters.persistence import api_read_connections, schema_creation_lock
from fgd_core.events.envelope import decode_envelope

TRACKING_TABLE = "fgd_projections_tracking"
BATCH_SIZE = 500

Item = tuple[int, dict[str, Any]]
# (position, envelope), or (position, None) for an event an operator skipped (faults.py)
StoredItem = tuple[int, dict[str, Any] | None]


class ReadModelRecorder(TrackingRecorder):
    """The backend-independent part; mixed into each backend's TrackingRecorder."""

    dialect: Dialect
    datastore: Any

    _insert_tracking: Any  # eventsourcing's TrackingRecorder: the single-row upsert
    # Events an operator skipped (``fgd projections skip``): passed over by a rebuild too.
    skipped: frozenset[int] = frozenset()

    @property
    def faults(self) -> Faults:
        return Faults(self)

    @contextmanager
    def read(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    def fetchall(self, template: str, *params: Any) -> list[Any]:
        with self.read() as cursor:
            cursor.execute(self.dialect.sql(template), params)
            return list(cursor.fetchall())

    def row(self, table: Table, raw: Any) -> Row:
        return {name: self.dialect.from_db(kind, raw[name]) for name, kind in table.columns}

    # -- positions --------------------------------------------------------------------------

    def position(self, cursor: Any = None) -> int:
        """The last notification id applied (0 before the first)."""
        sql = self.dialect.sql("SELECT notification_id FROM {tracking} WHERE application_name = ?")
        if cursor is None:
            with self.read() as cursor:
                return self.position(cursor)
        cursor.execute(sql, (APPLICATION_NAME,))
        found = cursor.fetchone()
        return int(found["notification_id"]) if found else 0

    def max_notification_id(self) -> int:
        rows = self.fetchall("SELECT MAX({eid}) AS max_id FROM {events}")
        return int(rows[0]["max_id"] or 0)

    # -- writing ----------------------------------------------------------------------------

    def advance(self, upto: int | None = None, limit: int = BATCH_SIZE) -> int:
        """Apply up to ``limit`` stored notifications after the position (and ≤ ``upto``) in
        one transaction; returns how many were applied."""
        with self.datastore.transaction(commit=True) as cursor:
            self.dialect.lock(cursor)
            position = self.position(cursor)
            if upto is not None and position >= upto:
                return 0
            items = self._stored(cursor, position, upto, limit)
            self._apply(cursor, items)
            return len(items)

    def apply(self, items: Sequence[Item]) -> int:
        """Apply (position, envelope) pairs someone handed us, e.g. a save's notifications.
        Those at or before the position are ignored; stored notifications between the
        position and the first one given are applied first. Returns how many were applied."""
        items = sorted(items, key=lambda item: item[0])
        with self.datastore.transaction(commit=True) as cursor:
            self.dialect.lock(cursor)
            position = self.position(cursor)
            fresh = [item for item in items if item[0] > position]
            if not fresh:
                return 0
            gap = self._stored(cursor, position, fresh[0][0] - 1, None)
            self._apply(cursor, [*gap, *fresh])
            return len(gap) + len(fresh)

    def _stored(
        self, cursor: Any, after: int, upto: int | None, limit: int | None
    ) -> list[StoredItem]:
        sql = "SELECT {eid} AS position, state FROM {events} WHERE {eid} > ?"
        params: list[Any] = [after]
        if upto is not None:
            sql += " AND {eid} <= ?"
            params.append(upto)
        sql += " ORDER BY {eid}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        cursor.execute(self.dialect.sql(sql), params)
        skipped = self.skipped
        return [
            (p, None if p in skipped else decode_envelope(bytes(r["state"])))
            for r in cursor.fetchall()
            for p in (int(r["position"]),)
        ]

    def _apply(self, cursor: Any, items: Sequence[StoredItem]) -> None:
        if not items:
            return
        store = _CursorStore(self, cursor)
        batch = Batch(store)
        applied = [(p, e) for p, e in items if e is not None and p not in self.skipped]
        store.prefetch(batch, [envelope for _, envelope in applied])
        for position, envelope in applied:
            batch.apply(position, envelope)
        batch.flush()
        store.write()
        self._insert_tracking(cursor, Tracking(APPLICATION_NAME, items[-1][0]))

    def reset(self) -> None:
        """Drop and recreate the read tables and forget the position, in one transaction."""
        with self.datastore.transaction(commit=True) as cursor:
            self.dialect.lock(cursor)
            for table in TABLES:
                cursor.execute(self.dialect.drop(table))
            for statement in self.read_model_ddl():
                cursor.execute(statement)
            cursor.execute(
                self.dialect.sql("DELETE FROM {tracking} WHERE application_name = ?"),
                (APPLICATION_NAME,),
            )
        self.skipped = self.faults.skipped()  # what an operator skipped stays skipped

    def read_model_ddl(self) -> list[str]:
        tables = [statement for table in TABLES for statement in self.dialect.ddl(table)]
        return [*tables, self.faults.ddl()]  # the faults survive a rebuild: never dropped


class _CursorStore:
    """Loads and upserts rows for a Batch on the writer's cursor."""

    def __init__(self, recorder: ReadModelRecorder, cursor: Any) -> None:
        self.recorder, self.cursor, self.dialect = recorder, cursor, recorder.dialect
        self.pending: dict[str, tuple[Table, list[list[Any]]]] = {}
        self.removals: dict[str, list[list[Any]]] = {}

    def prefetch(self, batch: Batch, envelopes: list[dict[str, Any]]) -> None:
        """Load, in one query per table, the rows the handlers will ask for (PostgreSQL):
        what ``load`` would return for each key, row by row, at the start of the batch."""
        if self.dialect.name != "postgres":
            return
        syncs: dict[str, list[str]] = {}
        files: dict[tuple[str, str], list[tuple[str, str]]] = {}
        fabrics: set[int] = set()
        for env in envelopes:
            payload = env.get("payload")
            sync_id = payload.get("sync_id") if isinstance(payload, dict) else None
            canonical = as_uuid(sync_id) if isinstance(sync_id, str) else None
            if canonical is not None and isinstance(sync_id, str) and isinstance(payload, dict):
                syncs.setdefault(canonical, []).append(sync_id)
                path = payload.get("file_path")
                if isinstance(path, str):
                    files.setdefault((canonical, path), []).append((sync_id, path))
            fabric_id = env.get("fabric_id")
            if isinstance(fabric_id, int) and not isinstance(fabric_id, bool):
                fabrics.add(fabric_id)
        table_sql = self.dialect.table
        if syncs:
            self.cursor.execute(
                f'SELECT * FROM {table_sql(SYNC.name)} WHERE "sync_id" = ANY(%s::uuid[])',
                (list(syncs),),
            )
            found = {str(r["sync_id"]): self.recorder.row(SYNC, r) for r in self.cursor}
            for canonical, asked in syncs.items():
                for sync_id in asked:
                    batch.rows[(SYNC.name, (sync_id,))] = found.get(canonical)
        if files:
            self.cursor.execute(
                f"SELECT * FROM {table_sql(FILE.name)} WHERE (\"sync_id\", \"file_path\") IN"
                " (SELECT * FROM unnest(%s::uuid[], %s::text[]))",
                ([k[0] for k in files], [k[1] for k in files]),
            )
            found_files = {
                (str(r["sync_id"]), r["file_path"]): self.recorder.row(FILE, r)
                for r in self.cursor
            }
            for canonical_key, asked_keys in files.items():
                for key in asked_keys:
                    batch.rows[(FILE.name, key)] = found_files.get(canonical_key)
        if fabrics:
            self.cursor.execute(
                f'SELECT * FROM {table_sql(FABRIC.name)} WHERE "id" = ANY(%s::bigint[])',
                (sorted(fabrics),),
            )
            found_fabrics = {int(r["id"]): self.recorder.row(FABRIC, r) for r in self.cursor}
            for fabric_id in fabrics:
                batch.rows[(FABRIC.name, (fabric_id,))] = found_fabrics.get(fabric_id)

    def write(self) -> None:
        """Upsert the rows ``save`` collected: one ``executemany`` per table (pipelined),
        then delete those ``remove`` collected."""
        for sql, (_, params) in self.pending.items():
            self.cursor.executemany(sql, params)
        self.pending.clear()
        for sql, keys in self.removals.items():
            self.cursor.executemany(sql, keys)
        self.removals.clear()

    def remove(self, table: Table, key: tuple[Any, ...]) -> None:
        where = " AND ".join(f'"{c}" = ?' for c in table.key)
        name = self.dialect.table(table.name)
        sql = self.dialect.placeholders(f"DELETE FROM {name} WHERE {where}")
        params = [
            self.dialect.to_db(table.types[c], v) for c, v in zip(table.key, key, strict=True)
        ]
        self.removals.setdefault(sql, []).append(params)

    def load(self, table: Table, key: tuple[Any, ...]) -> Row | None:
        where = " AND ".join(f'"{c}" = ?' for c in table.key)
        sql = f"SELECT * FROM {self.dialect.table(table.name)} WHERE {where}"
        params = [
            self.dialect.to_db(table.types[c], v) for c, v in zip(table.key, key, strict=True)
        ]
        self.cursor.execute(self.dialect.placeholders(sql), params)
        raw = self.cursor.fetchone()
        return None if raw is None else self.recorder.row(table, raw)

    def save(self, table: Table, row: Row) -> None:
        names = table.names
        columns = ", ".join(f'"{c}"' for c in names)
        key = ", ".join(f'"{c}"' for c in table.key)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in names if c not in table.key)
        values = ", ".join("?" for _ in names)
        sql = (
            f"INSERT INTO {self.dialect.table(table.name)} ({columns}) VALUES ({values})"
            f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
        )
        params = [self.dialect.to_db(kind, row[name]) for name, kind in table.columns]
        # Collected, written by ``write``: a Batch saves each row once, rows of different
        # tables never depend on each other, and nothing reads them back before ``write``.
        self.pending.setdefault(self.dialect.placeholders(sql), (table, []))[1].append(params)


ReadItem = tuple[psycopg.AsyncConnection[Any], float]  # a connection and when it was opened


class AsyncReads:
    """Single-statement reads of the read model for ``async`` endpoints: psycopg's
    AsyncConnection in autocommit mode, so a request's query runs on the event loop with no
    thread hand-off and no transaction (BEGIN/ROLLBACK) around it — under READ COMMITTED a
    one-statement transaction sees exactly what the statement alone sees.

    At most ``size`` connections, open or opening, at any time (the API's connection budget,
    ``persistence.api_read_connections``); a read finding all of them busy waits for one to
    be handed over (up to ``wait_timeout`` seconds, then ``OperationalError``: the API
    answers 503). Bound to no event loop, unlike psycopg_pool's AsyncConnectionPool (each
    connection serves one coroutine at a time, whichever loop it runs on; a waiter is woken
    on its own loop), so tests' per-client loops and the server's loop share one budget.
    No ping before each use: a pooled connection that turns out to be broken (the server
    restarted) is discarded and the read — a SELECT, so safe to repeat — is tried once more
    on a fresh connection in the same slot; if that fails too, the error is raised.
    """

    MAX_AGE = 3600.0  # seconds; like the synchronous pool's conn_max_age

    def __init__(self, kwargs: dict[str, Any], connect_timeout: float, size: int) -> None:
        timeout = max(1, int(connect_timeout))
        self.kwargs = {**kwargs, "autocommit": True, "connect_timeout": timeout}
        self.size, self.wait_timeout = max(1, size), float(timeout)
        self.opened = 0  # connections open or being opened (idle ones included)
        self.idle: deque[ReadItem] = deque()
        # Reads waiting for a connection: each gets one (or None: a free slot, connect).
        self.waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = deque()
        self.closed = False
        self._lock = threading.Lock()

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]:
        item = await self._acquire()
        try:
            if item is not None:
                try:
                    rows = await self._query(item[0], sql, params)
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    _close(item[0])  # stale: once more, fresh, in the same slot
                    item = None
                else:
                    self._release(item)
                    return rows
            item = await self._connect()
            rows = await self._query(item[0], sql, params)
        except BaseException:
            if item is not None:
                _close(item[0])
            self._free_slot()
            raise
        self._release(item)
        return rows

    async def _acquire(self) -> ReadItem | None:
        """An idle connection, or None: a slot of the budget is ours, open a connection."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.closed:
                raise psycopg.InterfaceError("the read model's async reads are closed")
            if self.idle:
                return self.idle.pop()
            if self.opened < self.size:
                self.opened += 1
                return None
            waiter: asyncio.Future[Any] = loop.create_future()
            self.waiters.append((loop, waiter))
        try:
            return await asyncio.wait_for(waiter, self.wait_timeout)  # type: ignore[no-any-return]
        except TimeoutError:
            with self._lock, suppress(ValueError):
                self.waiters.remove((loop, waiter))
            raise psycopg.OperationalError(
                f"no read-model connection free within {self.wait_timeout:g}s"
            ) from None

    async def _connect(self) -> ReadItem:
        conn = await psycopg.AsyncConnection.connect(**self.kwargs)
        return conn, time.monotonic()

    @staticmethod
    async def _query(conn: psycopg.AsyncConnection[Any], sql: str, params: Sequence[Any]
                     ) -> list[Any]:
        cursor = await conn.execute(sql, params, prepare=True)
        return await cursor.fetchall()

    def _release(self, item: ReadItem) -> None:
        """A connection back after a read: to the first waiter, else idle (or closed)."""
        conn, born = item
        keep = (
            not self.closed
            and not conn.closed
            and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            and time.monotonic() - born < self.MAX_AGE
        )
        if not keep:
            _close(conn)
            self._free_slot()
            return
        with self._lock:
            if not self._hand_over(item):
                self.idle.append(item)

    def _free_slot(self) -> None:
        """A connection closed: its slot goes to the first waiter (who connects), else back."""
        with self._lock:
            if not self._hand_over(None):
                self.opened -= 1

    def _hand_over(self, item: ReadItem | None) -> bool:
        """Give ``item`` (None: a slot) to the first waiter still waiting; with the lock."""
        while self.waiters:
            loop, waiter = self.waiters.popleft()
            try:
                loop.call_soon_threadsafe(self._deliver, waiter, item)
            except RuntimeError:  # its loop is closed: that waiter is gone
                continue
            return True
        return False

    def _deliver(self, waiter: asyncio.Future[Any], item: ReadItem | None) -> None:
        """On the waiter's loop: a waiter that gave up (timed out, cancelled) passes it on."""
        if not waiter.done():
            waiter.set_result(item)
        elif item is None:
            self._free_slot()
        else:
            self._release(item)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle, self.idle = list(self.idle), deque()
            self.opened -= len(idle)
        for conn, _ in idle:
            _close(conn)


def _close(conn: Any) -> None:
    """Close a connection from any thread or loop (AsyncConnection.close awaits nothing)."""
    try:
        conn._closed = True
        conn.pgconn.finish()
    except Exception:  # already gone
        pass


class PostgresReadModel(ReadModelRecorder, PostgresTrackingRecorder):
    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        tracking_table_name: str = TRACKING_TABLE,
        events_table_name: str = "fgd_events",
        **kwargs: Any,
    ) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name, **kwargs)
        self.dialect = PostgresDialect(datastore.schema, events_table_name, tracking_table_name)
        self.sql_create_statements += [Composed([SQL(s)]) for s in self.read_model_ddl()]
        self._async_reads: AsyncReads | None = None

    async def afetchall(self, template: str, *params: Any) -> list[Any]:
        """``fetchall`` for async callers (one statement, see ``AsyncReads``)."""
        reads = self._async_reads
        if reads is None or reads.closed:
            pool = self.datastore.pool
            reads = self._async_reads = AsyncReads(
                dict(pool.kwargs), pool.timeout, api_read_connections()
            )
        return await reads.fetchall(self.dialect.sql(template), params)

    def close_async_reads(self) -> None:
        reads, self._async_reads = self._async_reads, None
        if reads is not None:
            reads.close()

    def create_table(self) -> None:
        with schema_creation_lock(self.datastore):
            super().create_table()


class SQLiteReadModel(ReadModelRecorder, SQLiteTrackingRecorder):
    def __init__(
        self,
        datastore: SQLiteDatastore,
        *,
        tracking_table_name: str = TRACKING_TABLE,
        events_table_name: str = "stored_events",
        **kwargs: Any,
    ) -> None:
        self.dialect = SQLiteDialect(events_table_name, tracking_table_name)
        super().__init__(datastore, **kwargs)
        # eventsourcing's statements name the table "tracking": use ours, shared with nobody.
        self.insert_tracking_statement = self.insert_tracking_statement.replace(
            "tracking", tracking_table_name
        )
        self.select_max_tracking_id_statement = (
            f"SELECT MAX(notification_id) FROM {tracking_table_name} WHERE application_name=?"
        )

    def construct_create_table_statements(self) -> list[str]:
        table = self.dialect.tracking_table
        return [
            f"CREATE TABLE IF NOT EXISTS {table} (application_name TEXT, notification_id"
            " INTEGER, PRIMARY KEY (application_name)) WITHOUT ROWID",
            *self.read_model_ddl(),
        ]
