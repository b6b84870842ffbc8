"""How each persisted event changes the read-model rows: the same rules the aggregates apply
(``fgd_core/domain``), written against rows so the read model needs no aggregate.

A ``Batch`` holds the rows one transaction touches; ``apply`` is called per event in log
order, ``flush`` writes the changed rows. Every row remembers the last notification applied
to it, so an event applied twice (it never is: tracking is in the same transaction) would
still change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from fgd_api.projections.dialects import as_uuid
from fgd_api.projections.tables import AUDIT, FABRIC, FILE, SYNC, TRANSITION, Table
from fgd_core.domain.directory_state import initialized_by
from fgd_core.domain.sync_operation import FILE_DONE, STAGES

Row = dict[str, Any]


class RowStore(Protocol):
    def load(self, table: Table, key: tuple[Any, ...]) -> Row | None: ...
    def save(self, table: Table, row: Row) -> None: ...
    def remove(self, table: Table, key: tuple[Any, ...]) -> None: ...


class Batch:
    def __init__(self, store: RowStore) -> None:
        self.store = store
        self.rows: dict[tuple[str, tuple[Any, ...]], Row | None] = {}
        self.dirty: dict[tuple[str, tuple[Any, ...]], tuple[Table, Row]] = {}
        self.removed: dict[tuple[str, tuple[Any, ...]], tuple[Table, tuple[Any, ...]]] = {}
        # The timestamp of the event being applied: the domain stamps discovered_at,
        # processed_at, completed_at and last_sync_at with it (``event_time``).
        self.stamp = ""

    def get(self, table: Table, *key: Any) -> Row | None:
        k = (table.name, key)
        if k not in self.rows:
            self.rows[k] = self.store.load(table, key)
        return self.rows[k]

    def put(self, table: Table, row: Row) -> None:
        k = (table.name, tuple(row[c] for c in table.key))
        self.rows[k] = row
        self.dirty[k] = (table, row)
        self.removed.pop(k, None)

    def remove(self, table: Table, *key: Any) -> None:
        k = (table.name, key)
        self.rows[k] = None
        self.dirty.pop(k, None)
        self.removed[k] = (table, key)

    def apply(self, position: int, envelope: dict[str, Any]) -> None:
        handler = HANDLERS.get(envelope["event_type"])
        if handler is not None:
            handler(self, position, envelope)

    def flush(self) -> None:
        for table, row in self.dirty.values():
            self.store.save(table, row)
        for table, key in self.removed.values():
            self.store.remove(table, key)
        self.dirty.clear()
        self.removed.clear()


Handler = Callable[[Batch, int, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for event_type in event_types:
            HANDLERS[event_type] = fn
        return fn

    return register


# -- syncs ------------------------------------------------------------------------------------


@handles("sync.started")
def sync_started(batch: Batch, position: int, env: dict[str, Any]) -> None:
    p = env["payload"]
    if batch.get(SYNC, p["sync_id"]) is not None:
        return
    batch.put(
        SYNC,
        {
            "sync_id": p["sync_id"],
            "fabric_id": env["fabric_id"],
            "trigger": p["trigger"],
            "state": "pending",
            "started_at": env["timestamp"],
            "completed_at": None,
            "current_stage": "",
            "stages_data": {
                "stages_completed": [],
                "stages_pending": list(STAGES),
                "summaries": {},
            },
            "files_processed": 0,
            "total_files": 0,
            "files_created": 0,
            "errors": [],
            "warnings": [],
            "correlation_id": env.get("correlation_id", ""),
            "options": p.get("options", {}),
            "updated_at": env["timestamp"],
            "current_file": None,
            "started_position": position,
            "last_position": position,
        },
    )
    _transition(batch, position, env, p["sync_id"], "", "pending", {"trigger": p["trigger"]})


def _sync(batch: Batch, position: int, env: dict[str, Any]) -> Row | None:
    """The sync row this event changes, marked as changed; None if already applied."""
    row = batch.get(SYNC, env["payload"]["sync_id"])
    if row is None or row["last_position"] >= position:
        return None
    batch.stamp = env["timestamp"]
    row = {**row, "last_position": position, "updated_at": env["timestamp"]}
    batch.put(SYNC, row)
    return row


def _transition(
    batch: Batch,
    position: int,
    env: dict[str, Any],
    sync_id: str,
    from_state: str,
    to_state: str,
    context: dict[str, Any],
) -> None:
    batch.put(
        TRANSITION,
        {
            "sync_id": sync_id,
            "position": position,
            "from_state": from_state,
            "to_state": to_state,
            "timestamp": env["timestamp"],
            "context": context,
        },
    )


def _set_stages(row: Row, completed: list[str], current: str, summaries: dict[str, Any]) -> None:
    pending = [s for s in STAGES if s not in completed and s != current]
    row["current_stage"] = current
    row["stages_data"] = {
        "stages_completed": completed,
        "stages_pending": pending,
        "summaries": summaries,
    }


@handles("stage.started")
def stage_started(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _sync(batch, position, env)
    if row is None:
        return
    stage = env["payload"]["stage"]
    if row["state"] == "pending":
        row["state"] = "processing"
        _transition(batch, position, env, row["sync_id"], "pending", "processing", {"stage": stage})
    data = row["stages_data"]
    _set_stages(row, list(data["stages_completed"]), stage, dict(data["summaries"]))


@handles("stage.completed")
def stage_completed(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _sync(batch, position, env)
    if row is None:
        return
    p, data = env["payload"], row["stages_data"]
    summaries = {**data["summaries"], p["stage"]: p.get("summary", {})}
    _set_stages(row, [*data["stages_completed"], p["stage"]], "", summaries)


def _file(batch: Batch, row: Row, path: str, position: int) -> Row | None:
    record = batch.get(FILE, row["sync_id"], path)
    if record is None or record["last_position"] >= position:
        return None
    record = {**record, "last_position": position}
    batch.put(FILE, record)
    return record


@handles("file.discovered")
def file_discovered(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _sync(batch, position, env)
    if row is None:
        return
    path = env["payload"]["file_path"]
    if batch.get(FILE, row["sync_id"], path) is not None:
        return
    row["total_files"] += 1
    batch.put(
        FILE,
        {
            "sync_id": row["sync_id"],
            "file_path": path,
            "file_type": path.rsplit(".", 1)[-1] if "." in path else "",
            "status": "discovered",
            "size": env["payload"].get("size"),
            "blob_id": env["payload"].get("blob_id"),
            "documents_found": 0,
            "documents_extracted": 0,
            "target_files": [],
            "archived_to": None,
            "error_message": "",
            "validation_errors": [],
            "discovered_at": batch.stamp,
            "processed_at": None,
            "discovered_position": position,
            "last_position": position,
        },
    )


def _finish_file(batch: Batch, position: int, env: dict[str, Any], **changes: Any) -> Row | None:
    row = _sync(batch, position, env)
    if row is None:
        return None
    record = _file(batch, row, env["payload"]["file_path"], position)
    if record is None:
        return None
    if record["status"] not in FILE_DONE:
        row["files_processed"] += 1
    record.update(changes, processed_at=batch.stamp)
    row["current_file"] = record["file_path"]
    return row


@handles("file.processed")
def file_processed(batch: Batch, position: int, env: dict[str, Any]) -> None:
    p = env["payload"]
    row = _finish_file(
        batch,
        position,
        env,
        status="processed",
        documents_found=p["documents_extracted"],
        documents_extracted=p["documents_extracted"],
        target_files=list(p["target_files"]),
        archived_to=p.get("archived_to"),
    )
    if row is not None:
        row["files_created"] += len(p["target_files"])


@handles("file.failed")
def file_failed(batch: Batch, position: int, env: dict[str, Any]) -> None:
    p = env["payload"]
    row = _finish_file(
        batch,
        position,
        env,
        status="failed",
        documents_found=p["documents_found"],
        error_message=p["errors"][0]["message"],
        validation_errors=list(p["errors"]),
    )
    if row is not None:
        row["errors"] = [*row["errors"], *({**e, "file": p["file_path"]} for e in p["errors"])]


@handles("file.skipped")
def file_skipped(batch: Batch, position: int, env: dict[str, Any]) -> None:
    _finish_file(batch, position, env, status="skipped", error_message=env["payload"]["reason"])


@handles("sync.warning")
def warned(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _sync(batch, position, env)
    if row is not None:
        p = env["payload"]
        warning = {"code": p["code"], "message": p["message"]}
        if p.get("file") is not None:
            warning["file"] = p["file"]
        row["warnings"] = [*row["warnings"], warning]


@handles("sync.error")
def errored(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _sync(batch, position, env)
    if row is not None:
        p = env["payload"]
        error = {"code": p["code"], "message": p["message"], "details": p.get("details", {})}
        row["errors"] = [*row["errors"], error]


@handles("sync.progress")
def progressed(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _sync(batch, position, env)
    if row is not None:
        row["current_file"] = env["payload"].get("current_file")


@handles("sync.completed", "sync.failed", "sync.cancelled", "sync.timeout")
def ended(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _sync(batch, position, env)
    if row is None:
        return
    p = env["payload"]
    final = p["final_state"]
    row["files_created"] = p["files_created"]  # what the commit created (the domain's count)
    context: dict[str, Any] = {"final_state": final}
    if env["event_type"] == "sync.failed":
        row["errors"] = [*row["errors"], p["error"]]
        context = {"error": p["error"]}
    elif env["event_type"] == "sync.cancelled":
        context = {"reason": p["reason"]}
    elif env["event_type"] == "sync.timeout":
        seconds = p["timeout_seconds"]
        row["errors"] = [
            *row["errors"],
            {
                "code": "FGD_3002",
                "message": f"sync exceeded its timeout of {seconds}s",
                "details": {"timeout_seconds": seconds},
            },
        ]
        context = {"timeout_seconds": seconds}
    _transition(batch, position, env, row["sync_id"], row["state"], final, context)
    data = row["stages_data"]
    _set_stages(row, list(data["stages_completed"]), "", dict(data["summaries"]))
    row.update(state=final, completed_at=batch.stamp)


# -- fabrics ----------------------------------------------------------------------------------


def _paths(directory: str) -> dict[str, str]:
    return {
        "raw_directory_path": f"/{directory}/raw",
        "managed_directory_path": f"/{directory}/managed",
    }


@handles("fabric.registered")
def fabric_registered(batch: Batch, position: int, env: dict[str, Any]) -> None:
    if batch.get(FABRIC, env["fabric_id"]) is not None:
        return
    p = env["payload"]
    batch.put(
        FABRIC,
        {
            "id": env["fabric_id"],
            "name": p["name"],
            "repository": p["repository"],
            "branch": p["branch"],
            "gitops_directory": p["gitops_directory"],
            "gitops_initialized": False,
            "gitops_directory_status": "not_initialized",
            **_paths(p["gitops_directory"]),
            "last_sync_id": None,
            "last_sync_at": None,
            "last_sync_status": "",
            "running_sync_id": None,
            "total_sync_count": 0,
            "successful_sync_count": 0,
            "failed_sync_count": 0,
            "sync_enabled": p["sync_enabled"],
            "auto_sync_on_change": p["auto_sync_on_change"],
            "sync_interval_minutes": p["sync_interval_minutes"],
            "correlation_id": env.get("correlation_id", ""),
            "created_at": env["timestamp"],
            "updated_at": env["timestamp"],
            "last_position": position,
        },
    )


def _fabric(batch: Batch, position: int, env: dict[str, Any]) -> Row | None:
    row = batch.get(FABRIC, env["fabric_id"])
    if row is None or row["last_position"] >= position:
        return None
    batch.stamp = env["timestamp"]
    row = {**row, "last_position": position, "updated_at": env["timestamp"]}
    batch.put(FABRIC, row)
    return row


@handles("fabric.updated")
def fabric_updated(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _fabric(batch, position, env)
    if row is not None:
        changes = {k: v for k, v in env["payload"]["changes"].items() if k in FABRIC.types}
        row.update(changes)
        row.update(_paths(row["gitops_directory"]))


@handles("fabric.syncing")
def fabric_syncing(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _fabric(batch, position, env)
    if row is not None:
        row["running_sync_id"] = env["payload"]["sync_id"]


@handles("fabric.synced")
def fabric_synced(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _fabric(batch, position, env)
    if row is None:
        return
    status = env["payload"]["status"]
    row.update(
        running_sync_id=None,
        last_sync_id=env["payload"]["sync_id"],
        last_sync_at=batch.stamp,
        last_sync_status=status,
        total_sync_count=row["total_sync_count"] + 1,
    )
    if status == "completed":
        row["successful_sync_count"] += 1
    elif status in ("failed", "timed_out"):
        row["failed_sync_count"] += 1


@handles("fabric.deleted")
def fabric_deleted(batch: Batch, position: int, env: dict[str, Any]) -> None:
    """The fabric's row goes (lists and GET no longer show it); its syncs, files and audit
    entries stay: its history still answers (``queries.KNOWN_FABRIC``)."""
    if _fabric(batch, position, env) is not None:
        batch.remove(FABRIC, env["fabric_id"])


@handles("directory.validated", "directory.initialized", "directory.repaired")
def directory_reported(batch: Batch, position: int, env: dict[str, Any]) -> None:
    row = _fabric(batch, position, env)
    if row is None:
        return
    p = env["payload"]
    if env["event_type"] == "directory.validated":
        row["gitops_directory_status"] = "valid" if p["valid"] else "invalid"
        row["gitops_initialized"] = initialized_by(p["issues"])  # as the validation found it
        return
    row["gitops_initialized"] = True
    invalid = env["event_type"] == "directory.repaired" and p.get("remaining_issues")
    row["gitops_directory_status"] = "invalid" if invalid else "valid"


# -- audit ------------------------------------------------------------------------------------


@handles("audit.recorded")
def audit_recorded(batch: Batch, position: int, env: dict[str, Any]) -> None:
    p = env["payload"]
    batch.put(
        AUDIT,
        {
            "id": position,
            "event_id": env["event_id"],
            "timestamp": env["timestamp"],
            "user": p.get("user"),
            "fabric_id": env.get("fabric_id"),
            "action": p.get("action", ""),
            "ip_address": p.get("ip_address"),
            "user_agent": p.get("user_agent", ""),
            "sync_id": as_uuid(p["sync_id"]) if p.get("sync_id") else None,
            "details": p.get("details") or {},
            "success": bool(p.get("success")),
            "error_message": p.get("error_message") or "",
            "correlation_id": env.get("correlation_id", ""),
        },
    )


def duration_seconds(started_at: str, completed_at: str | None) -> float | None:
    """``SyncOperation.duration_seconds`` from the row's timestamps."""
    if completed_at is None:
        return None
    delta = datetime.fromisoformat(completed_at) - datetime.fromisoformat(started_at)
    return round(delta.total_seconds(), 3)
