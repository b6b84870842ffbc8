"""The spec's nine lifecycle signals, as blinker signals, sent after events are stored.

Receivers get ``sender`` = the aggregate the event belongs to (the SyncOperation for sync and
file signals, the Fabric for directory signals) and keyword arguments ``event`` (the domain
event), ``event_type`` and ``position`` (its place in the event log)::

    from fgd_core.application.signals import fgd_sync_completed

    @fgd_sync_completed.connect
    def on_completed(sync, **kw): ...
"""

from __future__ import annotations

from typing import Any

from blinker import Namespace

from fgd_core.events.types import event_type_of

signals = Namespace()

fgd_sync_started = signals.signal("fgd_sync_started")
fgd_sync_completed = signals.signal("fgd_sync_completed")
fgd_sync_failed = signals.signal("fgd_sync_failed")
fgd_directory_initialized = signals.signal("fgd_directory_initialized")
fgd_directory_validated = signals.signal("fgd_directory_validated")
fgd_directory_repaired = signals.signal("fgd_directory_repaired")
fgd_file_discovered = signals.signal("fgd_file_discovered")
fgd_file_processed = signals.signal("fgd_file_processed")
fgd_file_failed = signals.signal("fgd_file_failed")

# A timed-out sync is a failed sync to anyone listening for failures.
SIGNAL_FOR_EVENT_TYPE = {
    "sync.started": fgd_sync_started,
    "sync.completed": fgd_sync_completed,
    "sync.failed": fgd_sync_failed,
    "sync.timeout": fgd_sync_failed,
    "directory.initialized": fgd_directory_initialized,
    "directory.validated": fgd_directory_validated,
    "directory.repaired": fgd_directory_repaired,
    "file.discovered": fgd_file_discovered,
    "file.processed": fgd_file_processed,
    "file.failed": fgd_file_failed,
}


def send_signals(recordings: list[Any], aggregates: dict[Any, Any]) -> None:
    for recording in recordings:
        event = recording.domain_event
        event_type = event_type_of(type(event))
        signal = SIGNAL_FOR_EVENT_TYPE.get(event_type)
        if signal is None or not signal.receivers:
            continue
        signal.send(
            aggregates.get(event.originator_id),
            event=event,
            event_type=event_type,
            position=recording.notification.id,
        )
