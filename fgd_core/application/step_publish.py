"""The publish step of a sync (``SyncSteps.publish``; on ``stage.completed`` of
``file_ingestion`` in bus mode, right after ingestion in the in-process driver).

Reject cross-file conflicts (``file.rejected``) and files that would break the fabric
(``fabric_publish``), build ONE commit on the fetched base, push it with compare-and-swap
(rebuild on a moved remote, ``pipeline_common.commit_and_push``), reconcile and complete.
A commit whose message carries ``FGD-Sync-Id: <sync>`` already on the branch means a
predecessor pushed and died before recording it: recorded, not committed again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fgd_core.adapters.git_repo import GitRemote, RemoteMovedError, Snapshot
from fgd_core.application.fabric_publish import reject_fabric_breakers
from fgd_core.application.pipeline_common import (
    DONE,
    NOOP,
    commit_and_push,
    commit_changes,
    commit_message,
    index_dir,
    pushed_by,
    raw_changed,
    rules_for,
)
from fgd_core.application.retry import idempotent_push
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.errors import FGDErrorCodes, SyncFailedError
from fgd_core.ingestion.plan import (
    Archive,
    FileResult,
    IngestionRules,
    ManagedWrite,
    Provenance,
    SyncPlan,
    archive_name,
)

if TYPE_CHECKING:
    from fgd_core.application.steps import SyncSteps

log = logging.getLogger("fgd_core.steps")


class AlreadyPushed(Exception):
    """The branch already holds this sync's commit (a predecessor pushed it)."""

    def __init__(self, sha: str) -> None:
        super().__init__(sha)
        self.sha = sha


def publish(steps: SyncSteps, sync: SyncOperation) -> str:
    sync_id = sync.sync_id
    if "file_ingestion" not in sync.stages_completed:
        return NOOP
    app = steps.app
    fabric = app.get_fabric(sync.fabric_id)
    remote = steps.remote_for(fabric)
    summary: dict[str, Any] | None = sync.stage_summaries.get("github_sync")
    if "github_sync" not in sync.stages_completed:
        with steps.span(sync, "github_sync"):
            if sync.current_stage is None:
                app.update_sync(sync_id, begin("github_sync"))
                sync = app.get_sync(sync_id)
            if sync.current_stage != "github_sync" or not sync.is_active:
                return NOOP
            summary = github_sync(steps, sync, fabric, remote)
            if summary is None:
                return NOOP  # cancelled meanwhile
            sync = app.update_sync(sync_id, complete("github_sync", summary))
    if not sync.is_active or "reconciliation" in sync.stages_completed:
        return NOOP
    with steps.span(sync, "reconciliation"):
        return reconcile(steps, sync, fabric, remote, summary)


def reconcile(
    steps: SyncSteps,
    sync: SyncOperation,
    fabric: Fabric,
    remote: GitRemote,
    summary: dict[str, Any] | None,
) -> str:
    sync_id = sync.sync_id
    verified: dict[str, Any] = {"verified": False, "reason": "nothing pushed"}
    if summary and summary.get("pushed"):
        head = steps.fetch(sync, remote, fabric.branch).head
        verified = {"verified": True, "head": head}
        if head != summary.get("commit"):
            # Someone pushed on top already; ours is in the history (a fast-forward).
            verified["commit"] = summary.get("commit")

    def finish(s: SyncOperation) -> None:
        if not s.is_active or "reconciliation" in s.stages_completed:
            return
        if s.current_stage is None:
            s.begin_stage("reconciliation")
        if s.current_stage == "reconciliation":
            s.complete_stage("reconciliation", verified)
            s.complete()

    steps.app.update_sync(sync_id, finish)
    steps.forget(sync_id)
    return DONE


