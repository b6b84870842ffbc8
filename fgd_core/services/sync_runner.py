"""Runs one whole sync in this process: validation → discovery → file_ingestion →
github_sync → reconciliation, each stage recorded as events on the SyncOperation.

What happens to the repository is decided by the pure planner (``gitops.plan``); this module
only fetches, records, commits and pushes. A sync makes at most one commit, built on the
base it fetched; if the remote moved before the push, the commit is rebuilt on the new base
(when the raw files it ingested are still the same) within the retry policy. Fetches and
pushes that fail transiently (connection failure FGD_4001, rate limited FGD_4003) are tried
again per ``sync.retry_policy`` (``services.retry``), each retry recorded as a non-fatal
``sync.error``. A sync that is cancelled, times out or fails before the push leaves the
repository exactly as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from fgd_core.application import FGDApplication
from fgd_core.config import FGDConfig
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.errors import (
    FGDError,
    FGDErrorCodes,
    IllegalTransitionError,
    InternalError,
    SyncCancelledError,
    SyncFailedError,
    SyncTimeoutError,
)
from fgd_core.gitops.directory import raw_file_role
from fgd_core.gitops.fabric_tree import managed_index
from fgd_core.gitops.git_repo import GitRemote, RemoteMovedError, Snapshot
from fgd_core.gitops.hedgehog.fabric_check import ManagedFabric
from fgd_core.gitops.manifest import metadata_changes
from fgd_core.gitops.plan import FileResult, IngestionRules, RawFile, SyncPlan, plan_sync
from fgd_core.observability import correlated, stage_span
from fgd_core.services.directory_guard import prepare_directory
from fgd_core.services.remotes import make_remote
from fgd_core.services.retry import call_with_retry, idempotent_push, retry_details

AUTHOR = "FGD Sync <fgd-sync@localhost>"


class SyncTakenError(SyncFailedError):
    """Another process began this sync first (it owns it from then on)."""

log = logging.getLogger("fgd_core.sync")
RemoteFactory = Callable[[Fabric], GitRemote]
T = TypeVar("T")


@dataclass
class SyncResult:
    sync: SyncOperation
    plan: SyncPlan | None = None
    commit: str | None = None  # the commit the sync made (None: nothing changed)
    pushed: bool = False
    head: str | None = None  # the branch head the sync started from
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.sync.state == "completed"


def rules_for(config: FGDConfig, fabric: Fabric) -> IngestionRules:
    return IngestionRules.from_config(config, fabric.gitops_directory)


class LazyBlobs(Mapping[str, bytes]):
    """Managed files of a snapshot, read only when the planner looks one up: a sync's
    cost follows what it writes, not how many resources the repository already holds."""

    def __init__(self, snapshot: Snapshot, prefix: str) -> None:
        self.snapshot, self.prefix = snapshot, prefix

    def __getitem__(self, path: str) -> bytes:
        if not path.startswith(self.prefix) or (entry := self.snapshot.get(path)) is None:
            raise KeyError(path)
        return self.snapshot.read(entry)

    def __iter__(self) -> Iterator[str]:
        return (e.path for e in self.snapshot.files(self.prefix))

    def __len__(self) -> int:
        return len(self.snapshot.files(self.prefix))


def fabric_of(snapshot: Snapshot, rules: IngestionRules,
              keep_in: Path | None = None) -> ManagedFabric:
    """The fabric of the snapshot's managed/ tree, for the fabric-wide checks (kept in the
    process and moved from tree to tree, and in ``keep_in`` between processes: see
    ``fabric_tree``)."""
    return lambda: managed_index(snapshot, rules.managed_prefix, keep_in)


def index_dir(cache_root: Path | None, fabric_id: int) -> Path | None:
    """Where a fabric's managed index is kept between processes (beside its git cache)."""
    return cache_root / f"fabric-{fabric_id}" if cache_root else None


def failed_before(app: FGDApplication, fabric: Fabric) -> dict[str, str]:
    """Files that failed on their own in the fabric's last sync (path → content id): the
    planner skips them while their content is unchanged. None for a ``force_refresh`` sync:
    it ingests every raw file again, those that failed before included."""
    if fabric.last_sync_id is None:
        return {}
    running = fabric.running_sync_id  # both engines call this while the fabric's sync runs
    if running is not None and app.get_sync(running).options.get("force_refresh"):
        return {}
    previous = app.get_sync(fabric.last_sync_id)
    summary = previous.stage_summaries.get("file_ingestion", {})
    return dict(summary.get("failed_files", {}))


