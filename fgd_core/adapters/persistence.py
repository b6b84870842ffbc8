"""Which event store an Application uses: PostgreSQL when a database URL is given, else a
SQLite file (the embedded default). Returns eventsourcing environment variables."""

from __future__ import annotations

import select
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

from fgd_core.config_env import (
    DEFAULT_MAX_OVERFLOW,
    DEFAULT_POOL_SIZE,
    MAX_OVERFLOW_ENV,
    POOL_SIZE_ENV,
    RuntimeSettings,
    runtime_settings,
)
from fgd_core.errors import ConfigurationError

# --- connection budget (issue 15) -----------------------------------------------------------
# A worker process holds at most WORKER_CONNECTIONS PostgreSQL connections: its pool (which
# opens one at start and grows on demand) plus the dedicated connections it keeps itself
# (the relay's LISTEN/lock connection, the scheduler's lock connection). The API's and the
# CLI's pool is configurable with HEDGEHOG_FGD_API_POOL_SIZE / _MAX_OVERFLOW (read into
# Settings.runtime; eventsourcing's defaults); worker processes ignore them (fixed budget).
WORKER_CONNECTIONS = 4

SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('fgd_schema'))"
SCHEMA_SESSION_LOCK = "SELECT pg_advisory_lock(hashtext('fgd_schema'))"
SCHEMA_SESSION_UNLOCK = "SELECT pg_advisory_unlock(hashtext('fgd_schema'))"


@contextmanager
def schema_creation_lock(datastore: Any) -> Iterator[None]:
    """One process at a time creates tables: processes starting together race on the catalog
    ("tuple concurrently updated", duplicate types) even with IF NOT EXISTS."""
    with datastore.get_connection() as conn:
        conn.execute(SCHEMA_SESSION_LOCK)
        try:
            yield
        finally:
            conn.execute(SCHEMA_SESSION_UNLOCK)


def check_when_signalled(conn: Any) -> None:
    """The pool's check of a connection it hands out (``POSTGRES_PRE_PING``), without a round
    trip while the connection has nothing to say: a server that went away (restarted,
    killed, ``pg_terminate_backend``) closes the socket or sends a FATAL, which makes it
    readable — then the full check (an empty query) runs, fails, and the pool takes another
    connection. An idle connection's socket is not readable, so the stock check's round
    trip before every transaction (~10 % of a command-intake worker's CPU) is skipped.
    What this cannot see (a network that drops packets silently) fails the first query,
    which the callers already treat as a transient DatabaseError."""
    try:
        readable = bool(select.select([conn.fileno()], [], [], 0)[0])
    except Exception:  # closed: fileno() raises
        readable = True
    if readable:
        ConnectionPool.check_connection(conn)


class FGDPostgresRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, inserting a batch as four binary column arrays.

    The stock recorder sends one array of a composite type, which psycopg dumps as text
    (escaping every bytea byte); column arrays in binary skip that and cut the per-event
    insert cost by about a quarter. The ``%b`` placeholders make every column binary (with
    ``%s`` psycopg dumps the topics as a text array, escaping each one with a regular
    expression). Locking, NOTIFY and the returned notification ids are the stock recorder's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool = self.datastore.pool
        # psycopg_pool keeps the check callback as ``_check`` (no public setter);
        # tests/unit/test_pool_check.py fails if a release renames it.
        if getattr(pool, "_check", None) is not None:
            pool._check = check_when_signalled
        self.columnar_insert_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name)
        )

    def create_table(self) -> None:
        with schema_creation_lock(self.datastore):
            super().create_table()

    def _insert_stored_events(self, curs: Any, stored_events: Any, **kwargs: Any) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.columnar_insert_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            binary=True,
        )


def _pool_number(text: str | None, key: str, default: int, least: int) -> str:
    if text is None or text == "":
        return str(default)
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise ConfigurationError(
            f"{key} must be an integer of at least {least}",
            details={"key": key, "problem": "invalid"},
        )
    return str(value)


