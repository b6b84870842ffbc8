"""The composition root of a process: settings → event store → Application.

One call per process (cosmicpython's bootstrap): ``fgd`` CLI commands, the API server and
each worker build their Application here, so they all read the same configuration.
"""

from __future__ import annotations

import os
from typing import Any

from fgd_core.adapters.persistence import persistence_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.repository_policy import RepositoryPolicy
from fgd_core.config import Settings, load_settings


def build_app(
    settings: Settings | None = None,
    source: str = "fgd_core",
    *,
    for_others: bool = False,
    env: dict[str, str] | None = None,
) -> FGDApplication:
    """``for_others``: the process takes fabric settings from other people (the API, the bus
    workers), so repositories are held to ``fgd.repositories.allowed``; the CLI and library
    act with the operator's own rights and are not. ``env``: extra eventsourcing settings."""
    settings = settings or load_settings()
    return FGDApplication(
        env={**persistence_env(settings.database_url, settings.sqlite_path), **(env or {})},
        source=source,
        max_concurrent_syncs=settings.fgd.sync.max_concurrent_syncs,
        repository_policy=RepositoryPolicy.from_config(settings.fgd) if for_others else None,
        syncs_enabled=settings.fgd.enabled,
        push_enabled=settings.fgd.github.enabled,
    )


def build_runner(
    settings: Settings | None = None, source: str = "fgd_core", *, for_others: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[Any, Any]:
    """An Application and the sync pipeline's in-process driver on it. The git token comes
    from ``HEDGEHOG_FGD_GITHUB_TOKEN`` only: it is never written to config, events or logs, and
    the runner sends it only over https to ``github.token_hosts``."""
    from fgd_core.application.pipeline_local import DRIVER_ENV, LocalSyncDriver

    settings = settings or load_settings()
    app = build_app(settings, source, for_others=for_others, env={**DRIVER_ENV, **(env or {})})
    runner = LocalSyncDriver(
        app,
        settings.fgd,
        token=os.environ.get("HEDGEHOG_FGD_GITHUB_TOKEN") or None,
        cache_root=settings.sqlite_path.parent / "git-cache",
    )
    return app, runner
