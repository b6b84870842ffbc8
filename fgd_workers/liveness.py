"""What the health endpoint reads about the processes that run apart from the API: where the
relay is in the log (and whether a relay holds its lock), and when each scheduler last ran.

* **Relay.** Its position row (``fgd_relay_position``, written by ``fgd_workers.relay``) and,
  on PostgreSQL, whether a session holds the relay's advisory lock — the lock lives as long
  as the relay's connection, so a relay killed with ``kill -9`` is seen as gone at once.
  How far behind it is: the events after its position, and the age of the oldest of them
  (its envelope's timestamp) — an idle relay at the head is never "behind".
* **Scheduler.** Each active scheduler's tick upserts one row (``fgd_scheduler_runs``: name,
  time of the last tick, its interval). The scheduler records nothing else of its own.

Both backends (PostgreSQL, SQLite), through the application's own datastore.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Composable, Identifier

from fgd_core.adapters.persistence import SCHEMA_LOCK
from fgd_core.events.envelope import decode_envelope

RELAY_TABLE = "fgd_relay_position"
SCHEDULER_TABLE = "fgd_scheduler_runs"


def advisory_key(text: str) -> int:
    """The signed 64-bit advisory lock key of ``text`` (the relay's and scheduler's locks)."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def relay_lock_key(recorder: Any, name: str) -> int:
    return advisory_key(f"fgd_relay:{recorder.datastore.schema}.{recorder.events_table_name}"
                        f":{name}")


def _is_postgres(recorder: Any) -> bool:
    return isinstance(recorder, PostgresApplicationRecorder)


def _table(recorder: Any, name: str) -> Composable | str:
    if _is_postgres(recorder):
        return SQL("{}.{}").format(Identifier(recorder.datastore.schema), Identifier(name))
    return name


def _query(recorder: Any, template: str, name: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """``template`` with ``{t}`` the table ``name``; [] when the table does not exist yet."""
    table = _table(recorder, name)
    try:
        with recorder.datastore.transaction(commit=False) as cursor:
            if _is_postgres(recorder):
                cursor.execute(SQL(template.replace("?", "%s")).format(t=table), params)
            else:
                cursor.execute(template.format(t=table), params)
            return list(cursor.fetchall())
    except Exception as exc:
        if _missing_table(exc):
            return []
        raise


def _value(row: Any, key: str, index: int) -> Any:
    try:
        return row[key]
    except (KeyError, IndexError, TypeError):
        return row[index]


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# --- relay ------------------------------------------------------------------------------------


def relay_positions(recorder: Any) -> dict[str, int]:
    """Every relay's recorded position, by name ({}: no relay has ever run here)."""
    rows = _query(recorder, "SELECT name, position FROM {t}", RELAY_TABLE)
    return {str(_value(r, "name", 0)): int(_value(r, "position", 1)) for r in rows}


def relay_holds_lock(recorder: Any, name: str) -> bool | None:
    """Whether a session holds relay ``name``'s lock (PostgreSQL); None where it cannot be
    told (SQLite: a ``flock`` is only visible by trying to take it, which would disturb it)."""
    if not _is_postgres(recorder):
        return None
    key = relay_lock_key(recorder, name) & 0xFFFFFFFFFFFFFFFF
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (key >> 32, key & 0xFFFFFFFF),
        )
        row = cursor.fetchone()
    return bool(row and int(_value(row, "n", 0)))


def oldest_after(recorder: Any, position: int) -> datetime | None:
    """The timestamp of the first stored event after ``position`` (None: there is none)."""
    found = recorder.select_notifications(start=position, limit=1, inclusive_of_start=False)
    if not found:
        return None
    try:
        stamp = decode_envelope(found[0].state)["timestamp"]
    except Exception:  # an unreadable event: the relay dead-letters it, it is still pending
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- scheduler --------------------------------------------------------------------------------


def record_scheduler_run(recorder: Any, name: str, interval: float,
                         when: str | None = None) -> None:
    """Upsert scheduler ``name``'s last tick (creating the table when it is missing)."""
    when = when or now_iso()
    try:
        _upsert_run(recorder, (name, when, interval), create=False)
    except Exception as exc:
        if not _missing_table(exc):
            raise
        _upsert_run(recorder, (name, when, interval), create=True)


def _missing_table(exc: BaseException) -> bool:
    return "does not exist" in str(exc) or "no such table" in str(exc)


def _upsert_run(recorder: Any, row: tuple[str, str, float], *, create: bool) -> None:
    table = _table(recorder, SCHEDULER_TABLE)
    ddl = ("CREATE TABLE IF NOT EXISTS {t} (name TEXT PRIMARY KEY, last_run TEXT NOT NULL,"
           " interval_seconds DOUBLE PRECISION NOT NULL)")
    upsert = ("INSERT INTO {t} (name, last_run, interval_seconds) VALUES (?, ?, ?)"
              " ON CONFLICT (name) DO UPDATE SET last_run = excluded.last_run,"
              " interval_seconds = excluded.interval_seconds")
    with recorder.datastore.transaction(commit=True) as cursor:
        if _is_postgres(recorder):
            if create:
                cursor.execute(SCHEMA_LOCK)
                cursor.execute(SQL(ddl).format(t=table))  # type: ignore[arg-type]
            cursor.execute(SQL(upsert.replace("?", "%s")).format(t=table),  # type: ignore[arg-type]
                           row)
        else:
            if create:
                cursor.execute(ddl.format(t=table))
            cursor.execute(upsert.format(t=table), row)


def scheduler_runs(recorder: Any) -> list[dict[str, Any]]:
    """Every scheduler's last tick: name, last_run (ISO, UTC), interval_seconds."""
    rows = _query(recorder, "SELECT name, last_run, interval_seconds FROM {t} ORDER BY name",
                  SCHEDULER_TABLE)
    return [{"name": str(_value(r, "name", 0)), "last_run": str(_value(r, "last_run", 1)),
             "interval_seconds": float(_value(r, "interval_seconds", 2))} for r in rows]


__all__ = [
    "RELAY_TABLE",
    "SCHEDULER_TABLE",
    "advisory_key",
    "oldest_after",
    "record_scheduler_run",
    "relay_holds_lock",
    "relay_lock_key",
    "relay_positions",
    "scheduler_runs",
]
