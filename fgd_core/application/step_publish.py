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
from fgd_core.application.directory_observe import observe_directory
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
from fgd_core.domain.sync_operation import COMPLETED, SyncOperation
from fgd_core.errors import FGDError, FGDErrorCodes, SyncFailedError
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
    """Check what the push left on the branch, then complete the sync (see ``verify_push``):
    a branch that lost the sync's commit, or a pushed managed/ tree that is not the planned
    one, fails the sync (FGD_3004); a managed/ tree changed by someone else since the push
    completes it with a warning (FGD_3004)."""
    sync_id = sync.sync_id
    verified: dict[str, Any] = {"verified": False, "reason": "nothing pushed"}
    head: Snapshot | None = None
    if summary and summary.get("pushed") and summary.get("commit"):
        head = steps.fetch(sync, remote, fabric.branch)
        managed_dir = rules_for(steps.config, fabric).managed_prefix
        verified = verify_push(head, summary["commit"], summary.get("managed_tree"),
                               managed_dir)
    problem = verified.get("problem")

    def finish(s: SyncOperation) -> None:
        if not s.is_active or "reconciliation" in s.stages_completed:
            return
        if s.current_stage is None:
            s.begin_stage("reconciliation")
        if s.current_stage != "reconciliation":
            return
        if problem is not None and verified["verified"] is False:
            s.fail(FGDErrorCodes.SYNC_FAILED, f"reconciliation: {problem}",
                   {"stage": "reconciliation", **_details(verified)})
            return
        if problem is not None:
            s.warn(FGDErrorCodes.SYNC_FAILED, f"reconciliation: {problem}")
        s.complete_stage("reconciliation", verified)
        s.complete()

    ended = steps.app.update_sync(sync_id, finish)
    steps.forget(sync_id)
    if head is not None and ended.state == COMPLETED:
        observe_after_push(steps, fabric, head)
    return DONE


def observe_after_push(steps: SyncSteps, fabric: Fabric, head: Snapshot) -> None:
    """The fabric's ``gitops_initialized`` / ``gitops_directory_status`` follow what the
    push left on the branch (recorded only when they change). The sync has completed: a
    failure here is logged, never the sync's."""
    try:
        observe_directory(steps.app, steps.config, fabric.fabric_id, head)
    except FGDError as exc:
        log.warning("fabric %s: directory state not recorded after sync: %s",
                    fabric.fabric_id, exc)


def _details(verified: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in verified.items() if k not in ("problem", "verified")}


def verify_push(head: Snapshot, commit: str, planned_tree: str | None,
                managed_dir: str) -> dict[str, Any]:
    """What the branch (as fetched now, ``head``) holds of the sync's pushed ``commit``.

    ``verified`` is True when the branch head is the commit or descends from it and the
    commit's managed/ subtree is ``planned_tree`` (the one the commit was built with; None
    for a push recovered from an earlier delivery, which had no plan in hand). ``problem``
    says what is wrong: with ``verified`` False the sync's result is not on the branch; with
    ``verified`` True someone changed managed/ after the push (a warning)."""
    out: dict[str, Any] = {"verified": False, "head": head.head, "commit": commit}
    if not head.contains(commit):
        out["problem"] = (f"branch {head.branch} at {head.head} does not contain the sync's "
                          f"commit {commit} (rewritten or force-pushed since the push)")
        return out
    pushed = head.at(commit)
    ours = pushed.subtree_id(managed_dir) if pushed is not None else None
    out["managed_tree"] = ours
    if planned_tree is not None and ours != planned_tree:
        out["problem"] = (f"the pushed /{managed_dir.strip('/')} tree {ours} is not the "
                          f"planned one {planned_tree}")
        out["planned_tree"] = planned_tree
        return out
    out["verified"] = True
    if head.head != commit:
        at_head = head.subtree_id(managed_dir)
        out["managed_at_head"] = at_head
        if at_head != ours:
            out["problem"] = (f"/{managed_dir.strip('/')} was changed on {head.branch} after "
                              f"the sync pushed {commit} (head {head.head})")
    return out


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
        would = plan_from_records(steps, sync, base, rules, writes)
        if steps.keep_plans:
            steps.plans[sync_id] = would
        return {"skipped": "validate_only", "commit": None, "pushed": False,
                **managed_counts(would)}
    cancelled = False
    committed: list[SyncPlan] = []  # the plan of the last commit built

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
        committed[:] = [plan]
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
    out: dict[str, Any] = {"commit": done.commit, "pushed": done.pushed,
                           "files_changed": done.changed}
    if committed:
        out.update(managed_counts(committed[0]))
    if done.commit is not None:
        built = done.base.at(done.commit)
        # The managed/ tree the commit was built with: reconciliation compares the pushed one.
        out["managed_tree"] = built.subtree_id(rules.managed_prefix) if built else None
    return out


def managed_counts(plan: SyncPlan) -> dict[str, int]:
    """Managed files the plan's commit creates and updates."""
    summary = plan.summary()
    return {"files_created": summary["files_created"], "files_updated": summary["files_updated"]}


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


__all__ = ["github_sync", "plan_from_records", "publish", "reconcile", "reject_conflicts",
           "verify_push"]
