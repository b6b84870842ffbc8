"""What a SyncOperation's state says without an event: its lifecycle constants, the views
derived from it (``is_active``, ``percent_complete`` …) and the copy the aggregate cache
hands out. A mixin of ``SyncOperation`` (``sync_operation``), which keeps the events."""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from typing import TYPE_CHECKING, Any

TRIGGERS = ("manual", "webhook", "scheduled", "fabric_created")
STAGES = ("validation", "discovery", "file_ingestion", "github_sync", "reconciliation")

PENDING, PROCESSING = "pending", "processing"
COMPLETED, FAILED, CANCELLED, TIMED_OUT = "completed", "failed", "cancelled", "timed_out"
ACTIVE_STATES = (PENDING, PROCESSING)
FINAL_STATES = (COMPLETED, FAILED, CANCELLED, TIMED_OUT)
FILE_DONE = ("processed", "failed", "skipped")


def _copy_record(record: dict[str, Any]) -> dict[str, Any]:
    copied = dict(record)  # scalars and strings are immutable: shared, not copied
    for key, value in record.items():
        if isinstance(value, list):
            strings = all(type(v) is str for v in value)  # target_files, claimed
            copied[key] = list(value) if strings else deepcopy(value)
        elif isinstance(value, dict):
            copied[key] = deepcopy(value)
    return copied


class SyncViews:
    """Read-only views of a sync's state, and its copy (mixed into ``SyncOperation``)."""

    if TYPE_CHECKING:  # the state SyncOperation keeps
        id: Any
        created_on: datetime
        state: str
        current_stage: str | None
        stages_completed: list[str]
        files: dict[str, dict[str, Any]]
        completed_at: datetime | None

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """The copy the repository's cache hands out on every load. A file record is a flat
        dict whose nested values are mostly lists of strings (``target_files``): copied
        with ``list()`` instead of the generic ``deepcopy``, which visits every string and
        took most of an ingestion worker's CPU on a 10,000-resource sync. Everything else
        is copied generically."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        state = {k: deepcopy(v, memo) for k, v in self.__dict__.items() if k != "files"}
        state["files"] = {path: _copy_record(record) for path, record in self.files.items()}
        clone.__dict__.update(state)
        return clone

    @property
    def sync_id(self) -> str:
        return str(self.id)

    @property
    def started_at(self) -> datetime:
        return self.created_on

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def stages_pending(self) -> list[str]:
        done = set(self.stages_completed)
        return [s for s in STAGES if s not in done and s != self.current_stage]

    @property
    def total_files(self) -> int:
        return len(self.files)

    @property
    def files_processed(self) -> int:
        return sum(1 for f in self.files.values() if f["status"] in FILE_DONE)

    @property
    def files_failed(self) -> int:
        return sum(1 for f in self.files.values() if f["status"] == "failed")

    @property
    def percent_complete(self) -> int:
        if self.state == COMPLETED:
            return 100
        if self.total_files:
            return int(100 * self.files_processed / self.total_files)
        return int(100 * len(self.stages_completed) / len(STAGES))

    @property
    def duration_seconds(self) -> float | None:
        if self.completed_at is None:
            return None
        return round((self.completed_at - self.started_at).total_seconds(), 3)
