"""``fgd worker scheduler``: scheduled syncs, the sync timeout, the concurrency limit and
webhook follow-ups — one pass at a time (``tick(now)``), one active scheduler at a time.

Each tick, in this order:

1. **Timeouts.** A fabric's running sync that started more than ``sync.timeout_seconds``
   ago is timed out (``time_out_sync`` → ``sync.timeout``, FGD_3002; the fabric's lock is
   released in the same save). Whatever a worker did or did not do, nothing stays
   "processing" forever: a sync whose worker died is ended here at the latest.
2. **Webhook follow-ups.** A push whose delivery was *coalesced* (the fabric was already
   syncing, see ``webhook.received``'s ``coalesced`` list) may not be in the running sync's
   fetch; the fabric is owed ONE follow-up ``webhook`` sync. Decision: no extra flag is
   stored — a follow-up is owed while the newest coalesced delivery for the fabric sits
   *later in the event log* than the start of the fabric's newest sync. Any sync that starts
   after the delivery (the follow-up, or a manual one) settles it, any number of coalesced
   deliveries during one run settle with one follow-up, and a restarted scheduler (which
   re-reads the deliveries from the log) or a second one can neither lose nor repeat it.
   Log positions, not timestamps: the API's and the scheduler's clocks may disagree.
3. **Scheduled syncs.** A fabric with ``sync_enabled`` whose newest sync *started* more than
   ``sync_interval_minutes`` ago gets a ``scheduled`` sync; one that never synced gets a
   ``fabric_created`` sync (registration starts that one itself, in the same transaction,
   so this is only for a fabric registered suspended and resumed, or registered while
   every slot was taken). A fabric
   already syncing is skipped, not queued: FGD_3001 from ``start_sync`` is the normal skip.
4. **Change check.** Before a scheduled or follow-up sync the fabric's remote is asked
   whether anything changed since its last completed sync (``fgd_workers.change_check``:
   an ls-remote, and the ``raw/`` tree id when the head moved). Nothing changed and no file
   owed a retry → no sync, nothing written to the event log; the fabric is reported as
   ``unchanged`` and counts as checked: it is due again ``sync_interval_minutes`` after the
   check (kept in memory; a restarted scheduler checks every fabric once, which writes
   nothing either). A settled check also settles a webhook follow-up.
5. **Concurrency.** While ``sync.max_concurrent_syncs`` syncs are active (counted from the
   fabrics' ``running_sync_id``: one aggregate each, no sync replayed) nothing is started;
   the held-back fabrics are reported as ``deferred`` and retried next tick.

Only one scheduler acts at a time: a PostgreSQL session advisory lock on a connection of its
own (like the relay), or a ``flock`` beside the SQLite file. A standby polls the lock.
The scheduler records nothing of its own: every decision is re-derived from the store,
except when a no-op change check last looked (memory and metrics only, see 4).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic

from fgd_core.adapters.metrics import fgd_active_syncs, fgd_queue_depth
from fgd_core.application.app import FGDApplication
from fgd_core.config import SyncConfig
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.webhook import WebhookDelivery
from fgd_core.errors import (
    FGDError,
    NotFoundError,
    SyncAlreadyInProgressError,
    WorkerPoolExhaustedError,
)
from fgd_core.events.envelope import decode_envelope
from fgd_workers.bus import DEAD_QUEUE
from fgd_workers.change_check import ChangeCheck, Verdict
from fgd_workers.fabric_watch import FabricWatch
from fgd_workers.liveness import record_scheduler_run
from fgd_workers.locks import FileLock
from fgd_workers.metrics_server import QueueProbe, probe_queues
from fgd_workers.scheduler_lock import PostgresSchedulerLock, file_scheduler_lock

log = logging.getLogger("fgd_workers.scheduler")

DEFAULT_TICK_SECONDS = 5.0
DELIVERY_TOPIC = get_topic(WebhookDelivery.Received)  # type: ignore[attr-defined]
SCAN_BATCH = 500
# Random bytes ending each correlation id the scheduler gives a sync (a predictable id could
# be taken first by a client).
ID_RANDOM_BYTES = 8

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class TickReport:
    """What one tick did. ``active`` is False when another scheduler holds the lock (then
    nothing else is set)."""

    now: datetime
    active: bool = True
    started: list[dict[str, Any]] = field(default_factory=list)  # fabric_id, sync_id, trigger
    skipped: list[dict[str, Any]] = field(default_factory=list)  # fabric_id, trigger, reason
    deferred: list[dict[str, Any]] = field(default_factory=list)  # fabric_id, trigger
    timed_out: list[dict[str, Any]] = field(default_factory=list)  # fabric_id, sync_id, age
    unchanged: list[dict[str, Any]] = field(default_factory=list)  # fabric_id, trigger, reason
    checked: int = 0  # change checks made (unchanged + the syncs they started)
    active_syncs: int = 0
    queue_depth: int = 0
    dead_letters: int | None = None

    def started_for(self, fabric_id: int) -> list[dict[str, Any]]:
        return [s for s in self.started if s["fabric_id"] == fabric_id]


# --- the scheduler --------------------------------------------------------------------------


class Scheduler:
    """``tick(now)`` is one deterministic pass (the clock is injected); ``run_once`` is a
    tick under the lock; ``run(stop)`` ticks every ``interval`` seconds until ``stop``."""

    def __init__(
        self,
        app: FGDApplication,
        config: SyncConfig,
        *,
        name: str = "scheduler",
        interval: float = DEFAULT_TICK_SECONDS,
        clock: Clock = utcnow,
        connection_factory: Callable[[], Any] | None = None,
        queue_prefix: str = "fgd",
        on_started: Callable[[str], None] | None = None,
        lock_poll_interval: float | None = None,
        change_check: ChangeCheck | None = None,
    ) -> None:
        self.app, self.config, self.name = app, config, name
        self.interval, self.clock = interval, clock
        self.on_started = on_started  # e.g. an embedded executor's submit
        self.change_check = change_check or ChangeCheck(app)
        self.watch = FabricWatch(app)  # the fabrics, reloaded only when the log says so
        # fabric id → when a change check last found nothing to do (the tick's clock).
        self._checked: dict[int, datetime] = {}
        self.lock_poll_interval = lock_poll_interval or interval
        recorder: Any = app.recorder
        self.lock: PostgresSchedulerLock | FileLock = (
            PostgresSchedulerLock(recorder, name)
            if isinstance(recorder, PostgresApplicationRecorder)
            else file_scheduler_lock(recorder, name)
        )
        self.probe = QueueProbe(connection_factory) if connection_factory else None
        self.discovery_queue = f"{queue_prefix}.discovery"
        # Re-derived from the log at start: position of the newest delivery that coalesced
        # each fabric, and how far the log has been read for deliveries.
        self._coalesced: dict[int, int] = {}
        self._cursor = 0
        # sync id → (started_at, log position of its start): immutable, cached.
        self._starts: dict[str, tuple[datetime, int | None]] = {}

    # -- loop -------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> TickReport:
        """A tick if this is the active scheduler, else an inactive report (nothing done)."""
        now = now or self.clock()
        if not self.lock.acquire():
            self.watch.reset()  # a standby that becomes active lists them afresh
            return TickReport(now=now, active=False)
        return self.tick(now)

    def run(self, stop: threading.Event) -> None:
        standby_logged = False
        failing = False  # one log line per run of failed ticks, not one per tick
        try:
            while not stop.is_set():
                try:
                    report = self.run_once()
                except Exception:  # store or broker trouble: try again next tick
                    if not failing:
                        log.exception("scheduler %s: tick failed; trying every %.1fs (further "
                                      "failures logged at debug)", self.name, self.interval)
                    else:
                        log.debug("scheduler %s: tick failed again", self.name, exc_info=True)
                    failing = True
                    stop.wait(self.interval)
                    continue
                if failing:
                    log.info("scheduler %s: ticks succeed again", self.name)
                    failing = False
                if not report.active:
                    if not standby_logged:
                        log.info("scheduler %s: another scheduler is active; waiting",
                                 self.name)
                        standby_logged = True
                    stop.wait(self.lock_poll_interval)
                    continue
                if standby_logged:
                    log.info("scheduler %s: now the active scheduler", self.name)
                    standby_logged = False
                stop.wait(self.interval)
        finally:
            self.close()

    def close(self) -> None:
        self.lock.release()
        if self.probe is not None:
            self.probe.close()

    # -- one pass ---------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickReport:
        now = now or self.clock()
        report = TickReport(now=now)
        self._read_deliveries()
        fabrics = self.watch.fabrics()
        running: dict[int, str] = {
            f.fabric_id: f.running_sync_id for f in fabrics if f.running_sync_id
        }
        self._time_out(fabrics, running, now, report)

        candidates = self._follow_ups(fabrics, running, report)
        chosen = {fid for fid, _ in candidates}
        candidates += self._due(fabrics, running, chosen, now, report)
        if not self.app.syncs_enabled:  # fgd.enabled false: start nothing, check nothing
            report.skipped += [{"fabric_id": fabric_id, "trigger": trigger,
                                "reason": "disabled"} for fabric_id, trigger in candidates]
            candidates = []

        limit = self.config.max_concurrent_syncs
        by_id = {f.fabric_id: f for f in fabrics}
        verdicts = self.change_check.verdicts(by_id[fabric_id] for fabric_id, _ in candidates)
        for fabric_id, trigger in candidates:
            if self._unchanged(by_id[fabric_id], trigger, verdicts[fabric_id], now, report):
                continue
            if len(running) >= limit:
                report.deferred.append({"fabric_id": fabric_id, "trigger": trigger})
                continue
            try:
                sync = self.app.start_sync(fabric_id, trigger,
                                           correlation_id=self._correlation_id(
                                               trigger, fabric_id, now))
            except SyncAlreadyInProgressError as exc:  # started meanwhile: skip, not queue
                running[fabric_id] = str(exc.details.get("sync_id") or "")
                report.skipped.append(
                    {"fabric_id": fabric_id, "trigger": trigger, "reason": "already syncing"}
                )
                continue
            except WorkerPoolExhaustedError:  # another process took the last slot
                report.deferred.append({"fabric_id": fabric_id, "trigger": trigger})
                continue
            except FGDError as exc:
                log.warning("scheduler %s: fabric %s: %s sync not started: %s", self.name,
                            fabric_id, trigger, exc.message)
                report.skipped.append(
                    {"fabric_id": fabric_id, "trigger": trigger, "reason": exc.code}
                )
                continue
            running[fabric_id] = sync.sync_id
            report.started.append(
                {"fabric_id": fabric_id, "sync_id": sync.sync_id, "trigger": trigger}
            )
            log.info("scheduler %s: started %s sync %s of fabric %s", self.name, trigger,
                     sync.sync_id, fabric_id)
            if self.on_started is not None:
                self.on_started(sync.sync_id)

        report.active_syncs = len(running)
        self._gauges(report)
        self._prune(fabrics)
        # The health endpoint's "last run" (wall clock, not the tick's injected one).
        record_scheduler_run(self.app.recorder, self.name, self.interval)
        return report

    def _correlation_id(self, trigger: str, fabric_id: int, now: datetime) -> str:
        """Readable, but not guessable: a client that sent the same id first (any client
        may name its own correlation ids) would make this start a 409, so the id ends in
        64 random bits (docs/decisions.md)."""
        return (f"{self.name}-{trigger}-{fabric_id}-{now:%Y%m%dT%H%M%S}-"
                f"{secrets.token_hex(ID_RANDOM_BYTES)}")

    def _unchanged(self, fabric: Fabric, trigger: str, verdict: Verdict, now: datetime,
                   report: TickReport) -> bool:
        """The change check's verdict: True when nothing is owed (no sync, nothing
        recorded)."""
        report.checked += 1
        if verdict.changed:
            log.debug("scheduler %s: fabric %s: %s", self.name, fabric.fabric_id,
                      verdict.reason)
            return False
        self._checked[fabric.fabric_id] = now
        if trigger == "webhook":  # the coalesced push brought nothing for a sync
            self._coalesced.pop(fabric.fabric_id, None)
        report.unchanged.append(
            {"fabric_id": fabric.fabric_id, "trigger": trigger, "reason": verdict.reason}
        )
        return True

    # -- steps ------------------------------------------------------------------------------

    def _read_deliveries(self) -> None:
        """Follow the log for ``webhook.received`` events (topic-filtered, from the cursor)."""
        recorder: Any = self.app.recorder
        while True:
            batch = recorder.select_notifications(
                start=self._cursor, limit=SCAN_BATCH, topics=[DELIVERY_TOPIC],
                inclusive_of_start=False,
            )
            for notification in batch:
                envelope = decode_envelope(notification.state)
                for fabric_id in envelope["payload"].get("coalesced") or []:
                    previous = self._coalesced.get(int(fabric_id), 0)
                    self._coalesced[int(fabric_id)] = max(previous, notification.id)
                self._cursor = max(self._cursor, notification.id)
            if len(batch) < SCAN_BATCH:
                return

    def _start_of(self, sync_id: str) -> tuple[datetime, int | None]:
        """When a sync started and where its start sits in the log (its first event only)."""
        known = self._starts.get(sync_id)
        if known is None:
            sync = self.app.get_sync(sync_id, version=1)
            known = (sync.started_at, self.app.position_of(sync_id, 1))
            self._starts[sync_id] = known
        return known

    def _time_out(self, fabrics: list[Fabric], running: dict[int, str], now: datetime,
                  report: TickReport) -> None:
        timeout = self.config.timeout_seconds
        for fabric in fabrics:
            sync_id = running.get(fabric.fabric_id)
            if sync_id is None:
                continue
            try:
                started_at, _ = self._start_of(sync_id)
            except NotFoundError:
                continue
            age = (now - started_at).total_seconds()
            if age <= timeout:
                continue
            try:
                sync = self.app.time_out_sync(sync_id, timeout)
            except FGDError as exc:  # it ended meanwhile (IllegalTransition): nothing to do
                log.info("scheduler %s: sync %s not timed out: %s", self.name, sync_id,
                         exc.message)
                if not self.app.get_sync(sync_id).is_active:
                    running.pop(fabric.fabric_id, None)
                continue
            running.pop(fabric.fabric_id, None)
            report.timed_out.append(
                {"fabric_id": fabric.fabric_id, "sync_id": sync_id, "age_seconds": age,
                 "state": sync.state}
            )
            log.warning("scheduler %s: sync %s of fabric %s ran %.0fs > %ss: timed out "
                        "(FGD_3002)", self.name, sync_id, fabric.fabric_id, age, timeout)

    def _last_start(self, fabric: Fabric) -> tuple[datetime, int | None] | None:
        if not fabric.sync_ids:
            return None
        return self._start_of(fabric.sync_ids[-1])

    def _follow_ups(self, fabrics: list[Fabric], running: dict[int, str],
                    report: TickReport) -> list[tuple[int, str]]:
        by_id = {f.fabric_id: f for f in fabrics}
        owed: list[tuple[int, str]] = []
        for fabric_id, delivered_at in sorted(self._coalesced.items()):
            fabric = by_id.get(fabric_id)
            if fabric is None or not fabric.sync_enabled:
                self._coalesced.pop(fabric_id)  # gone or disabled: nothing owed
                continue
            last = self._last_start(fabric)
            if last is not None and (last[1] or 0) > delivered_at:
                self._coalesced.pop(fabric_id)  # a sync started after the push: settled
                continue
            if fabric_id in running:
                continue  # still the run it was coalesced into (or another): wait for it
            owed.append((fabric_id, "webhook"))
        return owed

    def _due(self, fabrics: list[Fabric], running: dict[int, str], chosen: set[int],
             now: datetime, report: TickReport) -> list[tuple[int, str]]:
        """Fabrics due a scheduled sync, the longest-waiting (or never synced) first."""
        due: list[tuple[datetime, int]] = []
        never = datetime.min.replace(tzinfo=UTC)
        for fabric in fabrics:
            if not fabric.sync_enabled or fabric.fabric_id in chosen:
                continue
            last = self._last_start(fabric)
            # Due an interval after its last sync started or its last no-op check.
            times = [t for t in (last[0] if last else None,
                                 self._checked.get(fabric.fabric_id)) if t is not None]
            since = max(times) if times else None
            if since is not None and now - since < timedelta(
                minutes=fabric.sync_interval_minutes
            ):
                continue
            if fabric.fabric_id in running:  # due, but syncing: skipped, not queued
                report.skipped.append({"fabric_id": fabric.fabric_id, "trigger": "scheduled",
                                       "reason": "already syncing"})
                continue
            due.append((since or never, fabric.fabric_id))
        # A fabric that never synced (registered suspended and resumed, or registered while
        # every slot was taken) gets the first sync registration would have started.
        first = {f.fabric_id for f in fabrics if not f.sync_ids}
        return [(fabric_id, "fabric_created" if fabric_id in first else "scheduled")
                for _, fabric_id in sorted(due)]

    def _gauges(self, report: TickReport) -> None:
        waiting = len(report.deferred)
        if self.probe is not None:
            # Syncs recorded but not yet picked up: sync.started waiting for discovery.
            counts = probe_queues(self.probe, [self.discovery_queue])
            waiting += counts[self.discovery_queue] or 0
            report.dead_letters = counts[DEAD_QUEUE.name]
        report.queue_depth = waiting
        fgd_active_syncs.set(report.active_syncs)
        fgd_queue_depth.set(waiting)

    def _prune(self, fabrics: list[Fabric]) -> None:
        self.change_check.forget(fabrics)
        known = {f.fabric_id for f in fabrics}
        self._checked = {k: v for k, v in self._checked.items() if k in known}
        if len(self._starts) > 4 * len(fabrics) + 64:
            keep = {f.sync_ids[-1] for f in fabrics if f.sync_ids}
            self._starts = {k: v for k, v in self._starts.items() if k in keep}


__all__ = ["DEFAULT_TICK_SECONDS", "Scheduler", "TickReport"]
