"""The SyncOperation aggregate: one sync of one fabric, from ``sync.started`` to its end.

Every command checks its guard before it triggers an event, so an illegal transition raises
``IllegalTransitionError`` and nothing is recorded. The spec's FGDSyncStateTransition and
FGDFileRecord rows are views derived from these events (see ``transitions`` and ``files``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from fgd_core.domain.base import FGDAggregate
from fgd_core.domain.correlation import sync_uuid
from fgd_core.domain.sync_options import normalize_options
from fgd_core.domain.sync_states import (
    ACTIVE_STATES,
    CANCELLED,
    COMPLETED,
    FAILED,
    FILE_DONE,
    FINAL_STATES,
    PENDING,
    PROCESSING,
    STAGES,
    TIMED_OUT,
    TRIGGERS,
    SyncViews,
)
from fgd_core.errors import IllegalTransitionError, ValidationError


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


class SyncOperation(SyncViews, FGDAggregate):
    @staticmethod
    def create_id(correlation_id: str, **_: Any) -> UUID:
        # Derived, not random: a second sync.started with the same correlation id is the
        # same aggregate's version 1, so the event store itself refuses it (no read needed).
        return sync_uuid(correlation_id)

    @event("Started")
    def __init__(
        self,
        fabric_id: int,
        correlation_id: str,
        trigger: str,
        options: dict[str, Any],
    ) -> None:
        self.fabric_id = fabric_id
        self.correlation_id = correlation_id
        self.trigger = trigger
        self.options = options
        self.state = PENDING
        self.current_stage: str | None = None
        self.stages_completed: list[str] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.errors: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.files_created = 0
        self.completed_at: datetime | None = None
        self.current_file: str | None = None
        self.transitions: list[dict[str, Any]] = []
        self.stage_summaries: dict[str, dict[str, Any]] = {}
        self._transition_to(PENDING, {"trigger": trigger})

    @classmethod
    def start(
        cls,
        fabric_id: int,
        trigger: str = "manual",
        options: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> SyncOperation:
        if trigger not in TRIGGERS:
            raise ValidationError(
                f"unknown trigger {trigger!r}", details={"allowed": list(TRIGGERS)}
            )
        return cls(
            fabric_id=fabric_id,
            correlation_id=correlation_id or str(uuid4()),
            trigger=trigger,
            options=normalize_options(options),
        )

    # -- guards -----------------------------------------------------------------------------

    def _require_state(self, *states: str, action: str) -> None:
        if self.state not in states:
            raise IllegalTransitionError(
                f"cannot {action}: sync {self.sync_id} is {self.state}",
                details={"sync_id": self.sync_id, "state": self.state, "action": action},
            )

    def _require_stage(self, stage: str, action: str) -> None:
        self._require_state(PROCESSING, action=action)
        if self.current_stage != stage:
            raise IllegalTransitionError(
                f"cannot {action}: current stage is {self.current_stage!r}, not {stage!r}",
                details={"sync_id": self.sync_id, "current_stage": self.current_stage},
            )

    def _require_file(self, path: str, action: str) -> dict[str, Any]:
        self._require_stage("file_ingestion", action)
        record = self.files.get(path)
        if record is None:
            raise IllegalTransitionError(
                f"cannot {action}: {path} was not discovered", details={"file_path": path}
            )
        if record["status"] in FILE_DONE:
            raise IllegalTransitionError(
                f"cannot {action}: {path} is already {record['status']}",
                details={"file_path": path, "status": record["status"]},
            )
        return record

    def _transition_to(self, to_state: str, context: dict[str, Any]) -> None:
        from_state = self.transitions[-1]["to_state"] if self.transitions else ""
        self.transitions.append(
            {"from_state": from_state, "to_state": to_state, "context": context}
        )
        self.state = to_state

    # -- stages -----------------------------------------------------------------------------

    def begin_stage(self, stage: str) -> None:
        self._require_state(*ACTIVE_STATES, action=f"begin stage {stage}")
        if stage not in STAGES:
            raise ValidationError(f"unknown stage {stage!r}", details={"allowed": list(STAGES)})
        if self.current_stage is not None or stage not in self.stages_pending:
            raise IllegalTransitionError(
                f"cannot begin stage {stage}: current {self.current_stage!r}, "
                f"completed {self.stages_completed}",
                details={"sync_id": self.sync_id, "stage": stage},
            )
        self._stage_started(stage=stage)

    @event("StageStarted")
    def _stage_started(self, stage: str) -> None:
        if self.state == PENDING:
            self._transition_to(PROCESSING, {"stage": stage})
        self.current_stage = stage

    def complete_stage(self, stage: str, summary: dict[str, Any] | None = None) -> None:
        self._require_stage(stage, f"complete stage {stage}")
        self._stage_completed(stage=stage, summary=dict(summary or {}))

    @event("StageCompleted")
    def _stage_completed(self, stage: str, summary: dict[str, Any]) -> None:
        self.stages_completed.append(stage)
        self.stage_summaries[stage] = summary
        self.current_stage = None

    # -- files ------------------------------------------------------------------------------

    def discover_file(self, file_path: str, size: int, blob_id: str | None = None) -> None:
        self._require_stage("discovery", "discover a file")
        if file_path in self.files:
            raise IllegalTransitionError(
                f"{file_path} was already discovered", details={"file_path": file_path}
            )
        self._file_discovered(file_path=file_path, size=size, blob_id=blob_id)

    @event("FileDiscovered")
    def _file_discovered(self, file_path: str, size: int, blob_id: str | None) -> None:
        self.files[file_path] = {
            "file_path": file_path,
            "file_type": file_path.rsplit(".", 1)[-1] if "." in file_path else "",
            "status": "discovered",
            "size": size,
            "blob_id": blob_id,
            "documents_found": 0,
            "documents_extracted": 0,
            "target_files": [],
            "error_message": "",
            "validation_errors": [],
            "discovered_at": _iso(self.event_time),
            "processed_at": None,
        }

    def process_file(
        self,
        file_path: str,
        documents_extracted: int,
        target_files: list[str],
        processing_time: float,
        archived_to: str | None = None,
        writes: list[dict[str, Any]] | None = None,
    ) -> None:
        """``writes`` (distributed ingestion only): the managed files this file yields, as
        ``{path, blob_id, action, kind, name, document_index}`` — what the GitHub-sync step
        commits. Without it the event is the plain ``file.processed`` of the embedded runner."""
        self._require_file(file_path, "process a file")
        result: dict[str, Any] = {
            "file_path": file_path,
            "status": "success",
            "documents_extracted": documents_extracted,
            "target_files": list(target_files),
            "processing_time": processing_time,
            "archived_to": archived_to,
        }
        if writes is None:
            self._file_processed(**result)
        else:
            self._file_processed_with_writes(**result, writes=[dict(w) for w in writes])

    @event("FileProcessedWithWrites")
    def _file_processed_with_writes(
        self,
        file_path: str,
        status: str,
        documents_extracted: int,
        target_files: list[str],
        processing_time: float,
        archived_to: str | None,
        writes: list[dict[str, Any]],
    ) -> None:
        # ``writes`` stays in the event (read back by the GitHub-sync step), not in the
        # aggregate: a 10,000-resource sync would otherwise be copied on every load.
        self._apply_processed(file_path, documents_extracted, target_files, archived_to)

    @event("FileProcessed")
    def _file_processed(
        self,
        file_path: str,
        status: str,
        documents_extracted: int,
        target_files: list[str],
        processing_time: float,
        archived_to: str | None,
    ) -> None:
        self._apply_processed(file_path, documents_extracted, target_files, archived_to)

    def _apply_processed(
        self,
        file_path: str,
        documents_extracted: int,
        target_files: list[str],
        archived_to: str | None,
    ) -> None:
        record = self.files[file_path]
        record.update(
            status="processed",
            documents_found=documents_extracted,
            documents_extracted=documents_extracted,
            target_files=target_files,
            archived_to=archived_to,
            processed_at=_iso(self.event_time),
        )
        self.files_created += len(target_files)
        self.current_file = file_path

    def fail_file(
        self,
        file_path: str,
        documents_found: int,
        errors: list[dict[str, Any]],
        claimed: list[str] | None = None,
    ) -> None:
        """``claimed``: managed paths the file's valid documents define — they still count
        in the cross-file conflict check although the file failed."""
        self._require_file(file_path, "fail a file")
        if not errors:
            raise ValidationError("a failed file needs at least one error")
        self._file_failed(
            file_path=file_path,
            documents_found=documents_found,
            errors=errors,
            claimed=list(claimed or []),
        )

    @event("FileFailed")
    def _file_failed(
        self,
        file_path: str,
        documents_found: int,
        errors: list[dict[str, Any]],
        claimed: list[str],
    ) -> None:
        record = self.files[file_path]
        record["claimed"] = claimed
        record.update(
            status="failed",
            documents_found=documents_found,
            error_message=errors[0]["message"],
            validation_errors=errors,
            processed_at=_iso(self.event_time),
        )
        self.errors.extend({**e, "file": file_path} for e in errors)
        self.current_file = file_path

    def skip_file(self, file_path: str, reason: str) -> None:
        self._require_file(file_path, "skip a file")
        self._file_skipped(file_path=file_path, reason=reason)

    @event("FileSkipped")
    def _file_skipped(self, file_path: str, reason: str) -> None:
        self.files[file_path].update(
            status="skipped", error_message=reason, processed_at=_iso(self.event_time)
        )
        self.current_file = file_path

    def reject_file(self, file_path: str, errors: list[dict[str, Any]]) -> None:
        """A processed file that must not land after all (another file of this sync writes
        the same managed path): only while the sync's one commit is being built."""
        self._require_stage("github_sync", "reject a file")
        record = self.files.get(file_path)
        if record is None or record["status"] != "processed":
            raise IllegalTransitionError(
                f"cannot reject {file_path}: only a processed file can be rejected",
                details={"file_path": file_path,
                         "status": None if record is None else record["status"]},
            )
        if not errors:
            raise ValidationError("a rejected file needs at least one error")
        self._file_rejected(file_path=file_path, errors=errors)

    @event("FileRejected")
    def _file_rejected(self, file_path: str, errors: list[dict[str, Any]]) -> None:
        record = self.files[file_path]
        self.files_created -= len(record["target_files"])
        record.update(
            status="failed",
            documents_extracted=0,
            target_files=[],
            archived_to=None,
            error_message=errors[0]["message"],
            validation_errors=errors,
        )
        self.errors.extend({**e, "file": file_path} for e in errors)

    # -- problems and progress ------------------------------------------------------------

    def warn(self, code: str, message: str, file: str | None = None) -> None:
        self._require_state(*ACTIVE_STATES, action="record a warning")
        self._warned(code=code, message=message, file=file)

    @event("Warned")
    def _warned(self, code: str, message: str, file: str | None) -> None:
        warning = {"code": code, "message": message}
        if file is not None:
            warning["file"] = file
        self.warnings.append(warning)

    def record_error(
        self, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        """A non-fatal error (e.g. a retried GitHub call); ``fail`` ends the sync."""
        self._require_state(*ACTIVE_STATES, action="record an error")
        self._errored(code=code, message=message, details=dict(details or {}))

    @event("Errored")
    def _errored(self, code: str, message: str, details: dict[str, Any]) -> None:
        self.errors.append({"code": code, "message": message, "details": details})

    def report_progress(self, current_file: str | None = None) -> None:
        """A heartbeat from a worker: proves the sync is alive, names the file in hand."""
        self._require_state(PROCESSING, action="report progress")
        self._progressed(current_file=current_file)

    @event("Progressed")
    def _progressed(self, current_file: str | None) -> None:
        self.current_file = current_file

    # -- endings ----------------------------------------------------------------------------

    def complete(self) -> None:
        self._require_state(PROCESSING, action="complete")
        if self.current_stage is not None:
            raise IllegalTransitionError(
                f"cannot complete: stage {self.current_stage} is still running",
                details={"sync_id": self.sync_id, "current_stage": self.current_stage},
            )
        unfinished = [p for p, f in self.files.items() if f["status"] not in FILE_DONE]
        if unfinished:
            raise IllegalTransitionError(
                f"cannot complete: {len(unfinished)} file(s) not processed",
                details={"sync_id": self.sync_id, "files": unfinished[:20]},
            )
        self.trigger_event(self.Completed, **self._summary(COMPLETED))

    class Ended(FGDAggregate.Event):
        """The spec's sync.completed payload; every ending carries the same numbers."""

        sync_id: str
        duration_seconds: float
        files_processed: int
        files_created: int  # managed files the sync's commit creates (see _summary)
        files_updated: int  # ... and updates (absent from events recorded before it was)
        errors: int
        warnings: int
        final_state: str

        def apply(self, aggregate: Any) -> None:
            aggregate.files_created = self.files_created
            aggregate._finish(self.final_state, self.context())

        def context(self) -> dict[str, Any]:
            return {"final_state": self.final_state}

    class Completed(Ended):
        pass

    class Failed(Ended):
        error: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.errors.append(self.error)
            aggregate.files_created = self.files_created
            aggregate._finish(self.final_state, {"error": self.error})

    class Cancelled(Ended):
        reason: str

        def context(self) -> dict[str, Any]:
            return {"reason": self.reason}

    class TimedOut(Ended):
        timeout_seconds: float

        def apply(self, aggregate: Any) -> None:
            aggregate.errors.append(
                {
                    "code": "FGD_3002",
                    "message": f"sync exceeded its timeout of {self.timeout_seconds}s",
                    "details": {"timeout_seconds": self.timeout_seconds},
                }
            )
            aggregate._finish(self.final_state, self.context())

        def context(self) -> dict[str, Any]:
            return {"timeout_seconds": self.timeout_seconds}

    def fail(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        self._require_state(*ACTIVE_STATES, action="fail")
        error = {"code": code, "message": message, "details": dict(details or {})}
        self.trigger_event(self.Failed, error=error, **self._summary(FAILED))

    def cancel(self, reason: str = "cancelled by request") -> None:
        self._require_state(*ACTIVE_STATES, action="cancel")
        self.trigger_event(self.Cancelled, reason=reason, **self._summary(CANCELLED))

    def time_out(self, timeout_seconds: float) -> None:
        self._require_state(*ACTIVE_STATES, action="time out")
        self.trigger_event(
            self.TimedOut, timeout_seconds=timeout_seconds, **self._summary(TIMED_OUT)
        )

    def _summary(self, final_state: str) -> dict[str, Any]:
        # Computed when the command runs, so the event carries its own numbers. Created vs
        # updated: what the sync's one commit does (the github_sync summary, from the plan
        # it committed); before that stage, the managed files the processed files target.
        now = datetime.now(UTC)
        published = self.stage_summaries.get("github_sync", {})
        return {
            "sync_id": self.sync_id,
            "duration_seconds": round((now - self.started_at).total_seconds(), 3),
            "files_processed": self.files_processed,
            "files_created": int(published.get("files_created", self.files_created)),
            "files_updated": int(published.get("files_updated", 0)),
            "errors": len(self.errors) + (1 if final_state in (FAILED, TIMED_OUT) else 0),
            "warnings": len(self.warnings),
            "final_state": final_state,
        }

    def _finish(self, final_state: str, context: dict[str, Any]) -> None:
        self.current_stage = None
        self.completed_at = self.event_time
        self._transition_to(final_state, context)


# The lifecycle constants live in sync_states; importing them from here keeps working.
__all__ = ["ACTIVE_STATES", "CANCELLED", "COMPLETED", "FAILED", "FILE_DONE", "FINAL_STATES",
           "PENDING", "PROCESSING", "STAGES", "TIMED_OUT", "TRIGGERS", "SyncOperation"]
