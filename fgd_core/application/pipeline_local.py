"""The in-process driver of the sync pipeline: discover → ingest every file → publish, the
same steps (``steps.SyncSteps``) the bus workers run one message at a time, called here one
after the other in this process. Used by embedded ``fgd serve``, ``fgd sync`` without a
broker and library use (``bootstrap.build_runner``).

Between steps (and between batches of ``ingestion.batch_size`` files) the driver stops if
the sync was cancelled, and times it out (FGD_3002) past ``sync.timeout_seconds``; a sync
that ends before the push leaves the repository exactly as it was. Fetches and pushes are
retried by the steps (``sync.retry_policy``). Whoever records validation owns the sync: a
sync a bus worker already began is left to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgd_core.application.app import FGDApplication
from fgd_core.application.pipeline_common import NOOP, RemoteFactory
from fgd_core.application.steps import SyncSteps
from fgd_core.config import FGDConfig
from fgd_core.domain.sync_operation import FILE_DONE, SyncOperation
from fgd_core.errors import InternalError, SyncTimeoutError
from fgd_core.ingestion.plan import SyncPlan

# The driver reloads the sync between steps and batches (``_going_on``, each step's load):
# without a cache each reload replays the whole sync — every file.processed event, writes
# included — so a 10k-resource sync decoded its events again and again. eventsourcing's
# aggregate cache keeps the last state and fast-forwards it with the events stored since
# (from any process, so a sync a worker also touches stays exact), and hands out deep
# copies, so what the steps do and save is unchanged. The bound is a few running syncs
# and their fabrics per process.
DRIVER_ENV = {"AGGREGATE_CACHE_MAXSIZE": "64"}


@dataclass
class SyncResult:
    sync: SyncOperation
    plan: SyncPlan | None = None  # what the sync committed (or, validate_only, would have)
    commit: str | None = None  # the commit the sync made (None: nothing changed)
    pushed: bool = False
    head: str | None = None  # the branch head the sync started from
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.sync.state == "completed"


class LocalSyncDriver:
    """Runs whole syncs in this process on the pipeline's steps."""

    def __init__(self, app: FGDApplication, config: FGDConfig,
                 remote_factory: RemoteFactory | None = None, token: str | None = None,
                 cache_root: Path | None = None, **steps_options: Any) -> None:
        """``steps_options`` go to ``SyncSteps``: ``blobs``, ``sleep`` (how a retry waits)."""
        self.app, self.config, self.token, self.cache_root = app, config, token, cache_root
        self.steps = SyncSteps(app, config, remote_factory=remote_factory, token=token,
                               cache_root=cache_root, reuse_snapshots=True, keep_plans=True,
                               **steps_options)
        self.remote_factory: RemoteFactory = self.steps.remote_factory

    def run(self, fabric_id: int, trigger: str = "manual",
            options: dict[str, Any] | None = None, correlation_id: str | None = None,
            only_paths: list[str] | None = None) -> SyncResult:
        """Start a sync (FGD_3001 if one runs) and carry it to its end. A correlation id
        that already names a sync of the same request: that sync, as it is (not run again)."""
        started = self.app.request_sync(fabric_id, trigger, options, correlation_id)
        if started.duplicate:
            return SyncResult(sync=started.sync)
        return self.execute(started.sync.sync_id, only_paths=only_paths)

    def execute(self, sync_id: str, only_paths: list[str] | None = None) -> SyncResult:
        steps = self.steps
        try:
            if steps.discover(sync_id, only_paths) != NOOP and self._going_on(sync_id):
                self._ingest_all(sync_id)
                if self._going_on(sync_id):
                    steps.publish(sync_id)
        except Exception as exc:  # a bug must end the sync, not leave it "processing"
            steps.fail(sync_id, InternalError.code, f"internal error: {type(exc).__name__}", {})
            raise
        finally:
            plan = steps.plans.pop(sync_id, None)
            steps.forget(sync_id)
        return self._result(sync_id, plan)

    def _ingest_all(self, sync_id: str) -> None:
        """Every discovered file, planned and recorded ``ingestion.batch_size`` at a time."""
        files = self.app.get_sync(sync_id).files
        todo = [(sync_id, path, rec.get("blob_id")) for path, rec in sorted(files.items())
                if rec["status"] not in FILE_DONE]
        batch = max(1, self.config.ingestion.batch_size)
        for i in range(0, len(todo), batch):
            if i and not self._going_on(sync_id):
                return
            self.steps.ingest_many(todo[i : i + batch])

    def _going_on(self, sync_id: str) -> bool:
        """Between steps: False once the sync ended (cancelled, failed); past the timeout,
        the sync is timed out here (FGD_3002)."""
        sync = self.steps.load(sync_id)
        if sync is None or not sync.is_active:
            return False
        try:
            self.steps.check_deadline(sync)
        except SyncTimeoutError:
            self.app.time_out_sync(sync_id, self.config.sync.timeout_seconds)
            return False
        return True

    def _result(self, sync_id: str, plan: SyncPlan | None) -> SyncResult:
        sync = self.app.get_sync(sync_id)
        published = sync.stage_summaries.get("github_sync", {})
        return SyncResult(
            sync=sync,
            plan=plan,
            commit=published.get("commit"),
            pushed=bool(published.get("pushed")),
            head=sync.stage_summaries.get("validation", {}).get("head"),
        )


__all__ = ["DRIVER_ENV", "LocalSyncDriver", "SyncResult"]
