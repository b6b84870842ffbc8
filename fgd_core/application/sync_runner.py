"""Where the in-process sync runner used to live; its public names stay importable here.

``SyncRunner`` is the pipeline's in-process driver (``pipeline_local.LocalSyncDriver``),
which runs the same steps as the bus workers (``steps.SyncSteps``). The helpers are the
pipeline's own (``pipeline_common``).
"""

from __future__ import annotations

from fgd_core.application.pipeline_common import (
    AUTHOR,
    LazyBlobs,
    RemoteFactory,
    commit_changes,
    commit_message,
    fabric_of,
    failed_before,
    index_dir,
    record_file,
    rules_for,
)
from fgd_core.application.pipeline_local import LocalSyncDriver, SyncResult
from fgd_core.application.remotes import make_remote

SyncRunner = LocalSyncDriver

__all__ = [
    "AUTHOR", "LazyBlobs", "RemoteFactory", "SyncResult", "SyncRunner", "commit_changes",
    "commit_message", "fabric_of", "failed_before", "index_dir", "make_remote",
    "record_file", "rules_for",
]
