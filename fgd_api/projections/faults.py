"""When the read model meets an event it cannot apply: telling a poison event from an outage,
recording it where every process sees it, and the operator's way past it.

* **Outage or poison.** An error that says the database could not be reached (connection
  refused or lost, no pooled connection in time, SQLite busy — ``is_transient``) is retried
  with backoff for as long as it lasts, as before. Any other error (an IntegrityError, text
  the database cannot store, a bug in a handler) is pinned on one event by applying the
  pending events one at a time; when the same event has failed ``POISON_AFTER`` times in a
  row, the projection is **stuck** at it.
* **Stuck** is a row of ``fgd_projections_faults`` (position, event type, error, attempts,
  status ``stuck``): the health endpoint, ``fgd projections status`` and every process's
  read-your-writes waits read it. A fault is current while the read model has not got past
  its position — so fixing the code and restarting, a rebuild, or a skip each end it.
* **Skip** (``fgd projections skip POSITION``): only the next event, recorded as ``skipped``
  in the same transaction that moves the position past it; a rebuild skips it again.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking
from prometheus_client import Counter, Gauge

from fgd_core.errors import FGDError, FGDErrorCodes, ValidationError, is_store_outage
from fgd_core.events.envelope import decode_envelope

APPLICATION_NAME = "FGD"  # the upstream application whose notifications are tracked
PROJECTION = "fgd_projections"
FAULTS_TABLE = "fgd_projections_faults"
POISON_AFTER = 3  # consecutive failures of one event, not an outage: it is poison
ERROR_CHARS = 500

POISON_EVENTS = Counter(
    "fgd_projection_poison_events",
    "Events the read model could not apply (after retries): the projection stopped at them",
    ["projection"],
)
STUCK_POSITION = Gauge(
    "fgd_projection_stuck_position",
    "Position of the event the read model is stuck at (0: not stuck)",
    ["projection"],
)


class ProjectionStuckError(FGDError):
    """The read model is stopped at an event it cannot apply: 503 FGD_5001, naming it."""

    code = FGDErrorCodes.INTERNAL_ERROR
    http_status = 503


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` says the database could not be reached or was busy: retried, never
    blamed on an event."""
    return is_store_outage(exc) or isinstance(
        exc, psycopg.OperationalError | psycopg.InterfaceError
    )


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]


def stuck_error(fault: dict[str, Any], written: int | None = None) -> ProjectionStuckError:
    """The error a caller gets while the read model is stuck at ``fault``."""
    position = fault["position"]
    # The way out before the error text: error bodies keep a bounded part of a message,
    # and the database's own words are in details["error"].
    message = (
        f"the read model ({PROJECTION}) is stopped at event {position} "
        f"({fault['event_type']}); an operator must skip it (fgd projections skip {position}) "
        f"or fix the cause and run fgd projections rebuild: {fault['error']}"
    )
    details = {"projection": PROJECTION, "stuck_position": position,
               "event_type": fault["event_type"], "error": fault["error"]}
    if written is not None:
        message = f"this request's write is recorded (position {written}), but {message}"
        details |= {"position": written, "recorded": True}
    return ProjectionStuckError(message, details=details)


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Faults:
    """The faults table of one read model (its recorder's database and dialect)."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.dialect = recorder.dialect

    def ddl(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self.dialect.table(FAULTS_TABLE)} ("
            '"position" BIGINT PRIMARY KEY, "event_type" TEXT, "error" TEXT, "status" TEXT,'
            ' "attempts" BIGINT, "first_seen" TEXT, "last_seen" TEXT, "skipped_at" TEXT)'
        )

    def _sql(self, template: str) -> str:
        return self.dialect.sql(template, faults=FAULTS_TABLE)

    def event_type_at(self, cursor: Any, position: int) -> str:
        cursor.execute(self._sql("SELECT state FROM {events} WHERE {eid} = ?"), (position,))
        row = cursor.fetchone()
        if row is None:
            return "unknown"
        try:
            return str(decode_envelope(bytes(row["state"])).get("event_type", "unknown"))
        except Exception:  # the envelope itself may be what cannot be read
            return "unreadable"

    def next_position(self, cursor: Any) -> int | None:
        """The first stored event after the read model's position."""
        cursor.execute(self._sql("SELECT MIN({eid}) AS p FROM {events} WHERE {eid} > ?"),
                       (self.recorder.position(cursor),))
        row = cursor.fetchone()
        return None if row is None or row["p"] is None else int(row["p"])

    def record(self, position: int, error: str, attempts: int) -> dict[str, Any]:
        """Mark the projection stuck at ``position`` (an upsert; returns the fault)."""
        stamp = now()
        with self.recorder.datastore.transaction(commit=True) as cursor:
            event_type = self.event_type_at(cursor, position)
            cursor.execute(
                self._sql(
                    'INSERT INTO {faults} ("position", event_type, error, status, attempts,'
                    " first_seen, last_seen) VALUES (?, ?, ?, 'stuck', ?, ?, ?)"
                    ' ON CONFLICT ("position") DO UPDATE SET error = excluded.error,'
                    " status = 'stuck', attempts = excluded.attempts,"
                    " last_seen = excluded.last_seen"
                ),
                (position, event_type, error, attempts, stamp, stamp),
            )
        return {"position": position, "event_type": event_type, "error": error,
                "attempts": attempts, "status": "stuck"}

    def _select(self, template: str, *params: Any) -> list[dict[str, Any]]:
        with self.recorder.read() as cursor:
            cursor.execute(self._sql(template), params)
            return [dict(row) for row in cursor.fetchall()]

    def current(self) -> dict[str, Any] | None:
        """The fault the read model is stopped at now (None: not stuck)."""
        rows = self._select(
            'SELECT * FROM {faults} WHERE status = \'stuck\' AND "position" > COALESCE('
            "(SELECT notification_id FROM {tracking} WHERE application_name = ?), 0)"
            ' ORDER BY "position" LIMIT 1',
            APPLICATION_NAME,
        )
        return rows[0] if rows else None

    def all(self) -> list[dict[str, Any]]:
        return self._select('SELECT * FROM {faults} ORDER BY "position"')

    def skipped(self) -> frozenset[int]:
        return frozenset(f["position"] for f in self.all() if f["status"] == "skipped")

    def skip(self, position: int) -> dict[str, Any]:
        """Move the read model past event ``position`` without applying it — only the next
        event — and record the skip, in one transaction under the projection's lock."""
        with self.recorder.datastore.transaction(commit=True) as cursor:
            self.dialect.lock(cursor)
            expected = self.next_position(cursor)
            if expected != position:
                raise ValidationError(
                    f"only the next event can be skipped: that is {expected}, not {position}"
                    if expected is not None else "the read model has applied every event",
                    details={"field": "position", "next": expected},
                )
            event_type = self.event_type_at(cursor, position)
            stamp = now()
            cursor.execute(
                self._sql(
                    'INSERT INTO {faults} ("position", event_type, error, status, attempts,'
                    " first_seen, last_seen, skipped_at)"
                    " VALUES (?, ?, ?, 'skipped', 0, ?, ?, ?)"
                    ' ON CONFLICT ("position") DO UPDATE SET status = \'skipped\','
                    " skipped_at = excluded.skipped_at"
                ),
                (position, event_type, "skipped by an operator", stamp, stamp, stamp),
            )
            self.recorder._insert_tracking(cursor, Tracking(APPLICATION_NAME, position))
        self.recorder.skipped = self.recorder.skipped | {position}
        return {"position": position, "event_type": event_type}


