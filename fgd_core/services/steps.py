"""One sync as three steps that independent workers call: discover, ingest one file, and
build/push the commit. The same stages and events as the embedded ``SyncRunner``.

Every step reads the SyncOperation first and does nothing when what it would record is
already recorded (or the sync ended): a redelivered or duplicated message is a no-op by
construction. Every step records its result in ONE ``update_sync`` save whose command
re-checks that state, so two workers racing on the same message cannot both record it (the
loser's save fails optimistic concurrency, re-runs on fresh state and finds it done).

* ``discover(sync_id)`` — on ``sync.started``: fetch, list raw files; in one save record
  validation, discovery (one ``file.discovered`` per file) and begin ``file_ingestion``.
* ``ingest(sync_id, path, blob_id)`` — on ``file.discovered``: plan that file alone, put the
  managed contents in the blob store, record ``file.processed`` (with ``writes``) /
  ``file.failed`` / ``file.skipped``; the file that finishes the set also completes
  ``file_ingestion`` in the same save.
* ``publish(sync_id)`` — on ``stage.completed`` of ``file_ingestion``: reject cross-file
  conflicts (``file.rejected``), build one commit on the fetched base, push it with
  compare-and-swap (rebuild on a moved remote), reconcile and complete. A commit whose
  message carries ``FGD-Sync-Id: <sync>`` already on the branch means a predecessor pushed
  and died before recording it: recorded, not committed again.

Fetches and pushes that fail transiently (FGD_4001, FGD_4003) are retried per
``sync.retry_policy`` within the sync's timeout, each retry a non-fatal ``sync.error``.
Each stage a step runs is an OpenTelemetry span (``sync.<stage>``; one
``sync.file_ingestion`` span per file) in the trace derived from the sync's correlation id,
so the spans of every worker process for one sync form one trace.
"""

from __future__ import annotations

import logging
import stat
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from uuid import UUID

from dulwich.object_store import tree_lookup_path
from dulwich.objects import Tree
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import PersistenceError

from fgd_core.application import FGDApplication
from fgd_core.config import FGDConfig
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.sync_operation import FILE_DONE, PENDING, SyncOperation
from fgd_core.errors import (
    DatabaseError,
    FGDError,
    FGDErrorCodes,
    IllegalTransitionError,
    InternalError,
    SyncFailedError,
)
from fgd_core.gitops.directory import raw_file_role
from fgd_core.gitops.git_repo import GitRemote, RemoteMovedError, Snapshot, _encode, _oid
from fgd_core.gitops.plan import (
    Archive,
    FileResult,
    IngestionRules,
    ManagedWrite,
    Provenance,
    RawFile,
    SyncPlan,
    _archive_name,
    git_blob_id,
    plan_sync,
)
from fgd_core.observability import correlated, stage_span
from fgd_core.services.blob_store import BlobStore
from fgd_core.services.directory_guard import prepare_directory
from fgd_core.services.fabric_publish import reject_fabric_breakers
from fgd_core.services.retry import call_with_retry, idempotent_push, retry_details
from fgd_core.services.sync_runner import (
    AUTHOR,
    LazyBlobs,
    commit_changes,
    commit_message,
    failed_before,
    index_dir,
    make_remote,
    record_file,
    rules_for,
)

