"""Content-addressed blobs beside the event store: ``fgd_blobs(blob_id, content)``.

Ingestion workers put each managed file they produce here (keyed by its git blob id) and
record only the id in ``file.processed``; the GitHub-sync worker reads them back to build the
commit. Same database as the events (PostgreSQL schema or SQLite file), so nothing else has
to be deployed. Inserts are insert-if-absent: a redelivered message, or two files producing
the same bytes, write nothing twice. A crash after ``put`` and before the event is saved
leaves unreferenced blobs, which are harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from fgd_core.adapters.persistence import SCHEMA_LOCK
from fgd_core.ingestion.plan import git_blob_id

TABLE = "fgd_blobs"


class BlobStore:
    def __init__(self, recorder: Any) -> None:
        self.datastore = recorder.datastore
        self.postgres = isinstance(recorder, PostgresApplicationRecorder)
        # psycopg's composed SQL on PostgreSQL, plain strings on SQLite
        self._create: list[Any]
        self._insert: Any
        self._select: Any
        if self.postgres:
            table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(TABLE))
            self._create = [
                SQL(SCHEMA_LOCK),
                SQL("CREATE TABLE IF NOT EXISTS {} (blob_id TEXT PRIMARY KEY, content BYTEA "
                    "NOT NULL)").format(table),
            ]
            self._insert = SQL(
                "INSERT INTO {} (blob_id, content) VALUES (%s, %s) ON CONFLICT DO NOTHING"
            ).format(table)
            self._select = SQL("SELECT blob_id, content FROM {} WHERE blob_id = ANY(%s)").format(
                table
            )
        else:
            self._create = [
                f"CREATE TABLE IF NOT EXISTS {TABLE} (blob_id TEXT PRIMARY KEY, content BLOB "
                "NOT NULL)"
            ]
            self._insert = f"INSERT OR IGNORE INTO {TABLE} (blob_id, content) VALUES (?, ?)"
        with self.datastore.transaction(commit=True) as cursor:
            for statement in self._create:
                cursor.execute(statement)

    @classmethod
    def for_app(cls, app: Any) -> BlobStore:
        return cls(app.recorder)

    def put(self, contents: Iterable[bytes]) -> list[str]:
        """Store each content (if absent); their blob ids, in order."""
        rows = {git_blob_id(c): bytes(c) for c in contents}
        if rows:
            self.put_many(rows)
        return list(rows)

    def put_many(self, blobs: Mapping[str, bytes]) -> None:
        items = sorted(blobs.items())  # one lock order for concurrent writers
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(self._insert, items)

    def get_many(self, blob_ids: Iterable[str]) -> dict[str, bytes]:
        ids = sorted(set(blob_ids))
        if not ids:
            return {}
        out: dict[str, bytes] = {}
        with self.datastore.transaction(commit=False) as cursor:
            if self.postgres:
                cursor.execute(self._select, (ids,))
                rows = cursor.fetchall()
                out = {r["blob_id"]: bytes(r["content"]) for r in rows}
            else:
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    cursor.execute(
                        f"SELECT blob_id, content FROM {TABLE} WHERE blob_id IN ({marks})", chunk
                    )
                    out.update({r[0]: bytes(r[1]) for r in cursor.fetchall()})
        missing = [i for i in ids if i not in out]
        if missing:
            raise KeyError(f"{len(missing)} blob(s) not in the blob store, e.g. {missing[0]}")
        return out
