"""Discovery worker: ``sync.started`` → fetch, list raw files, record ``file.discovered``
(with validation, discovery and the start of ``file_ingestion``, in one save)."""

from __future__ import annotations

from typing import Any

from fgd_core.application.steps import SyncSteps
from fgd_workers.bus import ConnectionFactory
from fgd_workers.consumer import QueueWorker

ROUTING_KEYS = ("sync.started",)


def discovery_worker(
    steps: SyncSteps, connection_factory: ConnectionFactory, prefix: str = "fgd",
    prefetch: int = 1,
) -> QueueWorker:
    def handle(envelope: dict[str, Any]) -> str:
        return steps.discover(envelope["payload"]["sync_id"])

    def poison(envelope: dict[str, Any], reason: str) -> None:
        steps.poisoned(envelope["payload"]["sync_id"], reason)

    return QueueWorker("discovery", f"{prefix}.discovery", ROUTING_KEYS, handle,
                       connection_factory, prefetch=prefetch, on_poison=poison)