def github_sync(
    steps: SyncSteps, sync: SyncOperation, fabric: Fabric, remote: GitRemote
) -> dict[str, Any] | None:
    """The ``github_sync`` stage's summary; None: the sync was cancelled before the push."""
    app, sync_id = steps.app, sync.sync_id
    writes = steps.writes_of(sync)
    sync = reject_conflicts(steps, sync, writes)
    rules = rules_for(steps.config, fabric)
    base = steps.snapshot_of(sync) or steps.fetch(sync, remote, fabric.branch)
    sync = reject_fabric_breakers(app, steps.blobs, sync, writes, base, rules,
                                  index_dir(steps.cache_root, fabric.fabric_id))
    if sync.options["validate_only"]:
        if steps.keep_plans:
            steps.plans[sync_id] = plan_from_records(steps, sync, base, rules, writes)
        return {"skipped": "validate_only", "commit": None, "pushed": False}
    cancelled = False

    def build(base: Snapshot) -> tuple[Mapping[str, bytes | None], str]:
        if (pushed := pushed_by(base, sync_id)) is not None:
            raise AlreadyPushed(pushed)
        if raw_changed(steps.view(base), sync):
            raise SyncFailedError(
                "raw files changed while syncing; the next sync will take them",
                details={"branch": fabric.branch},
            )
        plan = plan_from_records(steps, sync, base, rules, writes)
        if steps.keep_plans:
            steps.plans[sync_id] = plan
        return commit_changes(plan, base, rules, fabric, sync_id), commit_message(sync_id, plan)

    def may_push() -> bool:
        nonlocal cancelled
        if not sync.options["include_github_sync"]:
            return False
        cancelled = not app.get_sync(sync_id).is_active  # a cancel before the push: no change
        steps.check_deadline(sync)  # nor does a timeout
        return not cancelled

    def on_moved(moved: RemoteMovedError) -> None:
        app.record_error(sync_id, moved.code, moved.message, moved.details)

    def push(sha: str, branch: str, base_head: str | None) -> None:
        steps.retrying(sync, idempotent_push(remote, sha, branch, base_head))

    try:
        done = commit_and_push(
            remote, fabric.branch, base, build,
            attempts=steps.config.sync.retry_policy.max_attempts, push=push,
            fetch=lambda: steps.fetch(sync, remote, fabric.branch), on_moved=on_moved,
            may_push=may_push,
        )
    except AlreadyPushed as recovered:
        log.info("sync %s: already pushed as %s; recording it", sync_id, recovered.sha)
        return {"commit": recovered.sha, "pushed": True, "recovered": True}
    if cancelled:
        return None
    return {"commit": done.commit, "pushed": done.pushed, "files_changed": done.changed}


def reject_conflicts(
    steps: SyncSteps, sync: SyncOperation, writes: dict[str, list[dict[str, Any]]]
) -> SyncOperation:
    """Two files defining one managed path: neither lands (the planner's rule too). A file
    that failed on its own still counts with the documents it claimed; only processed files
    are rejected here — the failed one already is."""
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
                f"document {o['document_index']} of {p}" if o["document_index"] is not None
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

    return steps.app.update_sync(sync.sync_id, command)


def plan_from_records(
    steps: SyncSteps,
    sync: SyncOperation,
    base: Snapshot,
    rules: IngestionRules,
    recorded: dict[str, list[dict[str, Any]]],
) -> SyncPlan:
    """The SyncPlan of the whole sync, from what ingestion recorded: actions against
    ``base`` (which may be newer than what ingestion saw), archive names by the planner's
    own rule, contents from the blob store."""
    tree = steps.view(base)
    managed = steps.view(base, rules.managed_prefix)
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
            current = tree.blob_id(w["path"])
            action = (
                "create" if current is None
                else "unchanged" if current == w["blob_id"] else "update"
            )
            pending.append((w, action, path))
        archived = archive_name(path, taken, managed)
        archives.append(Archive(path, archived))
        files.append(
            FileResult(
                path, "processed", content_id, rec["documents_found"],
                rec["documents_extracted"], target_files=tuple(rec["target_files"]),
                archived_to=archived,
            )
        )
    needed = steps.blobs.get_many(w["blob_id"] for w, a, _ in pending if a != "unchanged")
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


def begin(stage: str) -> Callable[[SyncOperation], None]:
    def command(s: SyncOperation) -> None:
        if s.is_active and s.current_stage is None and stage in s.stages_pending:
            s.begin_stage(stage)

    return command


def complete(stage: str, summary: dict[str, Any]) -> Callable[[SyncOperation], None]:
    def command(s: SyncOperation) -> None:
        if s.is_active and s.current_stage == stage:
            s.complete_stage(stage, summary)

    return command


__all__ = ["github_sync", "plan_from_records", "publish", "reconcile", "reject_conflicts"]
