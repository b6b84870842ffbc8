"""A run of ``sync.trigger`` commands started in ONE commit: the batch half of
``fgd_workers.command_intake.CommandIntake`` (its ``handle_batch`` hands runs here).

A run's fabrics are loaded in two queries, every trigger is prepared against them and one
SlotPool (``app.prepare_sync``), and the receipts, syncs, fabric locks and slots are
recorded in one transaction. A commit that lost the capacity race to another process keeps
what it prepared and takes its slots in other shards (``_record_run``); any other conflict
prepares the run again on fresh state, and a run that keeps conflicting is handled one
command at a time (``CommandIntake._start``), as ``handle`` would.
"""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import IntegrityError

from fgd_core.adapters.batch_load import events_after_many, get_fabrics
from fgd_core.application.app import FGDApplication
from fgd_core.application.capacity_slots import shard_indexes
from fgd_core.application.collected import Collected
from fgd_core.domain.actor import acting_as
from fgd_core.domain.correlation import served_by
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.errors import DatabaseError, FGDError, WorkerPoolExhaustedError
from fgd_workers.command_messages import Accepted, Result
from fgd_workers.command_outcomes import error_outcome, receipt, started_outcome

log = logging.getLogger("fgd_workers.commands")

RETRIES = 20
# A run of triggers whose one save conflicted is prepared again on fresh state this many
# times before it is handled one command at a time — which, against another process's
# batches, conflicts on nearly every command and re-reads the capacity each time. A conflict
# where a capacity shard it used moved (another process started syncs on it meanwhile) does
# not count, up to RETRIES rounds.
BATCH_TRIES = 3
CAPACITY_MOVED, OTHER_CONFLICT = "capacity moved", "other conflict"