class PoisonGuard:
    """One ``Projections``' view of failures: pins a deterministic failure on one event,
    counts it, and declares the projection stuck after ``POISON_AFTER`` in a row."""

    def __init__(self, view: Any, log: Any) -> None:
        self.view = view
        self.log = log
        self.faults = Faults(view)
        self._lock = threading.Lock()
        self._failures = (0, 0)  # (position, consecutive failures there)
        self.stuck: dict[str, Any] | None = None  # as declared by this process

    def failed(self, exc: BaseException, upto: int | None) -> None:
        """``advance`` raised ``exc`` (not an outage). Apply the pending events one at a
        time: if they all apply, return (the batch as a whole failed, no event did); else
        count a failure of the event that fails and raise — ``ProjectionStuckError`` once it
        has failed ``POISON_AFTER`` times in a row, its own error before."""
        try:
            while self.view.advance(upto, 1) == 1:
                pass
            return
        except Exception as single:
            if is_transient(single):
                raise
            exc = single
        with self.view.read() as cursor:
            position = self.faults.next_position(cursor)
        if position is None:
            raise exc
        with self._lock:
            last, count = self._failures
            count = count + 1 if last == position else 1
            self._failures = (position, count)
        if count < POISON_AFTER:
            raise exc
        fault = self.faults.record(position, describe(exc), count)
        if self.stuck is None or self.stuck["position"] != position:
            POISON_EVENTS.labels(PROJECTION).inc()
            STUCK_POSITION.labels(PROJECTION).set(position)
            self.log.error("read model stopped at event %d (%s) after %d attempts: %s; way "
                           "out: fgd projections skip %d, or fix and fgd projections rebuild",
                           position, fault["event_type"], count, fault["error"], position)
        self.stuck = fault
        raise stuck_error(fault) from exc

    def passed(self) -> None:
        """A catch-up succeeded: forget a stuck event the read model has got past."""
        stuck = self.stuck
        if stuck is not None and self.view.position() >= stuck["position"]:
            self.stuck = None
            STUCK_POSITION.labels(PROJECTION).set(0)
            self.log.warning("read model got past event %d", stuck["position"])

    def blocking(self, position: int) -> dict[str, Any] | None:
        """The fault that stops the read model before ``position``, if any (checked in the
        database: another process may have skipped it meanwhile)."""
        if self.stuck is None or self.stuck["position"] > position:
            return None
        fault = self.faults.current()
        if fault is None or fault["position"] > position:
            self.stuck = None
            return None
        return fault
