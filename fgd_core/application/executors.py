"""Where a recorded sync goes next (the ``SyncExecutor`` port; ``fgd_core.bootstrap``
picks one). Embedded mode: syncs run in this process on a small thread pool, no broker
needed; with a broker, ``BusExecutor`` hands nothing over (the workers pick it up).

The API (``fgd serve``) records ``sync.started`` and hands the sync id here; a thread carries
the sync to its end with the pipeline's in-process driver (``pipeline_local``), which runs
the same steps the bus workers run. At most ``ingestion.worker_pool_size``
(``HEDGEHOG_FGD_WORKER_CONCURRENCY``) run at once; more wait in the pool's queue
(``max_concurrent_syncs`` bounds how many may be started at all).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from fgd_core.application.ports import SyncDriverPort

log = logging.getLogger("fgd_workers.embedded")  # the name operators' log filters know


class EmbeddedExecutor:
    def __init__(self, runner: SyncDriverPort, max_workers: int = 4) -> None:
        self.runner = runner
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fgd-sync")
        self.futures: dict[str, Future[Any]] = {}

    def submit(self, sync_id: str, only_paths: list[str] | None = None) -> Future[Any]:
        future = self.pool.submit(self._run, sync_id, only_paths)
        self.futures[sync_id] = future
        future.add_done_callback(lambda _: self.futures.pop(sync_id, None))
        return future

    def _run(self, sync_id: str, only_paths: list[str] | None) -> Any:
        try:
            return self.runner.execute(sync_id, only_paths=only_paths)
        except Exception:  # the runner has already recorded the failure on the sync
            log.exception("sync %s crashed", sync_id)
            return None

    @property
    def active(self) -> int:
        return len(self.futures)

    def wait(self, sync_id: str, timeout: float | None = None) -> Any:
        future = self.futures.get(sync_id)
        return future.result(timeout) if future else None

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=not wait)


class BusExecutor:
    """With a broker the workers run syncs (they receive ``sync.started`` through the
    relay): the API hands nothing over in-process."""

    active = 0

    def submit(self, sync_id: str, only_paths: list[str] | None = None) -> None:
        return None

    def wait(self, sync_id: str, timeout: float | None = None) -> None:
        return None

    def shutdown(self, wait: bool = True) -> None:
        return None
