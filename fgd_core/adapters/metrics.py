"""The spec's Prometheus metrics (names, labels and buckets exactly as it gives them), kept
up to date from stored events so every process that sees the events reports the same."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

fgd_sync_total = Counter(
    "fgd_sync_total", "Total number of sync operations", ["fabric_id", "trigger", "status"]
)
fgd_files_processed_total = Counter(
    "fgd_files_processed_total",
    "Total number of files processed",
    ["fabric_id", "file_type", "status"],
)
fgd_sync_duration_seconds = Histogram(
    "fgd_sync_duration_seconds",
    "Duration of sync operations",
    ["fabric_id", "trigger"],
    buckets=[1, 5, 10, 30, 60, 120, 300, 600],
)
fgd_file_processing_duration_seconds = Histogram(
    "fgd_file_processing_duration_seconds",
    "Duration of file processing",
    ["fabric_id", "file_type"],
)
fgd_active_syncs = Gauge("fgd_active_syncs", "Number of active sync operations")
fgd_queue_depth = Gauge("fgd_queue_depth", "Number of sync operations in queue")

FINAL = {"sync.completed", "sync.failed", "sync.cancelled", "sync.timeout"}
FILE_STATUS = {"file.processed": "processed", "file.failed": "failed", "file.skipped": "skipped"}


class EventMetrics:
    """Feeds the metrics from ``(position, envelope)`` batches (an Application listener)."""

    def __init__(self) -> None:
        self.triggers: dict[str, str] = {}  # sync id → trigger, for the final counters

    def __call__(self, stored: list[tuple[int, dict[str, Any]]]) -> None:
        for _, env in stored:
            self.observe(env)

    def observe(self, env: dict[str, Any]) -> None:
        kind, payload, fabric = env["event_type"], env["payload"], str(env["fabric_id"])
        if kind == "sync.started":
            # fgd_active_syncs is not counted here: an inc here and a dec in the process
            # that ends the sync drift apart. It is set from the store (API: the read model
            # at each scrape; scheduler: each tick).
            self.triggers[payload["sync_id"]] = payload["trigger"]
        elif kind in FINAL:
            trigger = self.triggers.pop(payload["sync_id"], "unknown")
            fgd_sync_total.labels(fabric, trigger, payload["final_state"]).inc()
            fgd_sync_duration_seconds.labels(fabric, trigger).observe(payload["duration_seconds"])
        elif kind in FILE_STATUS:
            path = payload["file_path"]
            file_type = path.rsplit(".", 1)[-1] if "." in path else ""
            fgd_files_processed_total.labels(fabric, file_type, FILE_STATUS[kind]).inc()
            if kind == "file.processed":
                fgd_file_processing_duration_seconds.labels(fabric, file_type).observe(
                    payload["processing_time"]
                )