log = logging.getLogger("fgd_core.steps")
RemoteFactory = Callable[[Fabric], GitRemote]
T = TypeVar("T")
NOOP, DONE, FAILED = "noop", "done", "failed"
# How far down the branch a redelivered GitHub step looks for its own earlier push.
PUSHED_LOOKBACK = 50


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
        # id(snapshot) → (snapshot, its directory cache): Snapshot.get re-reads every tree
        # from the root on each call, which 10,000 managed paths pay 10,000 times.
        self._trees: dict[int, tuple[Snapshot, _TreeCache]] = {}
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------

    def remote_for(self, fabric: Fabric) -> GitRemote:
        with self._lock:
            remote = self._remotes.get(fabric.fabric_id)
            if remote is None:
                remote = self._remotes[fabric.fabric_id] = self.remote_factory(fabric)
            return remote

    def _retrying(self, sync: SyncOperation, fn: Callable[[], T]) -> T:
        """``fn`` (a fetch or a push) within the retry policy and before the sync's timeout;
        each retry is recorded as a non-fatal ``sync.error`` (on a sync that ended meanwhile
        that raises IllegalTransitionError, which stops retrying: the step is a no-op)."""
        sync_id = sync.sync_id
        started = sync.started_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        deadline = time.monotonic() + self.config.sync.timeout_seconds - elapsed

        def on_retry(error: FGDError, attempt: int, delay: float) -> None:
            details = retry_details(error, attempt, delay)
            self.app.record_error(sync_id, error.code, error.message, details)

        return call_with_retry(
            fn, self.config.sync.retry_policy, sleep=self.sleep, on_retry=on_retry,
            deadline=deadline,
        )

    def _fetch(self, sync: SyncOperation, remote: GitRemote, branch: str) -> Snapshot:
        return self._retrying(sync, lambda: remote.fetch(branch))

    def _span(self, sync: SyncOperation, stage: str) -> AbstractContextManager[Any]:
        return stage_span(stage, sync.sync_id, sync.correlation_id or sync.sync_id)

    def _load(self, sync_id: str) -> SyncOperation | None:
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
        sync = self._load(sync_id)
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
        except FGDError as exc:
            self.fail(sync_id, exc.code, exc.message, exc.details)
            return FAILED

    def fail(self, sync_id: str, code: str, message: str, details: dict[str, Any]) -> None:
        """End the sync as failed (if it is still running), naming the stage."""

        def command(s: SyncOperation) -> None:
            if s.is_active:
                s.fail(code, message, {**details, "stage": s.current_stage})

        if self._load(sync_id) is not None:
            self.app.update_sync(sync_id, command)
        self._seen.pop(sync_id, None)

    def poisoned(self, sync_id: str, reason: str, file_path: str | None = None) -> None:
        """A message that failed on every delivery: visible on the sync, which ends."""
        sync = self._load(sync_id)
        if sync is None or not sync.is_active:
            return
        self.app.give_up_sync(sync_id, reason, file_path)

    # -- discovery --------------------------------------------------------------------------

    def discover(self, sync_id: str) -> str:
        return self._guarded(sync_id, self._discover)

    def _discover(self, sync: SyncOperation) -> str:
        if sync.state != PENDING:
            return NOOP
        fabric = self.app.get_fabric(sync.fabric_id)
        rules = rules_for(self.config, fabric)
        with self._span(sync, "validation"):
            snapshot = self._fetch(sync, self.remote_for(fabric), fabric.branch)
            snapshot = prepare_directory(self.app, self.config, fabric, self.remote_for(fabric),
                                         snapshot, sync.options, rules)
            raw_dir = rules.raw_prefix.rstrip("/")
            if snapshot.head is not None and snapshot.get(raw_dir) is not None:
                raise SyncFailedError(
                    f"/{raw_dir} is a file, not a directory", details={"path": f"/{raw_dir}"}
                )
        with self._span(sync, "discovery") as span:
            entries = [
                e
                for e in snapshot.files(rules.raw_prefix)
                if raw_file_role(e, rules.supported_extensions) in ("pending", "symlink")
            ]
            found = [(e.path, e.size, e.blob_id) for e in entries]
            span.set_attribute("fgd.total_files", len(found))
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
        if seen is not None and (blob_id is None or _has_blob(seen[0], blob_id)):
            return seen
        rules = rules_for(self.config, fabric)
        snapshot = self._fetch(sync, self.remote_for(fabric), fabric.branch)
        existing = [e.path for e in snapshot.files(rules.raw_prefix)]
        seen = (snapshot, existing, failed_before(self.app, fabric))
        if len(self._seen) > 16:
            self._seen.clear()
        self._seen[sync.sync_id] = seen
        return seen

    def _tree_cache(self, snapshot: Snapshot) -> _TreeCache:
        """One directory cache per fetched snapshot (kept while the snapshot is in use)."""
        with self._lock:
            hit = self._trees.get(id(snapshot))
            if hit is not None and hit[0] is snapshot:
                return hit[1]
            if len(self._trees) > 16:
                self._trees.clear()
            cache = _TreeCache(snapshot)
            self._trees[id(snapshot)] = (snapshot, cache)
            return cache

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
        with self._span(sync, "file_ingestion") as span:
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
            sync = self._load(sync_id)
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
            _CachedBlobs(snapshot, rules.managed_prefix, self._tree_cache(snapshot)),
            existing,
            before,
            sync.sync_id,
            rules,
        )
        result = plan.files[0]
        writes: list[dict[str, Any]] = []
        if result.status == "processed":
            index = {p.managed_path: p.document_index for p in plan.provenance}
            contents = {git_blob_id(w.content): w.content for w in plan.writes}
            if contents:
                self.blobs.put_many(contents)
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
        return _Planned(path, result, elapsed, writes, before)

    def _record_files(self, sync_id: str, planned: list[_Planned]) -> None:
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
                recorded = {**recorded_writes(self.app, s.sync_id), **mine}
                s.complete_stage("file_ingestion",
                                 ingestion_summary(s, planned[0].before, recorded))

        self.app.update_sync(sync_id, command)

    # -- github sync, reconciliation, completion -------------------------------------------

    def publish(self, sync_id: str) -> str:
        return self._guarded(sync_id, self._publish)

    def _publish(self, sync: SyncOperation) -> str:
        sync_id = sync.sync_id
        if "file_ingestion" not in sync.stages_completed:
            return NOOP
        fabric = self.app.get_fabric(sync.fabric_id)
        remote = self.remote_for(fabric)
        summary: dict[str, Any] | None = sync.stage_summaries.get("github_sync")
        if "github_sync" not in sync.stages_completed:
            with self._span(sync, "github_sync"):
                if sync.current_stage is None:
                    self.app.update_sync(sync_id, _begin("github_sync"))
                    sync = self.app.get_sync(sync_id)
                if sync.current_stage != "github_sync" or not sync.is_active:
                    return NOOP
                summary = self._github_sync(sync, fabric, remote)
                if summary is None:
                    return NOOP  # cancelled meanwhile
                sync = self.app.update_sync(sync_id, _complete("github_sync", summary))
        if not sync.is_active or "reconciliation" in sync.stages_completed:
            return NOOP
        with self._span(sync, "reconciliation"):
            return self._reconcile(sync, fabric, remote, summary)

    def _reconcile(
        self,
        sync: SyncOperation,
        fabric: Fabric,
        remote: GitRemote,
        summary: dict[str, Any] | None,
    ) -> str:
        sync_id = sync.sync_id
        verified: dict[str, Any] = {"verified": False, "reason": "nothing pushed"}
        if summary and summary.get("pushed"):
            head = self._fetch(sync, remote, fabric.branch).head
            verified = {"verified": True, "head": head}
            if head != summary.get("commit"):
                verified["commit"] = summary.get("commit")

        def finish(s: SyncOperation) -> None:
            if not s.is_active or "reconciliation" in s.stages_completed:
                return
            if s.current_stage is None:
                s.begin_stage("reconciliation")
            if s.current_stage == "reconciliation":
                s.complete_stage("reconciliation", verified)
                s.complete()

        self.app.update_sync(sync_id, finish)
        self._seen.pop(sync_id, None)
        return DONE

    def _github_sync(
        self, sync: SyncOperation, fabric: Fabric, remote: GitRemote
    ) -> dict[str, Any] | None:
        sync_id = sync.sync_id
        if sync.options["validate_only"]:
            return {"skipped": "validate_only", "commit": None, "pushed": False}
        writes = recorded_writes(self.app, sync_id)
        sync = self._reject_conflicts(sync, writes)
        rules = rules_for(self.config, fabric)
        base = self._fetch(sync, remote, fabric.branch)
        sync = reject_fabric_breakers(self.app, self.blobs, sync, writes, base, rules,
                                      index_dir(self.cache_root, fabric.fabric_id))
        policy = self.config.sync.retry_policy
        for attempt in range(1, policy.max_attempts + 1):
            if (pushed := _pushed_by(base, sync_id)) is not None:
                log.info("sync %s: already pushed as %s; recording it", sync_id, pushed)
                return {"commit": pushed, "pushed": True, "recovered": True}
            if _raw_changed(base, sync, self._tree_cache(base)):
                raise SyncFailedError(
                    "raw files changed while syncing; the next sync will take them",
                    details={"branch": fabric.branch},
                )
            plan = self.plan_from_records(sync, base, rules, writes)
            changes = commit_changes(plan, base, rules, fabric, sync_id)
            if not changes:
                return {"commit": None, "pushed": False, "files_changed": 0}
            sha = remote.commit(base, changes, commit_message(sync_id, plan), AUTHOR)
            if not sync.options["include_github_sync"]:
                return {"commit": sha, "pushed": False, "files_changed": len(changes)}
            if not self.app.get_sync(sync_id).is_active:
                return None  # a cancel before the push changes nothing
            try:
                self._push(sync, remote, sha, fabric.branch, base.head)
            except RemoteMovedError as moved:
                if attempt == policy.max_attempts:
                    raise
                self.app.record_error(sync_id, moved.code, moved.message, moved.details)
                base = self._fetch(sync, remote, fabric.branch)
                continue
            return {"commit": sha, "pushed": True, "files_changed": len(changes)}
        raise SyncFailedError("push did not succeed", details={})  # pragma: no cover

    def _push(self, sync: SyncOperation, remote: GitRemote, sha: str, branch: str,
              base_head: str | None) -> None:
        """Push within the retry policy."""
        self._retrying(sync, idempotent_push(remote, sha, branch, base_head))

    def _reject_conflicts(
        self, sync: SyncOperation, writes: dict[str, list[dict[str, Any]]]
    ) -> SyncOperation:
        """Two files defining one managed path: neither lands (the planner's rule too). A file
        that failed on its own still counts with the documents it claimed (as in the embedded
        planner); only processed files are rejected here — the failed one already is."""
        claims: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for path, rec in sorted(sync.files.items()):
            if rec["status"] == "processed":
                for w in writes.get(path, []):
                    claims[w["path"]].append((path, w))
            elif rec["status"] == "failed":
                for mpath in dict.fromkeys(rec.get("claimed", [])):
                    claims[mpath].append((path, {"document_index": None}))
        errors: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for mpath, owners in sorted(claims.items()):
            if len({p for p, _ in owners}) < 2:
                continue
            for path, w in owners:
                if sync.files[path]["status"] != "processed":
                    continue
                others = ", ".join(
                    f"document {o['document_index']} of {p}"
                    if o["document_index"] is not None
                    else p
                    for p, o in owners
                    if p != path
                )
                errors[path].append(
                    {
                        "index": w["document_index"],
                        "code": FGDErrorCodes.VALIDATION_FAILED,
                        "message": f"conflict: {w['kind']} {w['name']!r} ({mpath}) is also "
                        f"defined by {others}; nothing from this file is written",
                        "field": "metadata.name",
                    }
                )
        if not errors:
            return sync

        def command(s: SyncOperation) -> None:
            for path, errs in sorted(errors.items()):
                if s.current_stage == "github_sync" and s.files[path]["status"] == "processed":
                    s.reject_file(path, errs)

        return self.app.update_sync(sync.sync_id, command)

    def plan_from_records(
        self,
        sync: SyncOperation,
        base: Snapshot,
        rules: IngestionRules,
        recorded: dict[str, list[dict[str, Any]]],
    ) -> SyncPlan:
        """The SyncPlan the embedded planner would have made, from what ingestion recorded:
        actions against ``base`` (which may be newer than what ingestion saw), archive names
        by the planner's own rule, contents from the blob store."""
        trees = self._tree_cache(base)
        managed = _CachedBlobs(base, rules.managed_prefix, trees)
        taken = {e.path for e in base.files(rules.raw_prefix)} | set(sync.files)
        files: list[FileResult] = []
        pending: list[tuple[dict[str, Any], str, str]] = []  # write, action, raw path
        archives: list[Archive] = []
        for path in sorted(sync.files):
            rec = sync.files[path]
            content_id = rec.get("blob_id") or ""
            if rec["status"] != "processed":
                files.append(FileResult(path, rec["status"], content_id, rec["documents_found"]))
                continue
            for w in recorded.get(path, []):
                current = trees.blob_id(w["path"])
                action = (
                    "create" if current is None
                    else "unchanged" if current == w["blob_id"] else "update"
                )
                pending.append((w, action, path))
            archived = _archive_name(path, taken, managed)
            archives.append(Archive(path, archived))
            files.append(
                FileResult(
                    path, "processed", content_id, rec["documents_found"],
                    rec["documents_extracted"], target_files=tuple(rec["target_files"]),
                    archived_to=archived,
                )
            )
        needed = self.blobs.get_many(w["blob_id"] for w, a, _ in pending if a != "unchanged")
        writes = [
            ManagedWrite(w["path"], needed.get(w["blob_id"], b""), action, w["kind"], w["name"])  # type: ignore[arg-type]
            for w, action, _ in pending
        ]
        provenance = [
            Provenance(w["path"], raw, w["document_index"], sync.sync_id, w["kind"], w["name"],
                       sync.files[raw].get("blob_id") or "")
            for w, _, raw in pending
        ]
        return SyncPlan(
            sync_id=sync.sync_id,
            files=tuple(files),
            writes=tuple(sorted(writes, key=lambda w: w.path)),
            archives=tuple(archives),
            provenance=tuple(sorted(provenance, key=lambda p: p.managed_path)),
        )


