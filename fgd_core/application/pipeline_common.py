"""What every step of the sync pipeline shares (``steps``, ``step_publish``), and the one
commit-and-push loop that publish and the directory operations (``gitops_ops``) both use.

A sync has one implementation — the steps — and two drivers: the bus workers
(``fgd_workers``) and the in-process driver (``pipeline_local``). Nothing here knows which
driver runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from fgd_core.adapters.fabric_tree import managed_index
from fgd_core.adapters.git_repo import GitRemote, RemoteMovedError, Snapshot, SnapshotBlobs
from fgd_core.application.app import FGDApplication
from fgd_core.application.manifest import metadata_changes
from fgd_core.config import FGDConfig
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.sync_operation import FILE_DONE, SyncOperation
from fgd_core.errors import FGDErrorCodes, InternalError, SyncFailedError
from fgd_core.ingestion.hedgehog.fabric_check import ManagedFabric
from fgd_core.ingestion.plan import FileResult, IngestionRules, SyncPlan

AUTHOR = "FGD Sync <fgd-sync@localhost>"
RemoteFactory = Callable[[Fabric], GitRemote]
# What a step did: nothing (already recorded, or the sync ended), its work, or it failed the sync.
NOOP, DONE, FAILED = "noop", "done", "failed"
# How far down the branch a redelivered publish step looks for its own earlier push.
PUSHED_LOOKBACK = 50


def rules_for(config: FGDConfig, fabric: Fabric) -> IngestionRules:
    return IngestionRules.from_config(config, fabric.gitops_directory)


class LazyBlobs(SnapshotBlobs):
    """Managed files of a snapshot, read only when the planner looks one up: a sync's
    cost follows what it writes, not how many resources the repository already holds.
    Each directory's tree is parsed once per view."""

    def __init__(self, snapshot: Snapshot, prefix: str) -> None:
        super().__init__(snapshot, prefix.strip("/"))


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
    running = fabric.running_sync_id  # both drivers call this while the fabric's sync runs
    if running is not None and app.get_sync(running).options.get("force_refresh"):
        return {}
    previous = app.get_sync(fabric.last_sync_id)
    summary = previous.stage_summaries.get("file_ingestion", {})
    return dict(summary.get("failed_files", {}))


def record_file(
    sync: SyncOperation,
    f: FileResult,
    processing_time: float,
    writes: list[dict[str, Any]] | None = None,
) -> None:
    """Record one planned file's outcome (and its warnings) on the sync. ``writes``: the
    managed files the ingestion step stored in the blob store (read back by publish)."""
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
            [without_nones(e.to_dict()) for e in f.errors],
            claimed=list(f.claimed),
        )
    else:
        sync.skip_file(f.path, "; ".join(f.warnings) or "skipped")
    for warning in f.warnings if f.status != "skipped" else ():
        sync.warn(FGDErrorCodes.VALIDATION_FAILED, warning, f.path)


def without_nones(error: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in error.items() if v is not None}


def recorded_writes(app: FGDApplication, sync_id: str) -> dict[str, list[dict[str, Any]]]:
    """File path → the ``writes`` its ``file.processed`` event carries."""
    out: dict[str, list[dict[str, Any]]] = {}
    for event in app.repository.event_store.get(UUID(sync_id)):
        if isinstance(event, SyncOperation.FileProcessedWithWrites):  # type: ignore[attr-defined]
            out[event.file_path] = list(event.writes)
    return out


def earlier_failures(app: FGDApplication, fabric_id: int) -> dict[str, dict[str, Any]]:
    """The first error of each file the fabric's last sync left failing (path → error): what
    a file skipped as unchanged since it failed is reported with again."""
    fabric = app.get_fabric(fabric_id)
    if fabric.last_sync_id is None:
        return {}
    previous = app.get_sync(fabric.last_sync_id)
    summary = previous.stage_summaries.get("file_ingestion", {})
    out = dict(summary.get("failed_errors", {}))
    for path in summary.get("failed_files", {}):
        rec = previous.files.get(path)
        if path not in out and rec is not None and rec.get("validation_errors"):
            out[path] = first_error(rec["validation_errors"])
    return out


def first_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    keep = ("code", "message", "line", "field", "index")
    return {k: errors[0][k] for k in keep if errors[0].get(k) is not None}


def still_failing(sync: SyncOperation, before: Mapping[str, str]) -> list[str]:
    """Files of this sync skipped because unchanged since they failed (sorted)."""
    return sorted(p for p, rec in sync.files.items()
                  if rec["status"] == "skipped" and before.get(p) == (rec.get("blob_id") or ""))


