"""FGD Sync configuration: the spec's ``fgd_config.yaml`` plus ``HEDGEHOG_FGD_*`` variables.

Precedence, lowest first: model defaults (the spec's values) → the YAML file → environment.

* File: ``load_settings(path)``; else ``$HEDGEHOG_FGD_CONFIG``; else ``./fgd_config.yaml`` if it
  exists; else all defaults. ``${VAR}`` inside YAML strings is replaced from the environment
  (unset → empty string; an empty ``webhook_secret`` means "no secret"); ``$${VAR}`` is a
  literal ``${VAR}``. Expansion is textual, so it only suits string fields: numbers and
  booleans come from the override variables below.
* Overrides (the spec's list): see ``ENV_OVERRIDES``. An empty variable counts as unset.
* Runtime-only: ``HEDGEHOG_FGD_DATABASE_URL`` (PostgreSQL; unset → embedded SQLite at
  ``HEDGEHOG_FGD_SQLITE_PATH``), ``HEDGEHOG_FGD_BROKER_URL`` (AMQP; unset → in-process bus).
* ``HEDGEHOG_FGD_REDIS_URL`` is in the spec's list but refused when set: FGD Sync uses
  RabbitMQ, not Redis (``HEDGEHOG_FGD_BROKER_URL``; docs/decisions.md), and a variable that
  would silently do nothing is an error. Other unknown ``HEDGEHOG_FGD_*`` variables are
  ignored, because other components may define their own.

Every problem is a ``ConfigurationError`` (FGD_1003) naming the dotted key or the variable;
values are never echoed from the file, so the webhook secret cannot leak through an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

# The file model and the environment readers live in modules of their own (by job); their
# names stay importable from here, where the rest of the code has always found them.
from fgd_core.config_env import (
    BROKER_URL_ENV,
    ENV_OVERRIDES,
    REDIS_URL_ENV,
    URL_SCHEMES,
    RuntimeSettings,
    config_problem,
    parse_config,
    read_config_file,
    redact_url,
    runtime_settings,
)
from fgd_core.config_model import (
    AlertThresholds,
    ApiConfig,
    CachesConfig,
    CliConfig,
    ConfigFile,
    DirectoryConfig,
    FGDConfig,
    GitHubConfig,
    IngestionConfig,
    MonitoringConfig,
    RepositoriesConfig,
    RetryPolicy,
    SyncConfig,
    ValidationRules,
)

__all__ = [
    "ENV_OVERRIDES", "REDIS_URL_ENV", "AlertThresholds", "ApiConfig", "CachesConfig", "CliConfig",
    "ConfigFile", "DirectoryConfig", "FGDConfig", "GitHubConfig", "IngestionConfig",
    "MonitoringConfig", "RepositoriesConfig", "RetryPolicy", "RuntimeSettings", "Settings",
    "SyncConfig", "ValidationRules", "config_json_schema", "load_settings", "parse_config",
    "redact_url", "runtime_settings", "write_config_schema",
]


class Settings(BaseModel):
    """Everything a process needs to start: the spec's section plus where state lives."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    fgd: FGDConfig = Field(default_factory=FGDConfig)
    database_url: str | None = None
    """PostgreSQL URL; None selects the embedded SQLite database at ``sqlite_path``."""
    broker_url: str | None = None
    """AMQP URL; None selects the in-process bus."""
    sqlite_path: Path
    config_path: Path | None = None
    """The YAML file that was read, or None when only defaults and environment apply."""
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    """The process's runtime variables (tokens, queue names, pool sizes, tracing …)."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # URLs carry passwords; repr/str end up in logs and tracebacks.
        for name, value in super().__repr_args__():
            if name in ("database_url", "broker_url") and value is not None:
                value = redact_url(value)
            yield name, value


def _home_path(value: str, environ: Mapping[str, str]) -> Path:
    if value == "~" or value.startswith("~/"):
        return Path(environ.get("HOME") or Path.home()) / value[2:]
    return Path(value)


def _sqlite_path(environ: Mapping[str, str]) -> Path:
    if explicit := environ.get("HEDGEHOG_FGD_SQLITE_PATH", "").strip():
        return _home_path(explicit, environ)
    # XDG Base Directory spec: a relative XDG_DATA_HOME is invalid and must be ignored.
    xdg = environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else _home_path("~/.local/share", environ)
    return base / "fgd" / "fgd.sqlite3"


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the config file (see the module docstring for which one) and the environment."""
    environ = os.environ if environ is None else environ
    config_path: Path | None = None
    if path is not None:
        config_path = Path(path)
    elif env_path := environ.get("HEDGEHOG_FGD_CONFIG", "").strip():
        config_path = _home_path(env_path, environ)
    elif Path("fgd_config.yaml").is_file():
        config_path = Path("fgd_config.yaml")

    if config_path is None:
        fgd = parse_config({}, environ=environ, source="defaults and environment")
    else:
        fgd = parse_config(read_config_file(config_path), environ=environ,
                           source=str(config_path))

    if environ.get(REDIS_URL_ENV, "").strip():
        raise config_problem([(REDIS_URL_ENV, "FGD Sync uses RabbitMQ, not Redis: unset it and "
                               "set HEDGEHOG_FGD_BROKER_URL (amqp://…) instead")], "environment")
    urls: dict[str, str | None] = {}
    for var, schemes in URL_SCHEMES.items():
        url = environ.get(var, "").strip() or None
        if url is not None and _scheme(url) not in schemes:
            # Never echo the URL: it may carry a password.
            expected = " or ".join(f"{scheme}://" for scheme in schemes)
            raise config_problem([(var, f"expected a {expected} URL")], "environment")
        urls[var] = url
    return Settings(
        fgd=fgd,
        database_url=urls["HEDGEHOG_FGD_DATABASE_URL"],
        broker_url=urls[BROKER_URL_ENV],
        sqlite_path=_sqlite_path(environ),
        config_path=config_path,
        runtime=runtime_settings(environ),
    )


# --- JSON Schema -----------------------------------------------------------------------------

DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def _draft07_refs(node: Any) -> Any:
    # Draft-07 ignores keywords beside "$ref"; wrap so descriptions/defaults survive.
    if isinstance(node, list):
        return [_draft07_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _draft07_refs(value) for key, value in node.items()}
    if "$ref" in node and len(node) > 1:
        node["allOf"] = [{"$ref": node.pop("$ref")}]
    return node


def config_json_schema() -> dict[str, Any]:
    """A draft-07 JSON Schema for fgd_config.yaml, generated from the models."""
    schema = ConfigFile.model_json_schema(ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    return _draft07_refs({"$schema": DRAFT_07, **schema, "definitions": definitions})


def write_config_schema(path: str | os.PathLike[str]) -> None:
    """Write ``config_json_schema()`` to ``path`` in the committed format."""
    text = json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
    Path(path).write_text(text, encoding="utf-8")
