"""The two small differences between PostgreSQL and SQLite that the read model sees:
types and placeholders, table qualification, and how a writer takes the projection's lock.

All SQL in this package is written once, with ``?`` placeholders and ``{table}`` names;
``Dialect.sql`` renders it for one backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from psycopg.types.json import Jsonb

from fgd_api.projections.tables import ALIASES, Table
from fgd_core.events.envelope import iso

SQLITE_TS = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order is time order


def parse_ts(value: str | datetime) -> datetime:
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


class Dialect:
    name = ""
    types: dict[str, str] = {}
    events_id = "notification_id"

    def __init__(self, events_table: str, tracking_table: str) -> None:
        self.events_table = events_table
        self.tracking_table = tracking_table

    def table(self, name: str) -> str:
        return f'"{name}"'

    def sql(self, template: str, **tables: str) -> str:
        """``{name}`` → qualified table; ``?`` → this driver's placeholder."""
        names = {alias: self.table(t.name) for alias, t in ALIASES.items()}
        names |= {
            "events": self.table(self.events_table),
            "tracking": self.table(self.tracking_table),
            "eid": self.events_id,
        }
        names |= {key: self.table(value) for key, value in tables.items()}
        return self.placeholders(template.format_map(_Names(names)))

    def placeholders(self, sql: str) -> str:
        return sql

    def ddl(self, table: Table) -> list[str]:
        columns = [f'"{name}" {self.types[kind]}' for name, kind in table.columns]
        columns.append(f"PRIMARY KEY ({', '.join(_quoted(table.key))})")
        columns += [f"UNIQUE ({', '.join(_quoted(cols))})" for cols in table.unique]
        statements = [f"CREATE TABLE IF NOT EXISTS {self.table(table.name)} ({', '.join(columns)})"]
        statements += [
            f"CREATE INDEX IF NOT EXISTS {index} ON {self.table(table.name)} ({cols})"
            for index, cols in table.indexes
        ]
        return statements

    def drop(self, table: Table) -> str:
        return f"DROP TABLE IF EXISTS {self.table(table.name)}"

    def lock(self, cursor: Any) -> None:
        """Serialize writers of the read model for the rest of this transaction."""
        raise NotImplementedError

    # -- values -----------------------------------------------------------------------------

    def to_db(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "ts":
            return self.ts_to_db(parse_ts(value))
        if kind == "json":
            return self.json_to_db(value)
        if kind == "bool":
            return bool(value)
        if kind == "uuid":
            return str(value)
        return value

    def from_db(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "ts":
            return iso(parse_ts(value))
        if kind == "json":
            return orjson.loads(value) if isinstance(value, str | bytes) else value
        if kind == "bool":
            return bool(value)
        if kind == "uuid":
            return str(value)
        return value

    def ts_to_db(self, dt: datetime) -> Any:
        return dt

    def json_to_db(self, value: Any) -> Any:
        return orjson.dumps(value).decode()


class PostgresDialect(Dialect):
    name = "postgres"
    types = {
        "text": "TEXT",
        "int": "BIGINT",
        "bool": "BOOLEAN",
        "json": "JSONB",
        "ts": "TIMESTAMPTZ",
        "uuid": "UUID",
    }

    def __init__(self, schema: str, events_table: str, tracking_table: str) -> None:
        super().__init__(events_table, tracking_table)
        self.schema = schema

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"'

    def placeholders(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def lock(self, cursor: Any) -> None:
        # Scoped to the schema: read models in other schemas do not wait for each other.
        key = f"fgd_projections:{self.schema}"
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))

    def json_to_db(self, value: Any) -> Any:
        return Jsonb(value, dumps=lambda v: orjson.dumps(v).decode())


class SQLiteDialect(Dialect):
    name = "sqlite"
    types = {
        "text": "TEXT",
        "int": "INTEGER",
        "bool": "INTEGER",
        "json": "TEXT",
        "ts": "TEXT",
        "uuid": "TEXT",
    }
    events_id = "rowid"

    def lock(self, cursor: Any) -> None:
        # A write as the first statement takes SQLite's write lock now (waiting on the busy
        # timeout), so the position read next cannot be overtaken by another writer.
        cursor.execute(
            self.sql(
                "UPDATE {tracking} SET notification_id = notification_id"
                " WHERE application_name = '__lock__'"
            )
        )

    def ts_to_db(self, dt: datetime) -> Any:
        return dt.astimezone(UTC).strftime(SQLITE_TS)

    def to_db(self, kind: str, value: Any) -> Any:
        value = super().to_db(kind, value)
        return int(value) if isinstance(value, bool) else value


def as_uuid(value: str | UUID) -> str | None:
    """The canonical text of a UUID, or None if ``value`` is not one (→ "not found")."""
    try:
        return str(value if isinstance(value, UUID) else UUID(str(value)))
    except ValueError:
        return None


def _quoted(columns: tuple[str, ...]) -> list[str]:
    return [f'"{c}"' for c in columns]


class _Names(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"unknown table placeholder {{{key}}}")
