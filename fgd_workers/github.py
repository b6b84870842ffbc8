"""GitHub-sync worker: ``stage.completed`` of ``file_ingestion`` → one commit on the fetched
base, pushed with compare-and-swap; then reconciliation and ``sync.completed``. Prefetch 1:
commits are built one at a time, each on the freshest base."""

from __future__ import annotations

from typing import Any

from fgd_core.application.steps import NOOP, SyncSteps
from fgd_workers.bus import ConnectionFactory
from fgd_workers.consumer import QueueWorker

ROUTING_KEYS = ("stage.completed",)


def github_worker(
    steps: SyncSteps, connection_factory: ConnectionFactory, prefix: str = "fgd",
    prefetch: int = 1,
) -> QueueWorker:
    def handle(envelope: dict[str, Any]) -> str:
        p = envelope["payload"]
        if p.get("stage") != "file_ingestion":
            return NOOP
        return steps.publish(p["sync_id"])

    def poison(envelope: dict[str, Any], reason: str) -> None:
        steps.poisoned(envelope["payload"]["sync_id"], reason)

    return QueueWorker("github", f"{prefix}.github", ROUTING_KEYS, handle,
                       connection_factory, prefetch=prefetch, on_poison=poison)
