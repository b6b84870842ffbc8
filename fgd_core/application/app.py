"""The FGD Application: short commands that load aggregates, call them, and save.

Saving is the only way state changes. Every save writes validated envelopes, then fires the
lifecycle signals and informs listeners (an in-process bus, a test recorder) — after the
events are stored, never before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError, Recording
from eventsourcing.postgres import PostgresApplicationRecorder

from fgd_core.adapters.persistence import SCHEMA_LOCK
from fgd_core.adapters.snapshotting import take_snapshots
from fgd_core.application.capacity_slots import SlotPool
from fgd_core.application.collected import Collected
from fgd_core.application.repository_policy import RepositoryPolicy, claim_place
from fgd_core.application.signals import send_signals
from fgd_core.application.sync_commands import SyncCommands
from fgd_core.domain.base import fabric_uuid
from fgd_core.domain.capacity import SyncCapacity
from fgd_core.domain.correlation import check_same_request, served_by, sync_uuid
from fgd_core.domain.fabric import REGISTRY_ID, Fabric, FabricRegistry, check_settings
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.domain.sync_options import normalize_options
from fgd_core.errors import (
    DatabaseError,
    FabricSuspendedError,
    GitHubConnectionError,
    NotFoundError,
    SyncsDisabledError,
    ValidationError,
    WorkerPoolExhaustedError,
)
from fgd_core.events.envelope import EnvelopeMapper

# Optimistic concurrency: a command that lost a race is re-run on fresh state this often.
RETRIES = 20

Listener = Callable[[list[tuple[int, dict[str, Any]]]], None]


@dataclass
class PreparedSync:
    """A new sync, its fabric holding the lock and (with a limit) the capacity holding its
    slot — NOT saved. Unpacks as ``(sync, fabric)``; save ``objects`` in one transaction."""

    sync: SyncOperation
    fabric: Fabric
    capacity: SlotPool | None = None
    duplicate: bool = False  # the same request's stored sync: nothing to save or to run

    def __iter__(self) -> Iterator[Any]:
        return iter((self.sync, self.fabric))

    @property
    def objects(self) -> list[Any]:
        if self.duplicate:
            return []
        return [self.sync, self.fabric] + (self.capacity.changed() if self.capacity else [])


class FGDApplication(SyncCommands, Application[UUID]):
    name = "FGD"
    # A fabric gains two events per sync: without snapshots, loading it (every start)
    # would replay its whole history.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Fabric: 50, SyncCapacity: 50}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        source: str = "fgd_core",
        max_concurrent_syncs: int | None = None,
        repository_policy: RepositoryPolicy | None = None,
        *,
        syncs_enabled: bool = True,
        push_enabled: bool = True,
    ) -> None:
        """``syncs_enabled`` (``fgd.enabled``): False refuses every new sync (FGD_3004, HTTP
        503). ``push_enabled`` (``fgd.github.enabled``): False starts every sync with
        ``include_github_sync`` false and a warning saying nothing is pushed.

        ``max_concurrent_syncs``: how many syncs may be active at once across every
        trigger and process sharing the event store (FGD_5004 beyond it); None = unlimited,
        and the SyncCapacity aggregate is never read or written.

        ``repository_policy``: the repositories fabrics may be registered with or moved to
        (processes acting for other people: the API, the bus); None = any the git adapter
        supports (the CLI and the library act with the operator's own rights)."""
        if max_concurrent_syncs is not None and (
            isinstance(max_concurrent_syncs, bool) or max_concurrent_syncs < 1
        ):
            raise ValidationError(
                "max_concurrent_syncs must be a positive integer",
                details={"field": "max_concurrent_syncs"},
            )
        self.source = source
        self.max_concurrent_syncs = max_concurrent_syncs
        self.repository_policy = repository_policy
        self.syncs_enabled, self.push_enabled = syncs_enabled, push_enabled
        self._listeners: list[Listener] = []
        self._local = threading.local()
        super().__init__(env)
        self._create_envelope_view()

    def construct_mapper(self) -> EnvelopeMapper:  # type: ignore[override]
        return EnvelopeMapper(self.construct_transcoder(), source=self.source)

    def _create_envelope_view(self) -> None:
        """``fgd_envelopes``: the event log as JSON, for people reading it with psql/sqlite3."""
        recorder: Any = self.recorder
        table = recorder.events_table_name
        if isinstance(recorder, PostgresApplicationRecorder):
            schema = recorder.datastore.schema
            statements = [
                SCHEMA_LOCK,  # processes starting together would race on the catalog
                f"DO $$ BEGIN IF to_regclass('\"{schema}\".fgd_envelopes') IS NULL THEN"
                f' CREATE VIEW "{schema}".fgd_envelopes AS SELECT notification_id AS position,'
                " originator_id, originator_version, topic, convert_from(state, 'UTF8')::jsonb"
                f' AS envelope FROM "{schema}"."{table}"; END IF; END $$',
            ]
        else:
            statements = [
                "CREATE VIEW IF NOT EXISTS fgd_envelopes AS SELECT rowid AS position,"
                " originator_id, originator_version, topic, CAST(state AS TEXT) AS envelope"
                f" FROM {table}"
            ]
        with recorder.datastore.transaction(commit=True) as cursor:
            for sql in statements:
                cursor.execute(sql)

    # -- saving -----------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener([(position, envelope), …])`` after each save; returns unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save aggregates (and the capacity shards a SlotPool changed) in one transaction."""
        return self.record(self.collect(*objs, **kwargs))

    def collect(self, *objs: Any, **kwargs: Any) -> Collected:
        """The pending events of ``objs`` (of a SlotPool: its changed shards'), taken from
        them, for ``record``. A record that conflicts stores none of them and can be tried
        again with the same events — with others added (``merged``), e.g. a batch's slots
        taken in other capacity shards — without preparing them again."""
        collected = Collected()
        collected.collect_events(*(a for o in objs for a in (
            o.changed() if isinstance(o, SlotPool) else (o,))), **kwargs)
        return collected

    def record(self, collected: Collected) -> list[Recording[UUID]]:
        """Store ``collected`` in one transaction (IntegrityError: nothing stored), then
        snapshot, notify, signal and tell the listeners."""
        try:
            recordings = self._record(collected)
            take_snapshots(self, collected)  # of the saved objects, not reloaded
            self._notify(recordings)
        except IntegrityError:
            raise
        except PersistenceError as exc:
            raise DatabaseError(f"event store unavailable: {type(exc).__name__}") from exc
        if recordings:
            self._local.position = recordings[-1].notification.id
        send_signals(recordings, collected.aggregates)
        if self._listeners:
            stored = [(r.notification.id, orjson.loads(r.notification.state)) for r in recordings]
            for listener in list(self._listeners):
                listener(stored)
        return recordings

    def last_position(self) -> int:
        """Position of the last event this thread saved (0 if none): what a reader must
        wait for to see this thread's own writes."""
        return int(getattr(self._local, "position", 0))

    def _retry(self, command: Callable[[], Any]) -> Any:
        for _ in range(RETRIES):
            try:
                return command()
            except IntegrityError:
                continue  # someone else saved first: re-run on the state they left
        raise DatabaseError("too much contention: command did not converge", details={})

    # -- fabrics ----------------------------------------------------------------------------

    def _registry(self) -> FabricRegistry:
        try:
            return self.repository.get(REGISTRY_ID)
        except AggregateNotFoundError:
            return FabricRegistry()

    def register_fabric(
        self,
        name: str,
        repository: str,
        branch: str = "main",
        gitops_directory: str = "gitops",
        sync_enabled: bool = True,
        auto_sync_on_change: bool = False,
        sync_interval_minutes: int = 60,
        fabric_id: int | None = None,
        correlation_id: str = "",
        initial_sync: bool = False,
    ) -> Fabric:
        """Register a fabric. ``initial_sync`` (what the API and ``fgd fabric register``
        ask for): when ``sync_enabled``, its first sync — trigger ``fabric_created`` — is
        started in the same transaction (``fabric.running_sync_id`` names it; the caller
        hands it to whatever runs syncs), so no scheduler ever sees the new fabric without
        a sync. With every ``max_concurrent_syncs`` slot taken the fabric is registered
        without it, and the scheduler starts it (still ``fabric_created``) when a slot
        frees. The library's default is False: this object runs no syncs itself."""
        settings = check_settings(
            {
                "name": name,
                "repository": repository,
                "branch": branch,
                "gitops_directory": gitops_directory,
                "sync_enabled": sync_enabled,
                "auto_sync_on_change": auto_sync_on_change,
                "sync_interval_minutes": sync_interval_minutes,
            }
        )
        if fabric_id is not None and (isinstance(fabric_id, bool) or fabric_id < 1):
            raise ValidationError("fabric_id must be a positive integer", details={})
        if self.repository_policy is not None:
            self.repository_policy.check(repository)

        def register() -> Fabric:
            registry = self._registry()
            new_id = fabric_id or registry.next_id
            registry.add(new_id, name, correlation_id or f"fabric-{new_id}")
            fabric = Fabric(
                fabric_id=new_id, correlation_id=correlation_id or f"fabric-{new_id}", **settings
            )
            claim_place(self, registry, fabric)
            first: list[Any] = []
            if initial_sync and sync_enabled:
                try:
                    first = self.prepare_sync(new_id, "fabric_created", fabric=fabric).objects
                except WorkerPoolExhaustedError:
                    first = []  # no free slot: the scheduler starts it when one frees
            self.save(registry, fabric, *first)
            return fabric

        return self._retry(register)

    def get_fabric(self, fabric_id: int, include_deleted: bool = False) -> Fabric:
        """A fabric; NotFoundError for an unknown one and (unless ``include_deleted``) for
        a deleted one."""
        try:
            fabric: Fabric = self.repository.get(fabric_uuid(fabric_id))
        except AggregateNotFoundError:
            fabric = None  # type: ignore[assignment]
        if fabric is None or (fabric.is_deleted and not include_deleted):
            raise NotFoundError(
                f"fabric {fabric_id} not found", details={"fabric_id": fabric_id}
            ) from None
        return fabric

    def delete_fabric(
        self, fabric_id: int, correlation_id: str = "", reason: str = ""
    ) -> Fabric:
        """Delete a fabric: a running sync is cancelled first (in the same transaction),
        its name and place are freed, its id is never reused. Its events — registration,
        syncs, directory reports — stay in the log; its repository is not touched."""

        def delete() -> Fabric:
            fabric = self.get_fabric(fabric_id)
            cid = correlation_id or fabric.correlation_id
            sync = capacity = None
            if fabric.running_sync_id is not None:
                sync = self.get_sync(fabric.running_sync_id)
                if sync.is_active:
                    sync.cancel(reason or f"fabric {fabric_id} deleted")
                fabric.finish_sync(sync.sync_id, sync.state, sync.correlation_id)
                capacity = self.sync_capacity()
                if capacity is not None and not capacity.release(
                    sync.sync_id, fabric_id, sync.correlation_id
                ):
                    capacity = None
            registry = self._registry()
            registry.remove(fabric_id, fabric.name, cid)
            fabric.delete(cid, cancelled_sync_id=sync.sync_id if sync else None)
            self.save(sync, fabric, capacity, registry)
            return fabric

        return self._retry(delete)  # type: ignore[no-any-return]

    def suspend_fabric(self, fabric_id: int, correlation_id: str = "") -> Fabric:
        """No sync is started while suspended (``sync_enabled`` false), whatever the
        trigger; a running one runs to its end."""
        return self.update_fabric(fabric_id, correlation_id, sync_enabled=False)

    def resume_fabric(self, fabric_id: int, correlation_id: str = "") -> Fabric:
        return self.update_fabric(fabric_id, correlation_id, sync_enabled=True)

    def list_fabrics(self) -> list[Fabric]:
        return [self.get_fabric(i) for i in sorted(self._registry().names.values())]

    def update_fabric(self, fabric_id: int, correlation_id: str = "", **changes: Any) -> Fabric:
        check_settings(changes)
        if self.repository_policy is not None and "repository" in changes:
            self.repository_policy.check(changes["repository"])
        moves = {"repository", "branch", "gitops_directory"}.intersection(changes)

        def update() -> Fabric:
            fabric = self.get_fabric(fabric_id)
            cid = correlation_id or fabric.correlation_id
            registry = None
            if moves or ("name" in changes and changes["name"] != fabric.name):
                registry = self._registry()
            if registry is not None and "name" in changes and changes["name"] != fabric.name:
                registry.rename(fabric_id, fabric.name, changes["name"], cid)
            fabric.update_settings(cid, **changes)
            if registry is not None and moves:
                claim_place(self, registry, fabric)
            self.save(fabric, registry)
            return fabric

        return self._retry(update)

    def record_directory(self, fabric_id: int, kind: str, **report: Any) -> Fabric:
        """Record a directory validate/initialize/repair report (kind = the event's verb)."""
        recorders = {
            "validated": Fabric.record_directory_validated,
            "initialized": Fabric.record_directory_initialized,
            "repaired": Fabric.record_directory_repaired,
        }

        def record() -> Fabric:
            fabric = self.get_fabric(fabric_id)
            report.setdefault("correlation_id", fabric.correlation_id)
            recorders[kind](fabric, **report)  # type: ignore[operator]  # @event methods
            self.save(fabric)
            return fabric

        return self._retry(record)

    # -- syncs ------------------------------------------------------------------------------

    def start_sync(
        self,
        fabric_id: int,
        trigger: str = "manual",
        options: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> SyncOperation:
        """Start a sync; FGD_3001 (naming the running sync) if the fabric is already syncing.
        A repeated correlation id returns its sync (``request_sync`` tells)."""
        return self.request_sync(fabric_id, trigger, options, correlation_id).sync

    def request_sync(
        self,
        fabric_id: int,
        trigger: str = "manual",
        options: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> PreparedSync:
        """``start_sync``: ``.sync`` is the new sync, or (``.duplicate``) the one the same
        request started before (a concurrent duplicate conflicts in the event store and is
        answered here). ``CorrelationReusedError`` (409) if it names another request."""

        def start() -> PreparedSync:
            prepared = self.prepare_sync(fabric_id, trigger, options, correlation_id)
            if prepared.duplicate:
                return prepared
            try:
                self.save(*prepared.objects)
            except IntegrityError:
                earlier = self.sync_named(prepared.sync.correlation_id)
                if earlier is None:
                    raise  # lost the race for the fabric's lock: look again (_retry)
                check_same_request(earlier, fabric_id, prepared.sync.trigger,
                                   prepared.sync.options)
                return PreparedSync(earlier, prepared.fabric, duplicate=True)
            return prepared

        return self._retry(start)  # type: ignore[no-any-return]

    def sync_named(self, correlation_id: str) -> SyncOperation | None:
        """The sync correlation id ``correlation_id`` started, if any."""
        try:
            return self.get_sync(sync_uuid(correlation_id))
        except NotFoundError:
            return None

    def prepare_sync(
        self,
        fabric_id: int,
        trigger: str = "manual",
        options: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        *,
        fabric: Fabric | None = None,
        capacity: SlotPool | None = None,
    ) -> PreparedSync:
        """A new sync, its fabric holding the lock and (with a limit) the capacity holding
        its slot, NOT saved: the caller saves ``.objects`` in one transaction (with whatever
        else must happen exactly once with them). FGD_3001 if the fabric is syncing, else
        FGD_5004 if no slot is free; nothing is changed then. If ``correlation_id`` already
        names one of this fabric's syncs, that sync (``.duplicate``, nothing to save) — or
        ``CorrelationReusedError`` if its trigger or options differ. A correlation id of
        another fabric's sync is found only by the save (IntegrityError on the sync's id).

        ``fabric`` / ``capacity``: already loaded objects to start on (several syncs
        prepared for one save must share them); by default they are loaded."""
        fabric = fabric if fabric is not None else self.get_fabric(fabric_id)
        options, unpushed = self._without_push(options)
        earlier_id = served_by(fabric, correlation_id)  # a repeat (its sync may still run)
        if earlier_id is not None:
            earlier = self.get_sync(earlier_id)
            check_same_request(earlier, fabric_id, trigger, normalize_options(options))
            return PreparedSync(earlier, fabric, duplicate=True)
        if not self.syncs_enabled:
            raise SyncsDisabledError(
                "FGD Sync is disabled (fgd.enabled: false / HEDGEHOG_FGD_ENABLED): no sync "
                "is started", details={"fabric_id": fabric_id, "key": "fgd.enabled"})
        if fabric.is_deleted:  # a fabric handed in (batch loads) may be a deleted one
            raise NotFoundError(f"fabric {fabric_id} not found", details={"fabric_id": fabric_id})
        if not fabric.sync_enabled:
            raise FabricSuspendedError(
                f"fabric {fabric_id} is suspended (sync_enabled is false): no sync is "
                "started; resume it first",
                details={"fabric_id": fabric_id, "reason": "fabric_suspended"},
            )
        fabric.check_idle()  # a busy fabric (the common refusal) costs no new sync object
        limit = self.max_concurrent_syncs
        if limit is not None and capacity is None:
            capacity = self.sync_capacity()
        if capacity is not None and limit is not None and fabric.running_sync_id is None:
            capacity.check(limit)  # before the fabric is touched: no half-prepared start
        sync = SyncOperation.start(fabric_id, trigger, options, correlation_id)
        if unpushed:
            sync.warn(GitHubConnectionError.code, "not pushed: fgd.github.enabled is false; "
                      "the sync validates and commits locally, the remote is left as it is")
        fabric.start_sync(sync.sync_id, sync.correlation_id)
        if capacity is not None and limit is not None:
            capacity.acquire(sync.sync_id, fabric_id, sync.correlation_id, limit)
        return PreparedSync(sync, fabric, capacity if limit is not None else None)

    def _without_push(self, options: dict[str, Any] | None) -> tuple[Any, bool]:
        """With ``push_enabled`` false: the options with ``include_github_sync`` false, and
        whether the request would have pushed (it gets a warning saying it did not)."""
        if self.push_enabled:
            return options, False
        asked = normalize_options(options)
        would_push = asked["include_github_sync"] and not asked["validate_only"]
        return {**(options or {}), "include_github_sync": False}, would_push

    def sync_capacity(self, avoid: Iterable[int] = ()) -> SlotPool | None:
        """The slots of ``max_concurrent_syncs`` over the capacity shards (None when
        unlimited); shards are read as the pool needs them. ``avoid``: shards another
        writer is using (taken only when no other has room)."""
        if self.max_concurrent_syncs is None:
            return None
        return SlotPool(self, self.max_concurrent_syncs, avoid=avoid)

    # -- queries for the scheduler ----------------------------------------------------------

    def position_of(self, originator_id: str | UUID, version: int = 1) -> int | None:
        """Notification-log position of one stored event (None if it is not stored).

        Positions order events of different aggregates without trusting anyone's clock,
        e.g. a coalesced webhook delivery against the start (version 1) of a fabric's sync.
        """
        recorder: Any = self.recorder
        table = recorder.events_table_name
        if isinstance(recorder, PostgresApplicationRecorder):
            sql = (
                f'SELECT notification_id AS position FROM "{recorder.datastore.schema}"'
                f'."{table}" WHERE originator_id = %s AND originator_version = %s'
            )
            params: tuple[Any, ...] = (UUID(str(originator_id)), version)
        else:
            uuid = UUID(str(originator_id))  # stored as hex by eventsourcing's SQLite recorder
            sql = (
                f"SELECT rowid AS position FROM {table}"
                " WHERE originator_id IN (?, ?) AND originator_version = ?"
            )
            params = (uuid.hex, str(uuid), version)
        try:
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
        except PersistenceError as exc:
            raise DatabaseError(f"event store unavailable: {type(exc).__name__}") from exc
        return None if row is None else int(row["position"])
