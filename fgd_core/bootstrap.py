"""The composition root: settings → event store → Application, git remotes, the sync
pipeline's drivers and the executor. Every entry point builds its objects here — the ``fgd``
CLI, the API (``fgd_api.container``) and each worker (``fgd_core.cli.worker``) — so they all
read the same configuration the same way (cosmicpython's bootstrap).

The read model (the API's projections) is fgd_api's and fgd_core must not import fgd_api:
``fgd_api.container`` builds it from the Application made here (docs/decisions.md).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fgd_core.adapters.git_repo import GitRemote
from fgd_core.adapters.persistence import persistence_env, worker_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.executors import BusExecutor, EmbeddedExecutor
from fgd_core.application.ports import SyncExecutor
from fgd_core.application.remotes import make_remote
from fgd_core.application.repository_policy import RepositoryPolicy
from fgd_core.config import Settings, load_settings
from fgd_core.domain.fabric import Fabric

if TYPE_CHECKING:
    from fgd_core.application.pipeline_local import LocalSyncDriver
    from fgd_core.application.steps import SyncSteps

# A fabric → its git remote, the token and timeouts decided (the concrete adapter type: the
# pipeline's signatures name it; ``ports.GitRemoteFactory`` is what it satisfies).
RemoteFactory = Callable[[Fabric], GitRemote]


def github_token(settings: Settings) -> str | None:
    """HEDGEHOG_FGD_GITHUB_TOKEN (``settings.runtime``). Never written to config, events or
    logs; ``make_remote`` sends it only over https to ``github.token_hosts``."""
    token = settings.runtime.github_token
    return token.get_secret_value() if token is not None else None


def build_app(
    settings: Settings | None = None,
    source: str = "fgd_core",
    *,
    for_others: bool = False,
    env: dict[str, str] | None = None,
    aggregate_cache: int | None = None,
) -> FGDApplication:
    """``for_others``: the process takes fabric settings from other people (the API, the bus
    workers), so repositories are held to ``fgd.repositories.allowed``; the CLI and library
    act with the operator's own rights and are not. ``env``: extra eventsourcing settings.
    ``aggregate_cache``: aggregates kept in memory (fast-forwarded on read; None: none)."""
    settings = settings or load_settings()
    store = persistence_env(settings.database_url, settings.sqlite_path, settings.runtime)
    if aggregate_cache is not None:
        store["AGGREGATE_CACHE_MAXSIZE"] = str(aggregate_cache)
    return FGDApplication(
        env={**store, **(env or {})},
        source=source,
        max_concurrent_syncs=settings.fgd.sync.max_concurrent_syncs,
        repository_policy=RepositoryPolicy.from_config(settings.fgd) if for_others else None,
        syncs_enabled=settings.fgd.enabled,
        push_enabled=settings.fgd.github.enabled,
    )


def build_worker_app(
    settings: Settings,
    *,
    dedicated: int = 0,
    source: str = "fgd_core",
    aggregate_cache: int | None = None,
) -> FGDApplication:
    """The Application of a worker process, its pool inside the connection budget
    (``fgd_core.adapters.persistence.WORKER_CONNECTIONS``; ``dedicated``: the connections the
    process opens outside the pool). Bus commands come from other people: repositories are
    held to the policy (``for_others``)."""
    store = persistence_env(settings.database_url, settings.sqlite_path, settings.runtime)
    return build_app(settings, source, env=worker_env(store, dedicated), for_others=True,
                     aggregate_cache=aggregate_cache)


def git_cache_root(cache_dir: str | Path | None, prefix: str = "fgd-git-") -> Path:
    """The git object cache of this process: ``cache_dir`` (``--cache-dir`` /
    HEDGEHOG_FGD_GIT_CACHE), else a temporary directory of its own."""
    return Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix=prefix))


def build_remote_factory(settings: Settings, cache_root: Path | None) -> RemoteFactory:
    """Each fabric's git remote with the configured timeouts and token and a per-fabric
    object cache under ``cache_root`` (None: in memory)."""
    token, config = github_token(settings), settings.fgd
    return lambda fabric: make_remote(fabric, config, token, cache_root)


def build_runner(
    settings: Settings | None = None, source: str = "fgd_core", *, for_others: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[FGDApplication, LocalSyncDriver]:
    """An Application and the sync pipeline's in-process driver on it (with the driver's
    aggregate cache: a sync is reloaded between its steps); git objects are cached next to
    the embedded database. ``env``: extra eventsourcing settings (the API's pool share)."""
    from fgd_core.application.pipeline_local import DRIVER_ENV, LocalSyncDriver

    settings = settings or load_settings()
    app = build_app(settings, source, for_others=for_others, env={**DRIVER_ENV, **(env or {})})
    cache_root = settings.sqlite_path.parent / "git-cache"
    runner = LocalSyncDriver(
        app,
        settings.fgd,
        remote_factory=build_remote_factory(settings, cache_root),
        token=github_token(settings),
        cache_root=cache_root,
    )
    return app, runner


def build_steps(app: FGDApplication, settings: Settings, cache_root: Path) -> SyncSteps:
    """The pipeline's steps as the bus workers run them (one message at a time)."""
    from fgd_core.application.steps import SyncSteps

    return SyncSteps(app, settings.fgd, remote_factory=build_remote_factory(settings, cache_root),
                     token=github_token(settings), cache_root=cache_root)


def build_executor(settings: Settings, runner: LocalSyncDriver) -> SyncExecutor:
    """With a broker the workers run the syncs (``BusExecutor`` hands nothing over);
    without one they run here on ``ingestion.worker_pool_size`` threads."""
    if settings.broker_url:
        return BusExecutor()
    return build_embedded_executor(settings, runner)


def build_embedded_executor(settings: Settings, runner: LocalSyncDriver) -> EmbeddedExecutor:
    """Syncs run in this process whatever the broker (``fgd worker commands --embedded``)."""
    return EmbeddedExecutor(runner, settings.fgd.ingestion.worker_pool_size)