# --- helpers -----------------------------------------------------------------------------------


class _Planned:
    """One file's ingestion result, computed and waiting to be recorded."""

    __slots__ = ("before", "elapsed", "path", "result", "writes")

    def __init__(self, path: str, result: FileResult, elapsed: float,
                 writes: list[dict[str, Any]], before: dict[str, str]) -> None:
        self.path, self.result, self.elapsed = path, result, elapsed
        self.writes, self.before = writes, before


def recorded_writes(app: FGDApplication, sync_id: str) -> dict[str, list[dict[str, Any]]]:
    """File path → the ``writes`` its ``file.processed`` event carries (distributed only)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in app.repository.event_store.get(UUID(sync_id)):
        if isinstance(event, SyncOperation.FileProcessedWithWrites):  # type: ignore[attr-defined]
            out[event.file_path] = list(event.writes)
    return out


def ingestion_summary(
    sync: SyncOperation, before: dict[str, str], writes: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The embedded runner's ``file_ingestion`` summary, from the recorded files."""
    records = sync.files
    count = {s: sum(f["status"] == s for f in records.values()) for s in FILE_DONE}
    actions = [w["action"] for p, ws in writes.items() for w in ws
               if p in records and records[p]["status"] == "processed"]
    failed: dict[str, str] = {}
    for path, rec in records.items():
        blob = rec.get("blob_id") or ""
        if rec["status"] == "failed" and any(
            e.get("code") != InternalError.code for e in rec["validation_errors"]
        ):
            failed[path] = blob
        elif rec["status"] == "skipped" and before.get(path) == blob:
            failed[path] = blob  # unchanged since it failed: stays failed for the next sync
    return {
        "files_processed": count["processed"],
        "files_failed": count["failed"],
        "files_skipped": count["skipped"],
        "files_created": actions.count("create"),
        "files_updated": actions.count("update"),
        "files_unchanged": actions.count("unchanged"),
        "errors": sum(len(f["validation_errors"]) for f in records.values()),
        "warnings": len(sync.warnings),
        "failed_files": failed,
    }


