"""The composition root (fgd_core.bootstrap): what it builds follows the settings, and the
settings never show a secret. SQLite in a temporary directory: no service needed."""

from __future__ import annotations

from pathlib import Path

from fgd_core.application.executors import BusExecutor, EmbeddedExecutor
from fgd_core.bootstrap import (
    build_executor,
    build_runner,
    build_worker_app,
    github_token,
)
from fgd_core.config import load_settings


def _settings(tmp_path: Path, **variables: str):  # type: ignore[no-untyped-def]
    return load_settings(environ={"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"),
                                  **variables})


def test_worker_caches_come_from_the_settings(tmp_path: Path) -> None:
    config = tmp_path / "fgd_config.yaml"
    config.write_text("fgd:\n  caches:\n    worker_aggregates: 7\n    scheduler_aggregates: 9\n")
    settings = _settings(tmp_path, HEDGEHOG_FGD_CONFIG=str(config))
    for size in (settings.fgd.caches.worker_aggregates, settings.fgd.caches.scheduler_aggregates):
        app = build_worker_app(settings, aggregate_cache=size)
        try:
            assert app.repository.cache is not None
            assert app.repository.cache.maxsize == size  # type: ignore[attr-defined]
        finally:
            app.close()
    assert (settings.fgd.caches.worker_aggregates, settings.fgd.caches.scheduler_aggregates) \
        == (7, 9)


def test_the_git_token_comes_from_the_settings_and_is_never_shown(tmp_path: Path) -> None:
    settings = _settings(tmp_path, HEDGEHOG_FGD_GITHUB_TOKEN="ghp_not_for_logs",
                         HEDGEHOG_FGD_TOKEN="fgd_api_secret")
    assert github_token(settings) == "ghp_not_for_logs"
    shown = repr(settings) + str(settings) + str(settings.model_dump(mode="json"))
    assert "ghp_not_for_logs" not in shown and "fgd_api_secret" not in shown
    assert github_token(_settings(tmp_path)) is None


def test_the_executor_follows_the_broker_setting(tmp_path: Path) -> None:
    embedded = _settings(tmp_path)
    app, runner = build_runner(embedded)
    try:
        executor = build_executor(embedded, runner)
        assert isinstance(executor, EmbeddedExecutor)
        executor.shutdown()
        with_broker = _settings(tmp_path, HEDGEHOG_FGD_BROKER_URL="amqp://127.0.0.1//")
        assert isinstance(build_executor(with_broker, runner), BusExecutor)
    finally:
        app.close()
