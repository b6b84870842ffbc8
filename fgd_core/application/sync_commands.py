"""The sync commands of ``FGDApplication``: load a sync, change it, save it (and on its end,
its fabric's unlock and its freed slot, in the same transaction).

A mixin so that ``app.py`` stays the application's wiring (save, listeners, fabrics, starting
syncs); every method here runs on an ``FGDApplication``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.errors import InternalError, NotFoundError

if TYPE_CHECKING:
    from eventsourcing.persistence import Recording

    from fgd_core.application.capacity_slots import SlotPool
    from fgd_core.domain.fabric import Fabric


class SyncCommands:
    """Sync lookups and the commands that record a sync's progress and its end."""

    if TYPE_CHECKING:  # what the mixin uses of FGDApplication (defined there)
        repository: Any

        def get_fabric(self, fabric_id: int, include_deleted: bool = False) -> Fabric: ...
        def sync_capacity(self) -> SlotPool | None: ...
        def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]: ...
        def _retry(self, command: Callable[[], Any]) -> Any: ...

    def get_sync(self, sync_id: str | UUID, version: int | None = None) -> SyncOperation:
        try:
            uuid = sync_id if isinstance(sync_id, UUID) else UUID(str(sync_id))
            sync: Any = self.repository.get(uuid, version=version)
        except (ValueError, AggregateNotFoundError):
            raise NotFoundError(
                f"sync {sync_id} not found", details={"sync_id": str(sync_id)}
            ) from None
        if not isinstance(sync, SyncOperation):
            raise NotFoundError(f"sync {sync_id} not found", details={"sync_id": str(sync_id)})
        return sync

    def syncs_of(self, fabric_id: int) -> Iterator[SyncOperation]:
        """A fabric's syncs, newest first."""
        for sync_id in reversed(self.get_fabric(fabric_id, include_deleted=True).sync_ids):
            yield self.get_sync(sync_id)

    def update_sync(self, sync_id: str, command: Callable[[SyncOperation], Any]) -> SyncOperation:
        """Load the sync, run ``command`` on it (any number of its methods), save once;
        re-run on fresh state if another writer got there first."""

        def run() -> SyncOperation:
            sync = self.get_sync(sync_id)
            was_active = sync.is_active
            command(sync)
            fabric = capacity = None
            if was_active and not sync.is_active:
                # The ending, the fabric's unlock and the freed slot are one transaction:
                # no stuck lock, no leaked slot.
                fabric = self.get_fabric(sync.fabric_id)
                fabric.finish_sync(sync.sync_id, sync.state, sync.correlation_id)
                capacity = self.sync_capacity()
                if capacity is not None and not capacity.release(
                    sync.sync_id, sync.fabric_id, sync.correlation_id
                ):
                    capacity = None  # it held no slot: nothing to save
            self.save(sync, fabric, capacity)
            return sync

        return self._retry(run)

    def begin_stage(self, sync_id: str, stage: str) -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.begin_stage(stage))

    def complete_stage(
        self, sync_id: str, stage: str, summary: dict[str, Any] | None = None
    ) -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.complete_stage(stage, summary))

    def discover_files(self, sync_id: str, files: list[tuple[str, int, str | None]]) -> None:
        """Record ``file.discovered`` for each (path, size, blob id) in one save."""

        def discover(sync: SyncOperation) -> None:
            for path, size, blob_id in files:
                sync.discover_file(path, size, blob_id)

        self.update_sync(sync_id, discover)

    def process_file(self, sync_id: str, file_path: str, **result: Any) -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.process_file(file_path, **result))

    def fail_file(
        self,
        sync_id: str,
        file_path: str,
        documents_found: int,
        errors: list[dict[str, Any]],
    ) -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.fail_file(file_path, documents_found, errors))

    def skip_file(self, sync_id: str, file_path: str, reason: str) -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.skip_file(file_path, reason))

    def warn(self, sync_id: str, code: str, message: str, file: str | None = None) -> None:
        self.update_sync(sync_id, lambda s: s.warn(code, message, file))

    def record_error(
        self,
        sync_id: str,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.update_sync(sync_id, lambda s: s.record_error(code, message, details))

    def report_progress(self, sync_id: str, current_file: str | None = None) -> None:
        self.update_sync(sync_id, lambda s: s.report_progress(current_file))

    def complete_sync(self, sync_id: str) -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.complete())

    def fail_sync(
        self,
        sync_id: str,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.fail(code, message, details))

    def give_up_sync(self, sync_id: str, reason: str, file_path: str | None = None) -> bool:
        """A message about this sync failed on every delivery (a worker gave up on it, or the
        broker dead-lettered it): record why as an error and fail the sync (FGD_5001), unless
        it has ended already. Idempotent; True if this call ended the sync."""
        message = f"worker gave up on a message: {reason}"[:500]

        def command(s: SyncOperation) -> None:
            if s.is_active:
                s.record_error(InternalError.code, message, {"file_path": file_path})
                s.fail(InternalError.code, message, {"stage": s.current_stage})

        try:
            return (
                self.get_sync(sync_id).is_active
                and not self.update_sync(sync_id, command).is_active
            )
        except NotFoundError:
            return False

    def cancel_sync(self, sync_id: str, reason: str = "cancelled by request") -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.cancel(reason))

    def time_out_sync(self, sync_id: str, timeout_seconds: float) -> SyncOperation:
        return self.update_sync(sync_id, lambda s: s.time_out(timeout_seconds))
