"""One sync as three idempotent steps: discover, ingest (one file or many), publish. These
steps are the only implementation of a sync; two drivers run them — the bus workers
(``fgd_workers.discovery`` / ``ingestion`` / ``github``, one message per step) and the
in-process driver (``pipeline_local``: embedded ``fgd serve``, ``fgd sync`` without a
broker, library use). Both record the same events.

Every step reads the SyncOperation first and does nothing when what it would record is
already recorded (or the sync ended): a redelivered or duplicated message is a no-op by
construction. Every step records its result in ONE ``update_sync`` save whose command
re-checks that state, so two workers racing on the same message cannot both record it (the
loser's save fails optimistic concurrency, re-runs on fresh state and finds it done).

* ``discover(sync_id)`` — on ``sync.started``: fetch, list raw files; in one save record
  validation, discovery (one ``file.discovered`` per file) and begin ``file_ingestion``.
* ``ingest(sync_id, path, blob_id)`` / ``ingest_many`` — on ``file.discovered``: plan each
  file alone, put the managed contents in the blob store, record ``file.processed`` (with
  ``writes``) / ``file.failed`` / ``file.skipped``; the save that finishes the set also
  completes ``file_ingestion``.
* ``publish(sync_id)`` — on ``stage.completed`` of ``file_ingestion``: see ``step_publish``.

Fetches and pushes that fail transiently (FGD_4001, FGD_4003) are retried per
``sync.retry_policy`` within the sync's timeout, each retry a non-fatal ``sync.error``.
Each stage a step runs is an OpenTelemetry span (``sync.<stage>``; one
``sync.file_ingestion`` span per file) in the trace derived from the sync's correlation id,
so the spans of every worker process for one sync form one trace.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import PersistenceError

from fgd_core.adapters.blob_store import BlobStore
from fgd_core.adapters.git_repo import GitRemote, Snapshot, SnapshotBlobs
from fgd_core.adapters.observability import correlated, stage_span
from fgd_core.application import step_publish
from fgd_core.application.app import FGDApplication
from fgd_core.application.directory_guard import prepare_directory
from fgd_core.application.directory_scan import raw_file_role
from fgd_core.application.group_save import GroupSave
from fgd_core.application.pipeline_common import (
    DONE,
    FAILED,
    NOOP,
    LazyBlobs,
    RemoteFactory,
    complete_ingestion,
    earlier_failures,
    failed_before,
    ingestion_summary,
    record_file,
    recorded_writes,
    rules_for,
)
from fgd_core.application.remotes import make_remote
from fgd_core.application.retry import call_with_retry, retry_details
from fgd_core.config import FGDConfig
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.sync_operation import FILE_DONE, PENDING, SyncOperation
from fgd_core.errors import (
    DatabaseError,
    FGDError,
    IllegalTransitionError,
    SyncFailedError,
    SyncTimeoutError,
)
from fgd_core.ingestion.plan import FileResult, RawFile, SyncPlan, git_blob_id, plan_sync

log = logging.getLogger("fgd_core.steps")
T = TypeVar("T")
SEEN_SYNCS = 16  # syncs whose fetched snapshot a process keeps (one fetch per sync per worker)


class SyncSteps:
    def __init__(
        self,
        app: FGDApplication,
        config: FGDConfig,
        blobs: BlobStore | None = None,
        *,
        remote_factory: RemoteFactory | None = None,
        token: str | None = None,
        cache_root: Path | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        reuse_snapshots: bool = False,
        keep_plans: bool = False,
    ) -> None:
        self.app, self.config, self.token, self.cache_root = app, config, token, cache_root
        self.blobs = blobs or BlobStore.for_app(app)
        self.remote_factory = remote_factory or (
            lambda fabric: make_remote(fabric, config, token, cache_root)
        )
        self.sleep = sleep  # how a retry waits (tests may pass a fake)
        self._remotes: dict[int, GitRemote] = {}
        # sync id → (snapshot, raw listing, failed_before): one fetch per sync per worker.
        self._seen: dict[str, tuple[Snapshot, list[str], dict[str, str]]] = {}
        # (id(snapshot), prefix) → (snapshot, a view of its files): each directory's tree
        # read and parsed once per snapshot, not once per path looked up.
        self._views: dict[tuple[int, str], tuple[Snapshot, SnapshotBlobs]] = {}
        self._lock = threading.Lock()
        # sync id → file path → the writes this process recorded for it (see writes_of).
        self._written: dict[str, dict[str, list[dict[str, Any]]]] = {}
        # This process's threads record the files they planned for one sync together.
        self._group_save: GroupSave[_Planned] = GroupSave()
        # The in-process driver: publish builds on the snapshot discovery fetched (the push
        # is compare-and-swap either way), and the plan it commits is kept for the caller.
        self.reuse_snapshots = reuse_snapshots
        self.keep_plans = keep_plans
        self.plans: dict[str, SyncPlan] = {}

    # -- plumbing ---------------------------------------------------------------------------

    def remote_for(self, fabric: Fabric) -> GitRemote:
        with self._lock:
            remote = self._remotes.get(fabric.fabric_id)
            if remote is None:
                remote = self._remotes[fabric.fabric_id] = self.remote_factory(fabric)
            return remote

    def seconds_left(self, sync: SyncOperation) -> float:
        """Seconds before the sync's timeout (``sync.timeout_seconds`` from its start)."""
        started = sync.started_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        return self.config.sync.timeout_seconds - elapsed

    def check_deadline(self, sync: SyncOperation) -> None:
        if self.seconds_left(sync) < 0:
            raise SyncTimeoutError(
                f"sync exceeded {self.config.sync.timeout_seconds}s",
                details={"timeout_seconds": self.config.sync.timeout_seconds},
            )

    def retrying(self, sync: SyncOperation, fn: Callable[[], T]) -> T:
        """``fn`` (a fetch or a push) within the retry policy and before the sync's timeout;
        each retry is recorded as a non-fatal ``sync.error`` (on a sync that ended meanwhile
        that raises IllegalTransitionError, which stops retrying: the step is a no-op)."""
        sync_id = sync.sync_id
        deadline = time.monotonic() + self.seconds_left(sync)

        def on_retry(error: FGDError, attempt: int, delay: float) -> None:
            details = retry_details(error, attempt, delay)
            self.app.record_error(sync_id, error.code, error.message, details)

        return call_with_retry(
            fn, self.config.sync.retry_policy, sleep=self.sleep, on_retry=on_retry,
            deadline=deadline,
        )

    def fetch(self, sync: SyncOperation, remote: GitRemote, branch: str) -> Snapshot:
        return self.retrying(sync, lambda: remote.fetch(branch))

    def view(self, snapshot: Snapshot, prefix: str = "") -> SnapshotBlobs:
        """The files under ``prefix`` of a fetched snapshot, one view per snapshot."""
        key = (id(snapshot), prefix)
        with self._lock:
            hit = self._views.get(key)
            if hit is not None and hit[0] is snapshot:
                return hit[1]
            if len(self._views) > 4 * SEEN_SYNCS:
                self._views.clear()
            view = LazyBlobs(snapshot, prefix)
            self._views[key] = (snapshot, view)
            return view

    def snapshot_of(self, sync: SyncOperation) -> Snapshot | None:
        """The snapshot this process fetched for the sync, when publish may build on it."""
        seen = self._seen.get(sync.sync_id) if self.reuse_snapshots else None
        return seen[0] if seen is not None else None

    def forget(self, sync_id: str) -> None:
        self._seen.pop(sync_id, None)
        with self._lock:
            self._written.pop(sync_id, None)

    def span(self, sync: SyncOperation, stage: str) -> AbstractContextManager[Any]:
        return stage_span(stage, sync.sync_id, sync.correlation_id or sync.sync_id)

    def load(self, sync_id: str) -> SyncOperation | None:
        """The sync, for reading only: straight from the aggregate cache (fast-forwarded),
        not a deep copy of it. Writes go through ``update_sync``, which works on a copy."""
        try:
            uuid = UUID(str(sync_id))
            sync: Any = self.app.repository.get(uuid, deepcopy_from_cache=False)
        except ValueError:
            return None
        except AggregateNotFoundError:
            return None  # another installation's event on a shared exchange
        except PersistenceError as exc:
            raise DatabaseError(f"event store unavailable: {type(exc).__name__}") from exc
        return sync if isinstance(sync, SyncOperation) else None

    def _guarded(self, sync_id: str, step: Callable[[SyncOperation], str]) -> str:
        sync = self.load(sync_id)
        if sync is None or not sync.is_active:
            return NOOP
        try:
            with correlated(sync.correlation_id):
                return step(sync)
        except DatabaseError:
            raise  # transient: the message is redelivered
        except IllegalTransitionError as exc:
            log.info("sync %s: %s (no-op)", sync_id, exc.message)
            return NOOP
        except SyncTimeoutError:
            if self.load(sync_id) is not None and self.app.get_sync(sync_id).is_active:
                self.app.time_out_sync(sync_id, self.config.sync.timeout_seconds)
            self.forget(sync_id)
            return FAILED
        except FGDError as exc:
            self.fail(sync_id, exc.code, exc.message, exc.details)
            return FAILED

    def fail(self, sync_id: str, code: str, message: str, details: dict[str, Any]) -> None:
        """End the sync as failed (if it is still running), naming the stage."""

        def command(s: SyncOperation) -> None:
            if s.is_active:
                # Discovery records its stages once it is done: a failure before names
                # the stage it failed in (validation), as a failure in any other stage does.
                stage = s.current_stage or next(iter(s.stages_pending), None)
                s.fail(code, message, {**details, "stage": stage})

        if self.load(sync_id) is not None:
            self.app.update_sync(sync_id, command)
        self.forget(sync_id)

    def poisoned(self, sync_id: str, reason: str, file_path: str | None = None) -> None:
        """A message that failed on every delivery: visible on the sync, which ends."""
        sync = self.load(sync_id)
        if sync is None or not sync.is_active:
            return
        self.app.give_up_sync(sync_id, reason, file_path)

    # -- discovery --------------------------------------------------------------------------

    def discover(self, sync_id: str, only_paths: list[str] | None = None) -> str:
        """``only_paths``: discover these raw files only (the spec's "process one file");
        default: the sync's ``only_paths`` option (how the bus driver is told)."""
        return self._guarded(
            sync_id, lambda s: self._discover(s, only_paths or s.options.get("only_paths")))

    def _discover(self, sync: SyncOperation, only_paths: list[str] | None) -> str:
        if sync.state != PENDING:
            return NOOP
        fabric = self.app.get_fabric(sync.fabric_id)
        rules = rules_for(self.config, fabric)
        with self.span(sync, "validation"):
            snapshot = self.fetch(sync, self.remote_for(fabric), fabric.branch)
            snapshot = prepare_directory(self.app, self.config, fabric, self.remote_for(fabric),
                                         snapshot, sync.options, rules)
            raw_dir = rules.raw_prefix.rstrip("/")
            if snapshot.head is not None and snapshot.get(raw_dir) is not None:
                raise SyncFailedError(
                    f"/{raw_dir} is a file, not a directory", details={"path": f"/{raw_dir}"}
                )
        with self.span(sync, "discovery") as span:
            entries = [
                e
                for e in snapshot.files(rules.raw_prefix)
                if raw_file_role(e, rules.supported_extensions) in ("pending", "symlink")
                and (only_paths is None or e.path in only_paths)
            ]
            self._remember(sync, fabric, snapshot)
            found = [(e.path, e.size, e.blob_id) for e in entries]
            span.set_attribute("fgd.total_files", len(found))
        # No file to ingest: this save also runs the whole (empty) file_ingestion stage.
        with self.span(sync, "file_ingestion") if not found else nullcontext():
            self._record_discovery(sync, snapshot, fabric, found)
        return DONE

    def _record_discovery(
        self,
        sync: SyncOperation,
        snapshot: Snapshot,
        fabric: Fabric,
        found: list[tuple[str, int, str]],
    ) -> None:

        def command(s: SyncOperation) -> None:
            if s.state != PENDING:
                return  # a duplicate got there first
            s.begin_stage("validation")
            s.complete_stage("validation", {"head": snapshot.head, "branch": fabric.branch})
            s.begin_stage("discovery")
            for path, size, blob_id in found:
                s.discover_file(path, size, blob_id)
            s.complete_stage("discovery", {"total_files": len(found)})
            s.begin_stage("file_ingestion")
            if not found:
                s.complete_stage("file_ingestion", ingestion_summary(s, {}, {}))

        self.app.update_sync(sync.sync_id, command)

    # -- ingestion --------------------------------------------------------------------------

    def ingest(self, sync_id: str, file_path: str, blob_id: str | None) -> str:
        return self._guarded(sync_id, lambda s: self._ingest(s, file_path, blob_id))

    def _context(
        self, sync: SyncOperation, fabric: Fabric, blob_id: str | None
    ) -> tuple[Snapshot, list[str], dict[str, str]]:
        seen = self._seen.get(sync.sync_id)
        if seen is not None and (blob_id is None or seen[0].has_object(blob_id)):
            return seen
        snapshot = self.fetch(sync, self.remote_for(fabric), fabric.branch)
        return self._remember(sync, fabric, snapshot)

    def _remember(
        self, sync: SyncOperation, fabric: Fabric, snapshot: Snapshot
    ) -> tuple[Snapshot, list[str], dict[str, str]]:
        rules = rules_for(self.config, fabric)
        existing = [e.path for e in snapshot.files(rules.raw_prefix)]
        seen = (snapshot, existing, failed_before(self.app, fabric))
        with self._lock:
            if len(self._seen) > SEEN_SYNCS:
                self._seen.clear()
                self._written.clear()
            self._seen[sync.sync_id] = seen
        return seen

    def _ingest(self, sync: SyncOperation, path: str, blob_id: str | None) -> str:
        with self._file_span(sync, path):
            planned = self._plan_file(sync, path, blob_id)
            if planned is None:
                return NOOP
            self._record_files(sync.sync_id, [planned])
        return DONE

    @contextmanager
    def _file_span(self, sync: SyncOperation, path: str) -> Iterator[Any]:
        """One ``sync.file_ingestion`` span per file, in the sync's trace."""
        with self.span(sync, "file_ingestion") as span:
            span.set_attribute("fgd.file_path", path)
            yield span

    def ingest_many(self, items: list[tuple[str, str, str | None]]) -> list[str]:
        """Several ``ingest`` calls (a worker's prefetched messages): files of one sync are
        planned one by one and recorded in ONE save (fewer saves, fewer lost races with the
        other ingestion workers). Outcomes in order; raises like ``ingest`` (the caller then
        handles the messages one by one)."""
        outcomes = [NOOP] * len(items)
        by_sync: dict[str, list[int]] = defaultdict(list)
        for i, (sync_id, _, _) in enumerate(items):
            by_sync[sync_id].append(i)
        for sync_id, indexes in by_sync.items():
            if len(indexes) == 1:
                i = indexes[0]
                outcomes[i] = self.ingest(*items[i])
                continue
            sync = self.load(sync_id)
            if sync is None or not sync.is_active:
                continue
            planned: list[tuple[int, _Planned]] = []
            try:
                with correlated(sync.correlation_id):
                    for i in indexes:
                        with self._file_span(sync, items[i][1]):
                            p = self._plan_file(sync, items[i][1], items[i][2])
                        if p is not None:
                            planned.append((i, p))
                    if planned:
                        self._record_files(sync_id, [p for _, p in planned])
            except DatabaseError:
                raise
            except (IllegalTransitionError, FGDError):
                # The one-by-one path knows how each of these ends (no-op or sync failed).
                for i in indexes:
                    outcomes[i] = self.ingest(*items[i])
                continue
            for i, _ in planned:
                outcomes[i] = DONE
        return outcomes

    def _plan_file(
        self, sync: SyncOperation, path: str, blob_id: str | None
    ) -> _Planned | None:
        record = sync.files.get(path)
        if sync.current_stage != "file_ingestion" or record is None:
            return None
        if record["status"] in FILE_DONE:
            return None
        blob_id = blob_id or record["blob_id"]
        started = time.perf_counter()
        fabric = self.app.get_fabric(sync.fabric_id)
        rules = rules_for(self.config, fabric)
        snapshot, existing, before = self._context(sync, fabric, blob_id)
        entry = snapshot.get(path)
        is_symlink = bool(entry and entry.blob_id == blob_id and entry.is_symlink)
        content = snapshot.read_blob(blob_id)
        plan = plan_sync(
            {path: RawFile(content, is_symlink=is_symlink)},
            self.view(snapshot, rules.managed_prefix),
            existing,
            before,
            sync.sync_id,
            rules,
        )
        result = plan.files[0]
        writes: list[dict[str, Any]] = []
        contents: dict[str, bytes] = {}
        if result.status == "processed":
            index = {p.managed_path: p.document_index for p in plan.provenance}
            contents = {git_blob_id(w.content): w.content for w in plan.writes}
            writes = [
                {
                    "path": w.path,
                    "blob_id": git_blob_id(w.content),
                    "action": w.action,
                    "kind": w.kind,
                    "name": w.name,
                    "document_index": index[w.path],
                }
                for w in plan.writes
            ]
        elapsed = round(time.perf_counter() - started, 6)
        return _Planned(path, result, elapsed, writes, before, contents)

    def _record_files(self, sync_id: str, planned: list[_Planned]) -> None:
        self._group_save.save(sync_id, planned, lambda group: self._record_now(sync_id, group))

    def _record_now(self, sync_id: str, planned: list[_Planned]) -> None:
        # The managed contents first (one insert for all the files), then the events that
        # name them: an event never points at a blob that is not stored.
        contents = {k: v for p in planned for k, v in p.contents.items()}
        if contents:
            self.blobs.put_many(contents)

        def command(s: SyncOperation) -> None:
            mine: dict[str, list[dict[str, Any]]] = {}
            for p in planned:
                rec = s.files.get(p.path)
                if s.current_stage != "file_ingestion" or rec is None or rec["status"] in FILE_DONE:
                    continue  # a duplicate got there first, or the sync moved on / ended
                record_file(s, p.result, p.elapsed, p.writes)
                mine[p.path] = p.writes
            if (mine and s.current_stage == "file_ingestion"
                    and all(f["status"] in FILE_DONE for f in s.files.values())):
                recorded = self.writes_of(s, mine)
                complete_ingestion(s, planned[0].before, recorded,
                                   lambda: earlier_failures(self.app, s.fabric_id))
            done.clear()
            done.update(mine)

        done: dict[str, list[dict[str, Any]]] = {}
        self.app.update_sync(sync_id, command)
        with self._lock:
            self._written.setdefault(sync_id, {}).update(done)

    def writes_of(
        self, sync: SyncOperation, extra: dict[str, list[dict[str, Any]]] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """File path → the ``writes`` of its ``file.processed``: from what this process
        recorded when that covers every processed file (the in-process driver records them
        all), else read back from the sync's events."""
        with self._lock:
            known = {**self._written.get(sync.sync_id, {}), **(extra or {})}
        if all(p in known for p, rec in sync.files.items() if rec["status"] == "processed"):
            return known
        return {**recorded_writes(self.app, sync.sync_id), **(extra or {})}

    # -- publish (github sync, reconciliation, completion) ----------------------------------

    def publish(self, sync_id: str) -> str:
        return self._guarded(sync_id, lambda s: step_publish.publish(self, s))

    def plan_from_records(self, sync: SyncOperation, base: Snapshot, rules: Any,
                          recorded: dict[str, list[dict[str, Any]]]) -> SyncPlan:
        return step_publish.plan_from_records(self, sync, base, rules, recorded)


class _Planned:
    """One file's ingestion result, computed and waiting to be recorded."""

    __slots__ = ("before", "contents", "elapsed", "path", "result", "writes")

    def __init__(self, path: str, result: FileResult, elapsed: float,
                 writes: list[dict[str, Any]], before: dict[str, str],
                 contents: dict[str, bytes]) -> None:
        self.path, self.result, self.elapsed = path, result, elapsed
        self.writes, self.before, self.contents = writes, before, contents


__all__ = ["DONE", "FAILED", "NOOP", "SyncSteps", "failed_before", "ingestion_summary",
           "recorded_writes"]