class SyncRunner:
    def __init__(
        self,
        app: FGDApplication,
        config: FGDConfig,
        remote_factory: RemoteFactory | None = None,
        token: str | None = None,
        cache_root: Path | None = None,
        *,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.app, self.config, self.token, self.cache_root = app, config, token, cache_root
        self.remote_factory = remote_factory or (
            lambda fabric: make_remote(fabric, config, token, cache_root)
        )
        self.sleep = sleep  # how a retry waits (tests may pass a fake)
        self._correlation: dict[str, str] = {}  # sync id → correlation id, while it runs

    # -- entry points -----------------------------------------------------------------------

    def run(
        self,
        fabric_id: int,
        trigger: str = "manual",
        options: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        only_paths: list[str] | None = None,
    ) -> SyncResult:
        """Start a sync (FGD_3001 if one runs) and carry it to its end. A correlation id
        that already names a sync of the same request: that sync, as it is (not run again)."""
        started = self.app.request_sync(fabric_id, trigger, options, correlation_id)
        if started.duplicate:
            return SyncResult(sync=started.sync)
        return self.execute(started.sync.sync_id, only_paths=only_paths)

    def execute(self, sync_id: str, only_paths: list[str] | None = None) -> SyncResult:
        sync = self.app.get_sync(sync_id)
        self._correlation[sync_id] = sync.correlation_id
        result = SyncResult(sync=sync)
        deadline = time.monotonic() + self.config.sync.timeout_seconds
        try:
            fabric = self.app.get_fabric(sync.fabric_id)
            remote = self.remote_factory(fabric)
            rules = rules_for(self.config, fabric)
            snapshot = self._validation(sync_id, remote, fabric, rules, deadline)
            result.head = snapshot.head
            self._check(sync_id, deadline)
            raw = self._discovery(sync_id, snapshot, rules, only_paths)
            self._check(sync_id, deadline)
            result.plan = self._ingestion(sync_id, snapshot, raw, rules, fabric)
            self._check(sync_id, deadline)
            self._github_sync(sync_id, remote, fabric, rules, snapshot, raw, result, deadline)
            self._reconciliation(sync_id, remote, fabric, result, deadline)
            result.sync = self.app.complete_sync(sync_id)
        except (SyncCancelledError, SyncTakenError):
            # Cancelled by someone else, or a bus worker runs it: nothing more to do here.
            result.sync = self.app.get_sync(sync_id)
        except SyncTimeoutError:
            result.sync = self.app.time_out_sync(sync_id, self.config.sync.timeout_seconds)
        except FGDError as exc:
            result.sync = self._fail(sync_id, exc.code, exc.message, exc.details)
        except Exception as exc:  # a bug must end the sync, not leave it "processing"
            result.sync = self._fail(
                sync_id, InternalError.code, f"internal error: {type(exc).__name__}", {}
            )
            raise
        finally:
            self._correlation.pop(sync_id, None)
        return result

    def _fail(self, sync_id: str, code: str, message: str, details: dict) -> SyncOperation:
        sync = self.app.get_sync(sync_id)
        if not sync.is_active:
            return sync
        details = {**details, "stage": sync.current_stage}
        return self.app.fail_sync(sync_id, code, message, details)

    def _check(self, sync_id: str, deadline: float) -> None:
        """Between steps: stop if the sync was cancelled or ran out of time."""
        if not self.app.get_sync(sync_id).is_active:
            raise SyncCancelledError("sync is no longer active", details={"sync_id": sync_id})
        if time.monotonic() > deadline:
            raise SyncTimeoutError(
                f"sync exceeded {self.config.sync.timeout_seconds}s",
                details={"timeout_seconds": self.config.sync.timeout_seconds},
            )

    def _retrying(self, sync_id: str, deadline: float, fn: Callable[[], T]) -> T:
        """``fn`` (a fetch or a push) within the retry policy; each retry is recorded as a
        non-fatal ``sync.error``, and a sync cancelled meanwhile stops retrying."""

        def on_retry(error: FGDError, attempt: int, delay: float) -> None:
            self._check(sync_id, deadline)
            details = retry_details(error, attempt, delay)
            self.app.record_error(sync_id, error.code, error.message, details)

        return call_with_retry(
            fn, self.config.sync.retry_policy, sleep=self.sleep, on_retry=on_retry,
            deadline=deadline,
        )

    def _push(self, sync_id: str, deadline: float, remote: GitRemote, sha: str, branch: str,
              base_head: str | None) -> None:
        """Push within the retry policy."""
        self._retrying(sync_id, deadline, idempotent_push(remote, sha, branch, base_head))

    def _stage(self, sync_id: str, stage: str, work: Callable[[], dict[str, Any]]) -> Any:
        correlation_id = self._correlation.get(sync_id, sync_id)
        with correlated(correlation_id), stage_span(stage, sync_id, correlation_id):
            try:
                self.app.begin_stage(sync_id, stage)
            except IllegalTransitionError:
                if stage == "validation" and self.app.get_sync(sync_id).is_active:
                    # Whoever begins validation owns the sync: a worker was first.
                    raise SyncTakenError("a worker runs this sync", details={}) from None
                raise
            log.info("stage %s started", stage, extra={"sync_id": sync_id})
            summary = work()
            self.app.complete_stage(sync_id, stage, summary)
        return summary

    # -- stages -----------------------------------------------------------------------------

    def _validation(
        self,
        sync_id: str,
        remote: GitRemote,
        fabric: Fabric,
        rules: IngestionRules,
        deadline: float,
    ) -> Snapshot:
        fetched: list[Snapshot] = []

        def work() -> dict[str, Any]:
            snapshot = self._retrying(sync_id, deadline, lambda: remote.fetch(fabric.branch))
            snapshot = prepare_directory(self.app, self.config, fabric, remote, snapshot,
                                         self.app.get_sync(sync_id).options, rules)
            fetched.append(snapshot)
            raw_dir = rules.raw_prefix.rstrip("/")
            if snapshot.head is not None and snapshot.get(raw_dir) is not None:
                raise SyncFailedError(
                    f"/{raw_dir} is a file, not a directory", details={"path": f"/{raw_dir}"}
                )
            return {"head": snapshot.head, "branch": fabric.branch}

        self._stage(sync_id, "validation", work)
        return fetched[0]

    def _discovery(
        self,
        sync_id: str,
        snapshot: Snapshot,
        rules: IngestionRules,
        only_paths: list[str] | None,
    ) -> dict[str, RawFile]:
        raw: dict[str, RawFile] = {}

        def work() -> dict[str, Any]:
            entries = [
                e
                for e in snapshot.files(rules.raw_prefix)
                if raw_file_role(e, rules.supported_extensions) in ("pending", "symlink")
                and (only_paths is None or e.path in only_paths)
            ]
            self.app.discover_files(sync_id, [(e.path, e.size, e.blob_id) for e in entries])
            for e in entries:
                raw[e.path] = RawFile(snapshot.read(e), is_symlink=e.is_symlink)
            return {"total_files": len(entries)}

        self._stage(sync_id, "discovery", work)
        return raw

    def _plan(
        self,
        sync_id: str,
        snapshot: Snapshot,
        raw: dict[str, RawFile],
        rules: IngestionRules,
        failed_before: Mapping[str, str],
        fabric_id: int,
    ) -> SyncPlan:
        existing = [e.path for e in snapshot.files(rules.raw_prefix)]
        managed = LazyBlobs(snapshot, rules.managed_prefix)
        return plan_sync(raw, managed, existing, failed_before, sync_id, rules,
                         managed_fabric=fabric_of(snapshot, rules,
                                                  index_dir(self.cache_root, fabric_id)))

    def _ingestion(
        self,
        sync_id: str,
        snapshot: Snapshot,
        raw: dict[str, RawFile],
        rules: IngestionRules,
        fabric: Fabric,
    ) -> SyncPlan:
        plans: list[SyncPlan] = []

        def work() -> dict[str, Any]:
            started = time.perf_counter()
            before = failed_before(self.app, fabric)
            plan = self._plan(sync_id, snapshot, raw, rules, before, fabric.fabric_id)
            plans.append(plan)
            per_file = (time.perf_counter() - started) / max(1, len(plan.files))
            batch = self.config.ingestion.batch_size
            for i in range(0, len(plan.files), batch):
                self.app.update_sync(sync_id, _recorder(plan.files[i : i + batch], per_file))
            # A file skipped as "unchanged since it failed" stays failed for the next sync.
            still_failed = {
                f.path: f.content_id for f in plan.files if f.status == "skipped"
                and before.get(f.path) == f.content_id
            }
            return {**plan.summary(), "failed_files": {**still_failed, **plan.failures_to_record}}

        self._stage(sync_id, "file_ingestion", work)
        return plans[0]

    def _github_sync(
        self,
        sync_id: str,
        remote: GitRemote,
        fabric: Fabric,
        rules: IngestionRules,
        snapshot: Snapshot,
        raw: dict[str, RawFile],
        result: SyncResult,
        deadline: float,
    ) -> None:
        sync = self.app.get_sync(sync_id)
        options = sync.options

        def work() -> dict[str, Any]:
            if options["validate_only"]:
                return {"skipped": "validate_only", "commit": None, "pushed": False}
            plan, base = result.plan, snapshot
            assert plan is not None
            policy = self.config.sync.retry_policy
            for attempt in range(1, policy.max_attempts + 1):
                changes = commit_changes(plan, base, rules, fabric, sync_id)
                if not changes:
                    return {"commit": None, "pushed": False, "files_changed": 0}
                message = commit_message(sync_id, plan)
                sha = remote.commit(base, changes, message, AUTHOR)
                result.commit = sha
                if not options["include_github_sync"]:
                    return {"commit": sha, "pushed": False, "files_changed": len(changes)}
                self._check(sync_id, deadline)  # a cancel before the push changes nothing
                try:
                    self._push(sync_id, deadline, remote, sha, fabric.branch, base.head)
                except RemoteMovedError as moved:
                    if attempt == policy.max_attempts:
                        raise
                    self.app.record_error(sync_id, moved.code, moved.message, moved.details)
                    base = self._retrying(sync_id, deadline, lambda: remote.fetch(fabric.branch))
                    if _raw_changed(base, raw, rules):
                        raise SyncFailedError(
                            "raw files changed while syncing; the next sync will take them",
                            details={"branch": fabric.branch},
                        ) from None
                    plan = self._plan(sync_id, base, raw, rules, failed_before(self.app, fabric),
                                      fabric.fabric_id)
                    result.plan = plan
                    continue
                result.pushed = True
                return {"commit": sha, "pushed": True, "files_changed": len(changes)}
            raise SyncFailedError("push did not succeed", details={})  # pragma: no cover

        self._stage(sync_id, "github_sync", work)

    def _reconciliation(
        self,
        sync_id: str,
        remote: GitRemote,
        fabric: Fabric,
        result: SyncResult,
        deadline: float,
    ) -> None:
        def work() -> dict[str, Any]:
            if not result.pushed:
                return {"verified": False, "reason": "nothing pushed"}
            head = self._retrying(sync_id, deadline, lambda: remote.fetch(fabric.branch)).head
            if head != result.commit:
                # Someone pushed on top already; ours must be in the history, which git
                # guarantees for a fast-forward we made. Report what we saw.
                return {"verified": True, "head": head, "commit": result.commit}
            return {"verified": True, "head": head}

        self._stage(sync_id, "reconciliation", work)


def _recorder(files: tuple[FileResult, ...], processing_time: float) -> Callable[[Any], None]:
    def record(sync: SyncOperation) -> None:
        for f in files:
            record_file(sync, f, round(processing_time, 6))

    return record


def record_file(
    sync: SyncOperation,
    f: FileResult,
    processing_time: float,
    writes: list[dict[str, Any]] | None = None,
) -> None:
    """Record one planned file's outcome (and its warnings) on the sync. ``writes``: the
    managed files a distributed ingestion stored (the embedded runner passes none)."""
    if f.status == "processed":
        sync.process_file(
            f.path,
            documents_extracted=f.documents_extracted,
            target_files=list(f.target_files),
            processing_time=processing_time,
            archived_to=f.archived_to,
            writes=writes,
        )
    elif f.status == "failed":
        sync.fail_file(
            f.path,
            f.documents_found,
            [_problem(e.to_dict()) for e in f.errors],
            claimed=list(f.claimed),
        )
    else:
        sync.skip_file(f.path, "; ".join(f.warnings) or "skipped")
    for warning in f.warnings if f.status != "skipped" else ():
        sync.warn(FGDErrorCodes.VALIDATION_FAILED, warning, f.path)


def _problem(error: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in error.items() if v is not None}


def _raw_changed(snapshot: Snapshot, raw: dict[str, RawFile], rules: IngestionRules) -> bool:
    from fgd_core.gitops.plan import git_blob_id

    for path, item in raw.items():
        entry = snapshot.get(path)
        if entry is None or entry.blob_id != git_blob_id(item.content):
            return True
    return False


def commit_changes(
    plan: SyncPlan,
    base: Snapshot,
    rules: IngestionRules,
    fabric: Fabric,
    sync_id: str,
) -> dict[str, bytes | None]:
    """Everything one sync writes: managed files, archives (raw removed, archive added),
    and the .hnp metadata — nothing at all when the plan changes nothing."""
    changes: dict[str, bytes | None] = {w.path: w.content for w in plan.changed_writes}
    raw_content = {f.path: f for f in plan.files}
    for archive in plan.archives:
        entry = base.get(archive.raw_path)
        if entry is None or raw_content.get(archive.raw_path) is None:
            continue
        changes[archive.raw_path] = None
        changes[archive.archived_path] = base.read(entry)
    if changes or plan.archives:
        changes.update(
            metadata_changes(
                base, rules, fabric.fabric_id, fabric.name, plan, sync_id, datetime.now(UTC)
            )
        )
    return changes


def commit_message(sync_id: str, plan: SyncPlan) -> str:
    s = plan.summary()
    return (
        f"fgd sync {sync_id}\n\n"
        f"{s['files_processed']} raw file(s) ingested, {s['files_failed']} failed; "
        f"{s['files_created']} managed file(s) created, {s['files_updated']} updated; "
        f"{len(plan.archives)} archived.\n\nFGD-Sync-Id: {sync_id}\n"
    )
