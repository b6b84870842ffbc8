"""Loading many aggregates in two queries instead of two (and a pooled connection's ping)
per aggregate: what a batch of bus commands needs of its fabrics.

``Repository.get`` reads one aggregate's newest snapshot, then its events after it. Here
one query reads the newest snapshot of every requested aggregate and a second every event
after those snapshots (or after the version an aggregate held in the application's cache,
``AGGREGATE_CACHE_MAXSIZE``), both in one transaction. The rows become domain events
through the application's own mappers (topics resolved, envelopes validated, as any read)
and aggregates by applying them in order (as eventsourcing's ``project_aggregate``), so
the result is what ``repository.get`` would return for each id: a copy of its own (the
cache keeps its object, fast-forwarded when behind).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import suppress
from copy import deepcopy
from itertools import chain
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from fgd_core.domain.base import fabric_uuid
from fgd_core.errors import DatabaseError, NotFoundError

# Rows of (id, after) bound per SQLite statement: well inside SQLITE_MAX_VARIABLE_NUMBER
# (999 before SQLite 3.32) for both queries.
SQLITE_CHUNK = 400
COLUMNS = "originator_id, originator_version, topic, state"


def get_many(app: Application[UUID], ids: Iterable[UUID]) -> dict[UUID, Any]:
    """The current state of each aggregate of ``ids`` found in the store (ids not found are
    absent), each a copy the caller may change. Raises DatabaseError if the store fails."""
    repo = app.repository
    wanted = list(dict.fromkeys(ids))
    cached: dict[UUID, Any] = {}
    if repo.cache:
        for aggregate_id in wanted:
            with suppress(KeyError):  # not cached
                cached[aggregate_id] = repo.cache.get(aggregate_id)
    copy = repo.deepcopy_from_cache  # as Repository.get: the caller gets its own copy
    current: dict[UUID, Any] = {}
    if not repo.fastforward:  # the cache is kept current by every save: trusted as it is
        current = {i: deepcopy(a) if copy else a for i, a in cached.items()}
        wanted = [i for i in wanted if i not in cached]
        cached = {}
    if not wanted:
        return current
    try:
        with app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            missing = [i for i in wanted if i not in cached]
            snapshots = (_newest_snapshots(app, cursor, missing)
                         if app.snapshots is not None and missing else {})
            after = {i: (cached[i].version if i in cached else
                         snapshots[i].originator_version if i in snapshots else 0)
                     for i in wanted}
            events = _events_after(app, cursor, after)
    except (PersistenceError, psycopg.Error, sqlite3.Error) as exc:
        raise DatabaseError(f"event store unavailable: {type(exc).__name__}") from exc
    to_event = app.events.mapper.to_domain_event
    for aggregate_id in wanted:
        new = [to_event(e) for e in events.get(aggregate_id, ())]
        if aggregate_id in cached:
            # Never changed in place: another thread may be reading the cached object.
            aggregate = cached[aggregate_id]
            if new:
                aggregate = _project(deepcopy(aggregate), new)
                repo.cache.put(aggregate_id, aggregate)  # type: ignore[union-attr]
            current[aggregate_id] = deepcopy(aggregate) if copy else aggregate
            continue
        # An aggregate not cached is not added: a batch of a hundred fabrics would evict
        # what is loaded again and again (the SyncCapacity, the registry) from a cache
        # sized for those, and would cost a copy of each.
        snapshot = snapshots.get(aggregate_id)
        start = [] if snapshot is None else [app.snapshots.mapper.to_domain_event(snapshot)]  # type: ignore[union-attr]
        aggregate = _project(None, chain(start, new))
        if aggregate is not None:  # else not in the store
            current[aggregate_id] = aggregate
    return current


def fast_forward(app: Application[UUID], aggregate: Any) -> Any:
    """``aggregate`` — an object the caller owns, holding the stored state of its version —
    brought up to date with the events stored after that version (one query)."""
    try:
        with app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            events = _events_after(app, cursor, {aggregate.id: aggregate.version})
    except (PersistenceError, psycopg.Error, sqlite3.Error) as exc:
        raise DatabaseError(f"event store unavailable: {type(exc).__name__}") from exc
    to_event = app.events.mapper.to_domain_event
    return _project(aggregate, [to_event(e) for e in events.get(aggregate.id, ())])


def stored_after(app: Application[UUID], aggregate_id: UUID, version: int) -> bool:
    """Whether events of ``aggregate_id`` after ``version`` are stored (one query)."""
    try:
        with app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            return bool(_events_after(app, cursor, {aggregate_id: version}))
    except (PersistenceError, psycopg.Error, sqlite3.Error) as exc:
        raise DatabaseError(f"event store unavailable: {type(exc).__name__}") from exc


def events_after_many(app: Application[UUID], after: dict[UUID, int]) -> dict[UUID, list[Any]]:
    """Each aggregate's domain events stored after its version in ``after`` (one query)."""
    try:
        with app.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            stored = _events_after(app, cursor, after)
    except (PersistenceError, psycopg.Error, sqlite3.Error) as exc:
        raise DatabaseError(f"event store unavailable: {type(exc).__name__}") from exc
    to_event = app.events.mapper.to_domain_event
    return {uuid: [to_event(e) for e in events] for uuid, events in stored.items()}


