"""The composition root of a process: settings → event store → Application.

One call per process (cosmicpython's bootstrap): ``fgd`` CLI commands, the API server and
each worker build their Application here, so they all read the same configuration.
"""

from __future__ import annotations

from fgd_core.application import FGDApplication
from fgd_core.config import Settings, load_settings
from fgd_core.persistence import persistence_env


def build_app(settings: Settings | None = None, source: str = "fgd_core") -> FGDApplication:
    settings = settings or load_settings()
    env = persistence_env(settings.database_url, settings.sqlite_path)
    return FGDApplication(env=env, source=source)
