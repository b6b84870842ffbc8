"""The spec's JSON shapes, derived from aggregates: sync status, history items, fabric
(Extended Fabric Model), and the FGDSyncStateTransition / FGDFileRecord views. Paths are
the spec's (``/gitops/raw/x.yaml``, ``fgd_core.application.api_paths``)."""

from __future__ import annotations

from typing import Any

from fgd_core.application.api_paths import problem_paths, with_spec_paths
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.events.envelope import iso
from fgd_core.events.redaction import shown_repository


def sync_status(sync: SyncOperation) -> dict[str, Any]:
    return {
        "sync_id": sync.sync_id,
        "fabric_id": sync.fabric_id,
        "state": sync.state,
        "trigger": sync.trigger,
        "options": dict(sync.options),
        "correlation_id": sync.correlation_id,
        "progress": {
            "current_stage": sync.current_stage or "",
            "stages_completed": list(sync.stages_completed),
            "stages_pending": sync.stages_pending,
            "files_processed": sync.files_processed,
            "total_files": sync.total_files,
            "percent_complete": sync.percent_complete,
        },
        "started_at": iso(sync.started_at),
        "updated_at": iso(sync.modified_on),
        "completed_at": iso(sync.completed_at) if sync.completed_at else None,
        "errors": [problem_paths(e) for e in sync.errors],
        "warnings": [problem_paths(w) for w in sync.warnings],
    }


def history_item(sync: SyncOperation) -> dict[str, Any]:
    duration = sync.duration_seconds
    return {
        "sync_id": sync.sync_id,
        "trigger": sync.trigger,
        "state": sync.state,
        "started_at": iso(sync.started_at),
        "completed_at": iso(sync.completed_at) if sync.completed_at else None,
        "duration_seconds": round(duration) if duration is not None else None,
        "files_processed": sync.files_processed,
        "errors": len(sync.errors),
        "warnings": len(sync.warnings),
    }


def state_transitions(sync: SyncOperation) -> list[dict[str, Any]]:
    return [dict(t) for t in sync.transitions]


# Kept on a file record for the distributed conflict check, not part of the spec's shape.
_INTERNAL_FILE_KEYS = frozenset({"claimed"})


def file_records(sync: SyncOperation) -> list[dict[str, Any]]:
    return [
        with_spec_paths({k: v for k, v in record.items() if k not in _INTERNAL_FILE_KEYS})
        for record in sync.files.values()
    ]


def fabric_view(fabric: Fabric) -> dict[str, Any]:
    return {
        "id": fabric.fabric_id,
        "name": fabric.name,
        "repository": shown_repository(fabric.repository),
        "branch": fabric.branch,
        "gitops_directory": fabric.gitops_directory,
        "gitops_initialized": fabric.gitops_initialized,
        "gitops_directory_status": fabric.gitops_directory_status,
        "raw_directory_path": fabric.raw_directory_path,
        "managed_directory_path": fabric.managed_directory_path,
        "last_sync_id": fabric.last_sync_id,
        "last_sync_at": iso(fabric.last_sync_at) if fabric.last_sync_at else None,
        "last_sync_status": fabric.last_sync_status,
        "running_sync_id": fabric.running_sync_id,
        "total_sync_count": fabric.total_sync_count,
        "successful_sync_count": fabric.successful_sync_count,
        "failed_sync_count": fabric.failed_sync_count,
        "sync_enabled": fabric.sync_enabled,
        "auto_sync_on_change": fabric.auto_sync_on_change,
        "sync_interval_minutes": fabric.sync_interval_minutes,
    }