def _begin(stage: str) -> Callable[[SyncOperation], None]:
    def command(s: SyncOperation) -> None:
        if s.is_active and s.current_stage is None and stage in s.stages_pending:
            s.begin_stage(stage)

    return command


def _complete(stage: str, summary: dict[str, Any]) -> Callable[[SyncOperation], None]:
    def command(s: SyncOperation) -> None:
        if s.is_active and s.current_stage == stage:
            s.complete_stage(stage, summary)

    return command


def _has_blob(snapshot: Snapshot, blob_id: str) -> bool:
    store: Any = snapshot._store  # dulwich's stores take hex ids as bytes
    try:
        return blob_id.encode() in store
    except Exception:  # noqa: BLE001 — a store that cannot answer: fetch again
        return False


def _raw_changed(base: Snapshot, sync: SyncOperation, trees: _TreeCache | None = None) -> bool:
    """Did any file this sync archives change (or vanish) on the branch since discovery?"""
    trees = trees or _TreeCache(base)
    for path, rec in sync.files.items():
        if rec["status"] != "processed":
            continue
        current = trees.blob_id(path)
        if current is None or current != rec.get("blob_id"):
            return True
    return False


class _TreeCache:
    """``Snapshot.get(path).blob_id`` with each directory's tree read and parsed once.

    Same answers as ``Snapshot.get``: None for a missing path or a directory, the object id
    otherwise (submodules included). Anything unusual on the way (a file where a directory
    is expected) is left to ``Snapshot.get`` itself."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._dirs: dict[str, Tree | None] = {}
        self._lock = threading.Lock()

    def _tree(self, directory: str) -> Tree | None | Literal[False]:
        """The directory's tree; None if it does not exist; False: ask Snapshot.get."""
        with self._lock:
            if directory in self._dirs:
                return self._dirs[directory]
        snap = self.snapshot
        store = snap._store
        tree_id = _oid(snap.tree_id)  # type: ignore[arg-type]
        try:
            if directory:
                mode, tree_id = tree_lookup_path(store.__getitem__, tree_id, _encode(directory))
                if not stat.S_ISDIR(mode):
                    return False
            tree = store[tree_id]
        except KeyError:
            tree = None
        except Exception:  # noqa: BLE001 — not a plain miss: Snapshot.get decides
            return False
        if tree is not None and not isinstance(tree, Tree):
            return False
        with self._lock:
            self._dirs[directory] = tree
        return tree

    def blob_id(self, path: str) -> str | None:
        snap = self.snapshot
        if snap.tree_id is None:
            return None
        clean = path.strip("/")
        directory, _, name = clean.rpartition("/")
        tree = self._tree(directory) if name else False
        if tree is False:
            entry = snap.get(path)
            return None if entry is None else entry.blob_id
        if tree is None:
            return None
        try:
            mode, sha = tree[_encode(name)]
        except KeyError:
            return None
        if stat.S_ISDIR(mode):
            return None
        return sha.decode()


class _CachedBlobs(LazyBlobs):
    """``LazyBlobs`` whose lookups go through a snapshot's ``_TreeCache``."""

    def __init__(self, snapshot: Snapshot, prefix: str, trees: _TreeCache) -> None:
        super().__init__(snapshot, prefix)
        self.trees = trees

    def __getitem__(self, path: str) -> bytes:
        if not path.startswith(self.prefix) or (blob_id := self.trees.blob_id(path)) is None:
            raise KeyError(path)
        return self.snapshot.read_blob(blob_id)


def _pushed_by(snapshot: Snapshot, sync_id: str) -> str | None:
    """The commit on the branch (first parents, recent first) that this sync pushed."""
    marker = f"FGD-Sync-Id: {sync_id}".encode()
    sha = snapshot.head
    store: Any = snapshot._store
    for _ in range(PUSHED_LOOKBACK):
        if sha is None:
            return None
        commit = store[sha.encode()]
        if marker in commit.message:
            return sha
        sha = commit.parents[0].decode() if commit.parents else None
    return None


__all__ = ["DONE", "FAILED", "NOOP", "SyncSteps", "failed_before", "ingestion_summary"]