def pool_env(runtime: RuntimeSettings | Mapping[str, str] | None = None) -> dict[str, str]:
    """The API's / CLI's pool: ``HEDGEHOG_FGD_API_POOL_SIZE`` connections opened at start
    (default 5), up to ``HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW`` more on demand (default 10).
    ``runtime``: the process's runtime settings, or a mapping of variables to read them from
    (None: the process's environment)."""
    if not isinstance(runtime, RuntimeSettings):
        runtime = runtime_settings(runtime)
    return {
        "POSTGRES_POOL_SIZE": _pool_number(runtime.api_pool_size, POOL_SIZE_ENV,
                                           DEFAULT_POOL_SIZE, 1),
        "POSTGRES_MAX_OVERFLOW": _pool_number(runtime.api_pool_max_overflow, MAX_OVERFLOW_ENV,
                                              DEFAULT_MAX_OVERFLOW, 0),
    }


def api_read_connections(runtime: RuntimeSettings | Mapping[str, str] | None = None) -> int:
    """The API's async reads' share of its budget (``HEDGEHOG_FGD_API_POOL_SIZE`` +
    ``_MAX_OVERFLOW``): a third, at least 1 (default 15 → 5). Sync-status and history are
    one short statement each on the event loop: a few connections serve many clients."""
    env = pool_env(runtime)
    return max(1, (int(env["POSTGRES_POOL_SIZE"]) + int(env["POSTGRES_MAX_OVERFLOW"])) // 3)


def api_store_env(
    runtime: RuntimeSettings | Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The API process's event-store pool: its budget less ``api_read_connections`` (at
    least 1), so the store's pool and the async reads together hold at most the budget
    (``max(budget, 2)``: with a budget of 1 each needs its own connection)."""
    env = pool_env(runtime)
    size, overflow = int(env["POSTGRES_POOL_SIZE"]), int(env["POSTGRES_MAX_OVERFLOW"])
    most = max(1, size + overflow - api_read_connections(runtime))
    opened = min(size, most)
    return {"POSTGRES_POOL_SIZE": str(opened), "POSTGRES_MAX_OVERFLOW": str(most - opened)}


def worker_env(env: dict[str, str], dedicated: int = 0) -> dict[str, str]:
    """``env`` with the pool of a worker process: one connection at start, at most
    ``WORKER_CONNECTIONS - dedicated`` (``dedicated``: connections the process opens itself,
    outside the pool). SQLite environments are returned unchanged."""
    if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
        return env
    pooled = WORKER_CONNECTIONS - dedicated
    if pooled < 1:
        raise ValueError(f"{dedicated} dedicated connections leave no room for a pool")
    return {**env, "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": str(pooled - 1)}


def postgres_env(database_url: str, runtime: RuntimeSettings | None = None) -> dict[str, str]:
    """``postgresql://user:pass@host:port/db?schema=s`` → eventsourcing's POSTGRES_* vars.

    ``schema`` is ours (a PostgreSQL schema for the tables, default ``public``); every other
    query parameter is handed to libpq's parser, which also validates the URL.
    """
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(
            "HEDGEHOG_FGD_DATABASE_URL must be a postgresql:// URL",
            details={"key": "HEDGEHOG_FGD_DATABASE_URL", "problem": "scheme"},
        )
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", "public")
    try:
        info = conninfo_to_dict(urlunsplit(parts._replace(query=urlencode(query))))
    except Exception as exc:  # psycopg.ProgrammingError; its text never holds the password
        raise ConfigurationError(
            f"HEDGEHOG_FGD_DATABASE_URL is not a valid PostgreSQL URL: {exc}",
            details={"key": "HEDGEHOG_FGD_DATABASE_URL", "problem": "invalid"},
        ) from None
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname") or info.get("user") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        "POSTGRES_USER": str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        "POSTGRES_SCHEMA": schema,
        **pool_env(runtime),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_PRE_PING": "y",
        "APPLICATION_RECORDER_TOPIC": "fgd_core.adapters.persistence:FGDPostgresRecorder",
    }
    return env


def sqlite_env(path: Path) -> dict[str, str]:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "30",
    }


def persistence_env(database_url: str | None, sqlite_path: Path,
                    runtime: RuntimeSettings | None = None) -> dict[str, str]:
    """``runtime``: where the pool sizes come from (None: the process's environment)."""
    return postgres_env(database_url, runtime) if database_url else sqlite_env(sqlite_path)
