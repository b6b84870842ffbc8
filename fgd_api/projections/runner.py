"""``Projections``: the read model of one FGD event store — keeping it current (catch-up,
a background runner, rebuild), read-your-writes, lag, and the API's queries.

PostgreSQL follows the store live with eventsourcing's ``ProjectionRunner`` (LISTEN/NOTIFY);
SQLite has no subscription, so a thread polls. Either way every write goes through the
read-model recorder, which applies each notification exactly once, in order.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from prometheus_client import Gauge

from fgd_api.projections import queries
from fgd_api.projections.faults import (
    POISON_AFTER,
    PoisonGuard,
    ProjectionStuckError,
    is_transient,
    stuck_error,
)
from fgd_api.projections.recorders import (
    APPLICATION_NAME,
    BATCH_SIZE,
    Item,
    PostgresReadModel,
    ReadModelRecorder,
    SQLiteReadModel,
)
from fgd_core.errors import FGDError, FGDErrorCodes

log = logging.getLogger(__name__)

PROJECTION_LAG = Gauge(
    "fgd_projection_lag",
    "Notifications in the event store not yet applied to the read model",
)


STUCK_RETRY = 2.0  # seconds between attempts at an event the read model is stuck at


class ProjectionTimeoutError(FGDError, TimeoutError):
    """The read model did not reach a position in time (read-your-writes failed)."""

    code = FGDErrorCodes.INTERNAL_ERROR


class _PassThroughMapper(Mapper[UUID]):
    """The runner only needs positions: the recorder reads and validates the envelopes."""

    def __init__(self) -> None:
        self.transcoder = None  # type: ignore[assignment]
        self.compressor = None
        self.cipher = None

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return stored_event

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        raise NotImplementedError("the projection feed never writes")


class EventFeed(Application[UUID]):
    """The FGD event store as seen by the live runner (same name, so the same tracking)."""

    name = APPLICATION_NAME

    def construct_mapper(self) -> _PassThroughMapper:  # type: ignore[override]
        return _PassThroughMapper()


class ReadModelProjection(Projection[ReadModelRecorder]):
    name = "fgd_projections"  # → the PostgreSQL tracking table fgd_projections_tracking

    applied_upto = 0  # highest notification id this projection has seen applied

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:  # type: ignore[override]
        # The runner hands events one at a time; applying only that one would cost a
        # transaction per event. Apply everything pending instead (a burst in one or a few
        # transactions) and let the events already covered pass without a round trip.
        if tracking.notification_id <= self.applied_upto:
            return
        # A short batch means nothing was left when it was read: no extra empty transaction.
        while self.view.advance(None, BATCH_SIZE) >= BATCH_SIZE:
            pass
        self.applied_upto = max(self.applied_upto, tracking.notification_id)


class Projections:
    def __init__(self, app: Application[Any], batch_size: int = BATCH_SIZE) -> None:
        recorder: Any = app.recorder
        self.is_postgres = isinstance(recorder, PostgresApplicationRecorder)
        view_class = PostgresReadModel if self.is_postgres else SQLiteReadModel
        self.view: ReadModelRecorder = view_class(
            recorder.datastore, events_table_name=recorder.events_table_name
        )
        self.view.create_table()  # type: ignore[attr-defined]
        self.view.skipped = self.view.faults.skipped()
        self.guard = PoisonGuard(self.view, log)  # an event it cannot apply: faults.py
        self.batch_size = batch_size
        self._env = dict(app.env)
        if self.is_postgres:  # the live runner's own two pools serve its one thread
            self._env |= {"POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "2"}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._runner: ProjectionRunner[Any, Any] | None = None
        self.last_error: BaseException | None = None

    # -- keeping up -------------------------------------------------------------------------

    def catch_up(self, upto: int | None = None) -> int:
        """Apply everything stored (up to ``upto``) now, in batches; returns the position.
        An outage's error is raised as it is; an event that cannot be applied is counted
        (``ProjectionStuckError`` once it is poison, see faults.py)."""
        try:
            while self.view.advance(upto, self.batch_size) >= self.batch_size:
                pass  # a short batch: nothing (up to ``upto``) was left when it was read
        except Exception as exc:
            if is_transient(exc):
                raise
            self.guard.failed(exc, upto)
        self.guard.passed()
        return self.lag_and_position()[1]

    def apply(self, items: list[Item]) -> int:
        """Apply (position, envelope) pairs, e.g. from ``FGDApplication.subscribe``."""
        return self.view.apply(items)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, poll_interval: float = 0.25) -> None:
        """Keep the read model current in a background thread until ``stop()``."""
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, args=(poll_interval,), name="fgd-projections", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        runner = self._runner
        if runner is not None:
            runner.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        closer = getattr(self.view, "close_async_reads", None)
        if closer is not None:
            closer()

    close = stop

    def __enter__(self) -> Projections:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, poll_interval: float) -> None:
        backoff = poll_interval
        while not self._stopping.is_set():
            try:
                if self.is_postgres:
                    self._follow_live(poll_interval)
                else:
                    self.catch_up()
                    self._stopping.wait(poll_interval)
                backoff = poll_interval
            except ProjectionStuckError as exc:  # logged once by the guard; try again soon
                self.last_error = exc  # (a skip or a fix in another process ends it)
                self._stopping.wait(STUCK_RETRY)
            except Exception as exc:  # a database blip must not end the read model
                self.last_error = exc
                log.exception("projection runner failed; retrying in %.1fs", backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _follow_live(self, poll_interval: float) -> None:
        self.catch_up()
        runner = ProjectionRunner(
            application_class=EventFeed,
            projection_class=ReadModelProjection,
            view_class=PostgresReadModel,
            env=self._env,
        )
        self._runner = runner
        try:
            with runner:
                while not self._stopping.is_set() and not runner.is_interrupted.is_set():
                    runner.run_forever(timeout=poll_interval)
                    self.lag()
        finally:
            self._runner = None
            runner.view.datastore.close()  # the runner closes its app, not its view

    # -- read-your-writes, lag, rebuild -----------------------------------------------------

    def position(self) -> int:
        return self.view.position()

    def wait_for(self, position: int | None, timeout: float = 5.0) -> int:
        """Block until notification ``position`` (e.g. of the caller's own save) has been
        applied; ``ProjectionTimeoutError`` after ``timeout`` seconds, and at once
        ``ProjectionStuckError`` (naming the event) if the read model is stuck before it."""
        if not position:
            return self.position()
        deadline = time.monotonic() + timeout
        # SQLite has no notifications to wake the runner, and without a runner nobody
        # else will apply it: do it here (safe alongside the runner — see recorders.py).
        inline = not (self.running and self.is_postgres)
        interval = 0.005
        while True:
            try:
                current = self.catch_up(upto=position) if inline else self.position()
            except ProjectionStuckError:
                fault = self.guard.blocking(position)
                if fault is not None:
                    raise stuck_error(fault, written=position) from None
                current = self.position()  # got past it meanwhile (another process)
            except Exception as exc:
                if is_transient(exc):
                    raise
                current = self.position()  # one failed attempt at an event: counted
            if current >= position:
                return current
            fault = self.guard.blocking(position)
            if fault is not None:
                raise stuck_error(fault, written=position)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProjectionTimeoutError(
                    f"read model did not reach position {position} within {timeout}s "
                    f"(at {current})",
                    details={"position": position, "reached": current, "timeout": timeout},
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, 0.05)

    def lag_and_position(self) -> tuple[int, int]:
        position = self.view.position()
        lag = max(self.view.max_notification_id() - position, 0)
        PROJECTION_LAG.set(lag)
        return lag, position

    def lag(self) -> int:
        """Stored notifications not yet applied (also sets the ``fgd_projection_lag`` gauge)."""
        return self.lag_and_position()[0]

    def fault(self) -> dict[str, Any] | None:
        """The event the read model is stuck at (position, event type, error, attempts,
        first/last seen), from the database: whichever process found it. None: not stuck."""
        return self.view.faults.current()

    def status(self) -> dict[str, Any]:
        lag, position = self.lag_and_position()
        faults = self.view.faults.all()
        return {
            "position": position, "max_notification_id": position + lag, "lag": lag,
            "stuck": next((f for f in faults if f["status"] == "stuck"
                           and f["position"] > position), None),
            "skipped": [f for f in faults if f["status"] == "skipped"],
        }

    def skip(self, position: int) -> dict[str, Any]:
        """Move the read model past event ``position`` — the next one — without applying
        it, recorded as skipped (faults.py). The runner catches up on its own."""
        skipped = self.view.faults.skip(position)
        self.guard.passed()
        return skipped

    def rebuild(self) -> int:
        """Drop the read tables and the position, then replay the whole log (passing over
        the events an operator skipped). ``ProjectionStuckError`` if an event still cannot
        be applied."""
        was_running = self.running
        self.stop()
        self.view.reset()
        for attempt in range(POISON_AFTER):
            try:
                position = self.catch_up()
                break
            except ProjectionStuckError:
                raise
            except Exception as exc:
                if is_transient(exc) or attempt == POISON_AFTER - 1:
                    raise
        if was_running:
            self.start()
        return position

    # -- queries (the spec's shapes) --------------------------------------------------------

    def sync_status(self, sync_id: str) -> dict[str, Any]:
        return queries.sync_status(self.view, sync_id)

    async def sync_status_async(self, sync_id: str) -> dict[str, Any]:
        """``sync_status`` for async endpoints: on the event loop with PostgreSQL, in a
        worker thread with SQLite."""
        if self.is_postgres:
            return await queries.sync_status_async(self.view, sync_id)
        return await anyio.to_thread.run_sync(self.sync_status, sync_id)

    async def sync_history_async(
        self,
        fabric_id: int,
        limit: int = 10,
        offset: int = 0,
        status: str | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
    ) -> dict[str, Any]:
        """``sync_history`` for async endpoints (see ``sync_status_async``)."""
        args = (fabric_id, limit, offset, status, start_date, end_date)
        if self.is_postgres:
            return await queries.sync_history_async(self.view, *args)
        return await anyio.to_thread.run_sync(self.sync_history, *args)

    def sync_history(
        self,
        fabric_id: int,
        limit: int = 10,
        offset: int = 0,
        status: str | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
    ) -> dict[str, Any]:
        return queries.sync_history(
            self.view, fabric_id, limit, offset, status, start_date, end_date
        )

    def state_transitions(
        self, sync_id: str, with_timestamps: bool = False
    ) -> list[dict[str, Any]]:
        return queries.state_transitions(self.view, sync_id, with_timestamps)

    def file_records(self, sync_id: str) -> list[dict[str, Any]]:
        return queries.file_records(self.view, sync_id)

    def fabric(self, fabric_id: int) -> dict[str, Any]:
        return queries.fabric(self.view, fabric_id)

    def fabrics(self) -> list[dict[str, Any]]:
        return queries.fabrics(self.view)

    def audit_log(
        self,
        fabric_id: int | None = None,
        user: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        return queries.audit_log(self.view, fabric_id, user, limit, offset)
