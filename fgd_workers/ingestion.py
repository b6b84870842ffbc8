"""Ingestion workers (competing consumers): ``file.discovered`` → plan that one file, store
its managed contents in the blob store, record ``file.processed`` / ``failed`` / ``skipped``.

Prefetch is small on purpose: a worker holds at most that many files, so a 200-file sync
spreads over however many workers run, and a dead worker's files come back quickly. The
files a worker holds at once are recorded in one save (``SyncSteps.ingest_many``), acked
after it."""

from __future__ import annotations

import logging
from typing import Any

from fgd_core.application.steps import SyncSteps
from fgd_workers.bus import ConnectionFactory
from fgd_workers.consumer import QueueWorker

log = logging.getLogger("fgd_workers.ingestion")

ROUTING_KEYS = ("file.discovered",)
DEFAULT_PREFETCH = 2


def log_file(envelope: dict[str, Any], outcome: str) -> None:
    """One INFO line per file handled (``noop``: already handled, e.g. a redelivery)."""
    p = envelope["payload"]
    log.info("ingestion: %s of sync %s: %s", p["file_path"], p["sync_id"], outcome,
             extra={"correlation_id": envelope.get("correlation_id"),
                    "sync_id": p["sync_id"], "file_path": p["file_path"],
                    "outcome": outcome})


def ingestion_worker(
    steps: SyncSteps,
    connection_factory: ConnectionFactory,
    prefix: str = "fgd",
    prefetch: int = DEFAULT_PREFETCH,
) -> QueueWorker:
    if not 1 <= prefetch <= 4:
        raise ValueError("ingestion prefetch must be 1–4")

    def handle(envelope: dict[str, Any]) -> str:
        p = envelope["payload"]
        outcome = steps.ingest(p["sync_id"], p["file_path"], p.get("blob_id"))
        log_file(envelope, outcome)
        return outcome

    def handle_many(envelopes: list[dict[str, Any]]) -> list[str]:
        items = [
            (e["payload"]["sync_id"], e["payload"]["file_path"], e["payload"].get("blob_id"))
            for e in envelopes
        ]
        outcomes = steps.ingest_many(items)
        for envelope, outcome in zip(envelopes, outcomes, strict=True):
            log_file(envelope, outcome)
        return outcomes

    def poison(envelope: dict[str, Any], reason: str) -> None:
        p = envelope["payload"]
        steps.poisoned(p["sync_id"], reason, p.get("file_path"))

    return QueueWorker(
        "ingestion",
        f"{prefix}.ingestion",
        ROUTING_KEYS,
        handle,
        connection_factory,
        prefetch=prefetch,
        on_poison=poison,
        batch_handler=handle_many,
    )
