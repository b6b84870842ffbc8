"""The composition root of a process: settings → event store → Application.

One call per process (cosmicpython's bootstrap): ``fgd`` CLI commands, the API server and
each worker build their Application here, so they all read the same configuration.
"""

from __future__ import annotations

import os
from typing import Any

from fgd_core.application import FGDApplication
from fgd_core.config import Settings, load_settings
from fgd_core.persistence import persistence_env


def build_app(settings: Settings | None = None, source: str = "fgd_core") -> FGDApplication:
    settings = settings or load_settings()
    env = persistence_env(settings.database_url, settings.sqlite_path)
    return FGDApplication(
        env=env, source=source, max_concurrent_syncs=settings.fgd.sync.max_concurrent_syncs
    )


def build_runner(settings: Settings | None = None, source: str = "fgd_core") -> tuple[Any, Any]:
    """An Application and a SyncRunner on it. The git token comes from
    ``HEDGEHOG_FGD_GITHUB_TOKEN`` only: it is never written to config, events or logs."""
    from fgd_core.services.sync_runner import SyncRunner

    settings = settings or load_settings()
    app = build_app(settings, source)
    runner = SyncRunner(
        app,
        settings.fgd,
        token=os.environ.get("HEDGEHOG_FGD_GITHUB_TOKEN") or None,
        cache_root=settings.sqlite_path.parent / "git-cache",
    )
    return app, runner
