"""Which envelope ``event_type`` each domain event class is persisted as.

The spec's base schema requires ``^[a-z]+\\.[a-z]+$``; the WebSocket names
``sync.stage_completed`` / ``sync.file_processed`` break it, so they are message types
derived from ``stage.completed`` / ``file.processed`` (docs/decisions.md), never persisted.
"""

# The event classes (SyncOperation.Started …) are made by eventsourcing's @event when the
# aggregate class is created: mypy cannot see them.
# mypy: disable-error-code="attr-defined"

from __future__ import annotations

from fgd_core.domain.auth import AuditEntry, Token, TokenRegistry
from fgd_core.domain.capacity import SyncCapacity
from fgd_core.domain.command import CommandReceipt
from fgd_core.domain.fabric import Fabric, FabricRegistry
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.domain.webhook import WebhookDelivery
from fgd_core.errors import SchemaMismatchError

EVENT_TYPES: dict[type, str] = {
    SyncOperation.Started: "sync.started",
    SyncOperation.StageStarted: "stage.started",
    SyncOperation.StageCompleted: "stage.completed",
    SyncOperation.FileDiscovered: "file.discovered",
    SyncOperation.FileProcessed: "file.processed",
    # The same event with the managed files it yields (distributed ingestion).
    SyncOperation.FileProcessedWithWrites: "file.processed",
    SyncOperation.FileRejected: "file.rejected",
    SyncOperation.FileFailed: "file.failed",
    SyncOperation.FileSkipped: "file.skipped",
    SyncOperation.Warned: "sync.warning",
    SyncOperation.Errored: "sync.error",
    SyncOperation.Progressed: "sync.progress",
    SyncOperation.Completed: "sync.completed",
    SyncOperation.Failed: "sync.failed",
    SyncOperation.Cancelled: "sync.cancelled",
    SyncOperation.TimedOut: "sync.timeout",
    Fabric.Registered: "fabric.registered",
    Fabric.Updated: "fabric.updated",
    Fabric.SyncStarted: "fabric.syncing",
    Fabric.SyncFinished: "fabric.synced",
    Fabric.DirectoryValidated: "directory.validated",
    Fabric.DirectoryInitialized: "directory.initialized",
    Fabric.DirectoryRepaired: "directory.repaired",
    Fabric.Deleted: "fabric.deleted",
    FabricRegistry.Opened: "registry.opened",
    FabricRegistry.Added: "registry.added",
    FabricRegistry.Renamed: "registry.renamed",
    FabricRegistry.Claimed: "registry.claimed",
    FabricRegistry.Removed: "registry.removed",
    Token.Created: "token.created",
    Token.Revoked: "token.revoked",
    TokenRegistry.Opened: "tokenregistry.opened",
    TokenRegistry.Added: "tokenregistry.added",
    AuditEntry.Recorded: "audit.recorded",
    WebhookDelivery.Received: "webhook.received",
    CommandReceipt.Received: "command.received",  # legacy: read, no longer written
    SyncCapacity.Opened: "capacity.opened",
    SyncCapacity.Acquired: "capacity.acquired",
    SyncCapacity.Granted: "capacity.granted",  # several slots in one event (a batch)
    SyncCapacity.Released: "capacity.released",
}

# WebSocket message types (spec) for the persisted types they are derived from.
WEBSOCKET_TYPES: dict[str, str] = {
    "sync.started": "sync.started",
    "sync.progress": "sync.progress",
    "stage.completed": "sync.stage_completed",
    "file.processed": "sync.file_processed",
    "sync.error": "sync.error",
    "sync.warning": "sync.warning",
    "sync.completed": "sync.completed",
    "sync.failed": "sync.failed",
}


def event_type_of(cls: type) -> str:
    try:
        return EVENT_TYPES[cls]
    except KeyError:
        raise SchemaMismatchError(
            f"no event_type mapped for {cls.__qualname__}", details={"class": cls.__qualname__}
        ) from None