def project(aggregate: Any, events: Iterable[Any]) -> Any:
    """``aggregate`` (None: not yet created) with ``events`` applied in order."""
    return _project(aggregate, events)


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's ``project_aggregate`` without its runtime-Protocol ``isinstance``
    check per event (tens of µs each)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def get_fabrics(app: Application[UUID], fabric_ids: Iterable[int]) -> dict[int, Any]:
    """Each of ``fabric_ids`` → its Fabric, or the NotFoundError ``get_fabric`` raises."""
    ids = {fabric_id: fabric_uuid(fabric_id) for fabric_id in fabric_ids}
    found = get_many(app, ids.values())
    return {
        fabric_id: found[uuid] if uuid in found else NotFoundError(
            f"fabric {fabric_id} not found", details={"fabric_id": fabric_id})
        for fabric_id, uuid in ids.items()
    }


def _stored(row: Any, originator_id: UUID) -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=row["originator_version"],
                       topic=row["topic"], state=bytes(row["state"]))


def _newest_snapshots(app: Application[UUID], cursor: Any, ids: Sequence[UUID]
                      ) -> dict[UUID, StoredEvent]:
    recorder: Any = app.snapshots.recorder  # type: ignore[union-attr]
    table = recorder.events_table_name
    datastore = recorder.datastore
    found: dict[UUID, StoredEvent] = {}
    if isinstance(datastore, PostgresDatastore):
        cursor.execute(SQL(
            "SELECT DISTINCT ON (originator_id) " + COLUMNS + " FROM {}.{}"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version DESC"
        ).format(Identifier(datastore.schema), Identifier(table)), [_pg_ids(datastore, ids)])
        for row in cursor.fetchall():
            found[UUID(str(row["originator_id"]))] = _stored(row, UUID(str(row["originator_id"])))
        return found
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            f"SELECT s.originator_id, s.originator_version, s.topic, s.state FROM {table} s"
            f" JOIN (SELECT originator_id, MAX(originator_version) AS v FROM {table}"
            f" WHERE originator_id IN ({marks}) GROUP BY originator_id) m"
            " ON s.originator_id = m.originator_id AND s.originator_version = m.v",
            [i.hex for i in chunk])
        for row in cursor.fetchall():
            found[UUID(row["originator_id"])] = _stored(row, UUID(row["originator_id"]))
    return found


def _events_after(app: Application[UUID], cursor: Any, after: dict[UUID, int]
                  ) -> dict[UUID, list[StoredEvent]]:
    """Each aggregate's events after its version in ``after``, oldest first."""
    recorder: Any = app.recorder
    table = recorder.events_table_name
    datastore = recorder.datastore
    found: dict[UUID, list[StoredEvent]] = {}
    ids = list(after)
    if isinstance(datastore, PostgresDatastore):
        cast = "uuid[]" if datastore.originator_id_type == "uuid" else "text[]"
        cursor.execute(SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state"
            " FROM unnest(%s::" + cast + ", %s::bigint[]) AS a(id, after)"
            " JOIN {}.{} e ON e.originator_id = a.id AND e.originator_version > a.after"
            " ORDER BY e.originator_id, e.originator_version"
        ).format(Identifier(datastore.schema), Identifier(table)),
            [_pg_ids(datastore, ids), [after[i] for i in ids]])
        for row in cursor.fetchall():
            uuid = UUID(str(row["originator_id"]))
            found.setdefault(uuid, []).append(_stored(row, uuid))
        return found
    for chunk in _chunks(ids):
        values = ", ".join("(?, ?)" for _ in chunk)
        cursor.execute(
            f"WITH a(id, after) AS (VALUES {values})"
            " SELECT e.originator_id, e.originator_version, e.topic, e.state"
            f" FROM a JOIN {table} e ON e.originator_id = a.id AND e.originator_version > a.after"
            " ORDER BY e.originator_id, e.originator_version",
            [v for i in chunk for v in (i.hex, after[i])])
        for row in cursor.fetchall():
            uuid = UUID(row["originator_id"])
            found.setdefault(uuid, []).append(_stored(row, uuid))
    return found


def _pg_ids(datastore: PostgresDatastore, ids: Sequence[UUID]) -> list[Any]:
    return list(ids) if datastore.originator_id_type == "uuid" else [str(i) for i in ids]


def _chunks(ids: Sequence[UUID]) -> Iterable[Sequence[UUID]]:
    return (ids[n:n + SQLITE_CHUNK] for n in range(0, len(ids), SQLITE_CHUNK))


__all__ = ["events_after_many", "fast_forward", "get_fabrics", "get_many", "project",
           "stored_after"]