def complete_ingestion(
    sync: SyncOperation,
    before: Mapping[str, str],
    writes: dict[str, list[dict[str, Any]]],
    earlier: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    """Complete ``file_ingestion``: first a warning naming each file still failing (skipped
    as unchanged since it failed) with its earlier error — so ``sync.completed`` counts
    them — then the stage summary. ``earlier``: ``earlier_failures`` of the fabric, asked
    only when some file is still failing."""
    carried: dict[str, dict[str, Any]] = {}
    failing = still_failing(sync, before)
    if failing:
        known = earlier()
        for path in failing:
            error = known.get(path, {})
            carried[path] = error
            said = f"{error['code']}: {error['message']}" if error else "see its earlier sync"
            sync.warn(FGDErrorCodes.VALIDATION_FAILED,
                      f"still failing: unchanged since it failed ({said}); edit it to retry",
                      path)
    sync.complete_stage("file_ingestion", ingestion_summary(sync, before, writes, carried))


def ingestion_summary(
    sync: SyncOperation, before: Mapping[str, str], writes: dict[str, list[dict[str, Any]]],
    carried: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``file_ingestion`` stage summary, from the recorded files. ``failed_files``: the
    files the next sync skips while unchanged (see ``failed_before``); ``failed_errors``:
    the first error of each (``carried``: those of files still failing from before)."""
    records = sync.files
    count = {s: sum(f["status"] == s for f in records.values()) for s in FILE_DONE}
    actions = [w["action"] for p, ws in writes.items() for w in ws
               if p in records and records[p]["status"] == "processed"]
    failed: dict[str, str] = {}
    errors: dict[str, dict[str, Any]] = {}
    for path, rec in records.items():
        blob = rec.get("blob_id") or ""
        if rec["status"] == "failed" and any(
            e.get("code") != InternalError.code for e in rec["validation_errors"]
        ):
            failed[path] = blob
            errors[path] = first_error(rec["validation_errors"])
        elif rec["status"] == "skipped" and before.get(path) == blob:
            failed[path] = blob  # unchanged since it failed: stays failed for the next sync
            if carried and carried.get(path):
                errors[path] = dict(carried[path])
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
        "failed_errors": errors,
    }


def raw_changed(tree: SnapshotBlobs, sync: SyncOperation) -> bool:
    """Did any file this sync archives change (or vanish) on the branch since discovery?
    ``tree``: a view of the whole tree of the branch as it is now."""
    for path, rec in sync.files.items():
        if rec["status"] != "processed":
            continue
        current = tree.blob_id(path)
        if current is None or current != rec.get("blob_id"):
            return True
    return False


def pushed_by(snapshot: Snapshot, sync_id: str) -> str | None:
    """The commit on the branch (first parents, recent first) that this sync pushed."""
    marker = f"FGD-Sync-Id: {sync_id}".encode()
    for sha, message in snapshot.first_parent_log(PUSHED_LOOKBACK):
        if marker in message:
            return sha
    return None


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


# -- the one commit-and-push loop -----------------------------------------------------------

# ``build(base)``: the changes to commit on ``base`` and the commit message (no changes:
# nothing is committed). It may raise to stop (say, the raw files changed meanwhile).
Build = Callable[[Snapshot], tuple[Mapping[str, bytes | None], str]]


@dataclass
class Published:
    commit: str | None  # None: nothing to commit
    pushed: bool
    base: Snapshot  # what the commit was built on
    changed: int = 0  # paths the commit changes


def commit_and_push(
    remote: GitRemote,
    branch: str,
    base: Snapshot,
    build: Build,
    *,
    attempts: int,
    push: Callable[[str, str, str | None], None] | None = None,
    fetch: Callable[[], Snapshot] | None = None,
    on_moved: Callable[[RemoteMovedError], None] | None = None,
    may_push: Callable[[], bool] = lambda: True,
) -> Published:
    """Build one commit on ``base`` and push it with compare-and-swap; when the remote
    moved meanwhile, fetch again and rebuild on the new base (``attempts`` builds at most).

    ``push`` / ``fetch``: how (defaults: ``remote.push`` / ``remote.fetch(branch)``; a sync
    passes its retrying ones). ``on_moved``: told of each moved remote before the rebuild.
    ``may_push``: asked after the commit is built; False leaves it unpushed."""
    do_push = push or remote.push
    do_fetch = fetch or (lambda: remote.fetch(branch))
    for attempt in range(1, attempts + 1):
        changes, message = build(base)
        if not changes:
            return Published(None, False, base)
        sha = remote.commit(base, dict(changes), message, AUTHOR)
        if not may_push():
            return Published(sha, False, base, len(changes))
        try:
            do_push(sha, branch, base.head)
        except RemoteMovedError as moved:
            if attempt == attempts:
                raise
            if on_moved is not None:
                on_moved(moved)
            base = do_fetch()
            continue
        return Published(sha, True, base, len(changes))
    raise SyncFailedError("push did not succeed", details={})  # pragma: no cover


__all__ = [
    "AUTHOR", "DONE", "FAILED", "NOOP", "Build", "LazyBlobs", "Published", "RemoteFactory",
    "commit_and_push", "commit_changes", "commit_message", "complete_ingestion",
    "earlier_failures", "fabric_of", "failed_before", "first_error", "still_failing",
    "index_dir", "ingestion_summary", "pushed_by", "raw_changed", "record_file",
    "recorded_writes", "rules_for", "without_nones",
]