class BatchStarts:
    """The batch commit of the command intake (a mixin of ``CommandIntake``, which provides
    ``app`` and answers one command with ``_start`` / ``_answer``)."""

    app: FGDApplication
    # The SlotPool (capacity shards) as the last batch saved it (None: load it): brought
    # up to date with one query of the events after it instead of a load from the cache
    # (a copy of aggregates holding every active sync's slot) or the store.
    _held_capacity: Any = None
    # Shards a conflicting save found another process writing: a new pool avoids them.
    _avoid: set[int]

    def _start(self, accepted: Accepted) -> tuple[dict[str, Any], bool]:
        raise NotImplementedError

    def _answer(self, accepted: Accepted, outcome: dict[str, Any], duplicate: bool) -> Result:
        raise NotImplementedError

    def _flush(self, run: list[tuple[int, Accepted]], results: list[Result | None]) -> None:
        """Start the syncs of ``run`` (accepted triggers, no ``message_id`` twice) with ONE
        save (tried again on fresh state if it conflicts); one at a time (``_start``) if it
        keeps conflicting (e.g. a redelivered command's receipt is recorded already) or the
        run is one command."""
        if not run:
            return
        tries = rounds = 0
        while len(run) > 1 and tries < BATCH_TRIES and rounds < RETRIES:
            outcomes = self._save_run(run)
            if not isinstance(outcomes, str):
                for (i, accepted), outcome in zip(run, outcomes, strict=True):
                    results[i] = self._answer(accepted, outcome, duplicate=False)
                return
            rounds += 1
            tries += outcomes != CAPACITY_MOVED
        if len(run) > 1:
            log.debug("batch of %d commands kept conflicting; one at a time", len(run))
        for i, accepted in run:
            with acting_as(accepted.principal.user_id):  # metadata.user_id of its events
                results[i] = self._answer(accepted, *self._start(accepted))

    def _save_run(self, run: list[tuple[int, Accepted]]) -> list[dict[str, Any]] | str:
        """Prepare and save the run in one commit: the outcomes, or if the save conflicted
        (then nothing of it is recorded) CAPACITY_MOVED or OTHER_CONFLICT."""
        # fabric id → the in-memory Fabric, or its FGDError: the fabrics first, in two
        # queries for the whole run (the bulk of the reads) …
        fabrics: dict[int, Any] = get_fabrics(self.app, (a.fabric_id for _, a in run))
        # … the capacity shared by every process's starts last, loaded only once a start is
        # possible (a batch for busy fabrics, the common refusal, costs no read of it): the
        # window in which another process's start makes this save conflict stays short.
        capacity: list[Any] = []
        objs: list[Any] = []
        outcomes: list[dict[str, Any]] = []
        started: list[SyncOperation] = []
        for _, accepted in run:
            with acting_as(accepted.principal.user_id):  # metadata.user_id of its events
                outcome, sync = self._prepare(accepted, fabrics, capacity)
                objs.append(receipt(accepted, outcome))
            outcomes.append(outcome)
            if sync is not None:
                objs.append(sync)
                started.append(sync)
        objs.extend(f for f in fabrics.values() if not isinstance(f, FGDError))
        pool = capacity[0] if capacity else None
        outcome_of_save = self._record_run(self.app.collect(*objs), pool, started)
        return outcomes if outcome_of_save is None else outcome_of_save

    def _record_run(self, batch: Collected, pool: Any, started: list[SyncOperation]
                    ) -> str | None:
        """Record ``batch`` (the run's receipts, syncs and fabric locks) with the slots
        ``pool`` (a SlotPool, None: not loaded or no limit) gave ``started``, in one commit:
        None, or why nothing was recorded. When only capacity shards moved meanwhile
        (another process started syncs on them), the same starts take slots in other shards
        and the same events are recorded again — nothing is prepared twice."""
        held = pool if started else None  # a run that starts nothing took no slot
        for _ in range(RETRIES):
            read = {} if held is None else held.versions_read()  # of the shards it loaded
            slots = self.app.collect(held) if held is not None else Collected()
            try:
                self.app.record(batch.merged(slots))
            except IntegrityError:
                moved = shard_indexes(events_after_many(self.app, read)) if read else set()
                if not moved:
                    return OTHER_CONFLICT
                # Another process is filling these shards: the slots go to others.
                held = self._retake(started, moved)
                if held is None:  # no room left elsewhere: prepare the run again, and
                    self._avoid = moved  # its fresh pool avoids them too
                    return CAPACITY_MOVED
                continue
            kept = held if held is not None else pool
            if kept is not None and not kept.changed():
                self._held_capacity = kept  # saved, or untouched: the stored state
            return None
        return CAPACITY_MOVED

    def _retake(self, started: list[SyncOperation], avoid: set[int]) -> Any:
        """A fresh SlotPool (one that avoids ``avoid``) holding a slot for each of
        ``started``, or None if it has too few free."""
        pool = self.app.sync_capacity(avoid)
        try:
            for sync in started:
                pool.acquire(sync.sync_id, sync.fabric_id, sync.correlation_id)  # type: ignore[union-attr]
        except WorkerPoolExhaustedError:
            return None
        return pool

    def _capacity(self) -> Any:
        """The SlotPool to start the batch's syncs on (None: no limit)."""
        # Taken, not shared: a consumer thread running a batch at the same time loads its own.
        held, self._held_capacity = self._held_capacity, None
        if held is None or held.limit != self.app.max_concurrent_syncs:
            avoid, self._avoid = self._avoid, set()
            return self.app.sync_capacity(avoid)
        return held.refresh()

    def _fabric(self, fabric_id: int, fabrics: dict[int, Any]) -> Any:
        """The run's in-memory Fabric (loaded once per run), or the FGDError loading it
        raised (an unknown fabric: the command's outcome)."""
        fabric = fabrics.get(fabric_id)
        if fabric is None:
            try:
                fabric = self.app.get_fabric(fabric_id)
            except DatabaseError:
                raise
            except FGDError as exc:
                fabric = exc
            fabrics[fabric_id] = fabric
        return fabric

    def _prepare(
        self, accepted: Accepted, fabrics: dict[int, Any], capacity: list[Any]
    ) -> tuple[dict[str, Any], SyncOperation | None]:
        """``app.prepare_sync`` against the batch's own fabric and capacity objects (loaded
        at most once per batch; ``capacity`` holds it once loaded): (outcome, the new sync or
        None). Nothing is saved."""
        fabric = self._fabric(accepted.fabric_id, fabrics)
        if isinstance(fabric, FGDError):
            return error_outcome(fabric), None
        try:
            if served_by(fabric, accepted.cid) is None:  # else prepare_sync answers the repeat
                fabric.check_idle()
            if not capacity:
                capacity.append(self._capacity())  # None: no limit
            prepared = self.app.prepare_sync(accepted.fabric_id, accepted.trigger,
                                             accepted.options, accepted.cid, fabric=fabric,
                                             capacity=capacity[0])
        except DatabaseError:
            raise
        except FGDError as exc:
            return error_outcome(exc), None
        return started_outcome(prepared), None if prepared.duplicate else prepared.sync


__all__ = ["BATCH_TRIES", "RETRIES", "BatchStarts"]
