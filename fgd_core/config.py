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
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from fgd_core.domain.repository import LocationError, parse_prefix
from fgd_core.errors import ConfigurationError
from fgd_core.ingestion.hedgehog.fabric_config import HedgehogConfig

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeFloat = Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]
# One path segment: required_subdirs must never point outside the GitOps directory.
SubdirName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Extension = Annotated[str, Field(pattern=r"^\.[A-Za-z0-9][A-Za-z0-9._-]*$")]


class _Section(BaseModel):
    # Frozen: one Settings object is shared by every thread/worker of a process.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class RetryPolicy(_Section):
    max_attempts: PositiveInt = 3
    """Attempts per sync stage, the first one included."""
    initial_delay: NonNegativeFloat = 1.0
    """Seconds before the first retry."""
    backoff_factor: Annotated[StrictFloat, Field(ge=1, allow_inf_nan=False)] = 2.0
    """Each retry waits this many times longer than the previous one."""
    max_delay: NonNegativeFloat = 60.0
    """Upper bound for one retry delay, in seconds."""

    @field_validator("max_delay")
    @classmethod
    def _not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("initial_delay")
        if initial is not None and value < initial:
            raise ValueError("must be >= initial_delay")
        return value


class SyncConfig(_Section):
    timeout_seconds: PositiveInt = 300
    """A sync running longer than this fails with FGD_3002."""
    max_concurrent_syncs: PositiveInt = 10
    """Syncs running at once across all fabrics (one per fabric at most)."""
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)


class DirectoryConfig(_Section):
    auto_initialize: StrictBool = True
    auto_repair: StrictBool = True
    validation_mode: Literal["strict", "lenient"] = "strict"
    required_subdirs: tuple[SubdirName, ...] = ("vpcs", "connections", "switches")
    """Directories under managed/ that must exist (single names, no slashes)."""


class ValidationRules(_Section):
    enforce_namespaces: StrictBool = True
    require_labels: StrictBool = False
    max_documents_per_file: PositiveInt = 100


class IngestionConfig(_Section):
    batch_size: PositiveInt = 50
    max_file_size_mb: PositiveInt = 10
    worker_pool_size: PositiveInt = 4
    supported_extensions: Annotated[tuple[Extension, ...], Field(min_length=1)] = (".yaml", ".yml")
    """File name endings that are ingested; each starts with '.'."""
    validation_rules: ValidationRules = Field(default_factory=ValidationRules)


class GitHubConfig(_Section):
    enabled: StrictBool = True
    rate_limit_buffer: Annotated[StrictInt, Field(ge=0)] = 100
    """Requests kept in reserve below a git host's rate limit: once its
    X-RateLimit-Remaining is this or less, no request goes to it until the reset (FGD_4003)."""
    connection_timeout: PositiveInt = 30
    read_timeout: PositiveInt = 60
    webhook_secret: SecretStr | None = None
    """HMAC secret for GitHub webhooks; empty or absent means webhooks are not verified."""
    token_hosts: tuple[TokenHost, ...] = ("github.com",)
    """Hosts (host or host:port) HEDGEHOG_FGD_GITHUB_TOKEN is sent to, over https only."""

    @field_validator("token_hosts", mode="before")
    @classmethod
    def _hosts_lower(cls, value: object) -> object:
        if isinstance(value, list | tuple):  # host names are case-insensitive
            return [item.lower() if isinstance(item, str) else item for item in value]
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # "${GITHUB_WEBHOOK_SECRET}" with the variable unset expands to "".
        return None if value == "" else value


class AlertThresholds(_Section):
    sync_duration_seconds: PositiveInt = 300
    # A float: fractional percentages (0.5 %) are a reasonable threshold.
    error_rate_percent: Annotated[StrictFloat, Field(ge=0, le=100, allow_inf_nan=False)] = 5.0
    queue_depth: PositiveInt = 100
    relay_lag_seconds: PositiveInt = 60
    """Oldest event not yet published by the relay older than this: the relay is stalled
    (not in the spec: an extension; health answers 503 while a sync waits on it)."""


class MonitoringConfig(_Section):
    metrics_enabled: StrictBool = True
    health_check_interval: PositiveInt = 60
    """Seconds between a worker process's self-checks (its event store answers;
    fgd_worker_health_checks_total, a WARNING line when it does not)."""
    alert_thresholds: AlertThresholds = Field(default_factory=AlertThresholds)


# --- the HTTP API's bounds ----------------------------------------------------------------


class ApiConfig(_Section):
    """Bounds of what one HTTP request may send or receive (not in the spec: an extension)."""

    max_request_body_bytes: PositiveInt = 1_048_576
    """Largest request body the API reads (413 beyond); the GitHub webhook keeps 25 MiB."""
    files_content_max_file_bytes: PositiveInt = 1_048_576
    """gitops-files?include_content: a file's content is cut after this many bytes."""
    files_content_max_total_bytes: PositiveInt = 8_388_608
    """gitops-files?include_content: contents stop after this many bytes in one answer."""


class CliConfig(_Section):
    """The ``fgd`` command line (not in the spec: an extension)."""

    pickup_timeout_seconds: PositiveInt = 30
    """With a broker, ``fgd sync`` / ``fgd process`` hand the sync to the workers and give up
    (exit status 4) when no worker has picked it up within this many seconds."""


# ---------------------------------------------------------------------------------------------
# --- repository policy and git credentials --------------------------------------------------
# (kept together: which repositories API users may point a fabric at, and where the git token
# may go.)

# A host name as in a URL, optionally with ":port" (lower case).
TokenHost = Annotated[
    str,
    Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$"),
]


class RepositoriesConfig(_Section):
    allowed: tuple[str, ...] = ("https://",)
    """Prefixes a repository set through the HTTP API (or the bus) must match after
    normalization: URL prefixes (https://github.com/acme/; https:// alone allows any https
    host) or absolute path prefixes (/srv/git/, file:///srv/git/). Empty: none. The CLI and
    the library are not limited by it."""

    @field_validator("allowed")
    @classmethod
    def _valid_prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, prefix in enumerate(value):
            try:
                parse_prefix(prefix)
            except LocationError as exc:
                raise ValueError(f"[{index}] {exc}") from None
        return value


class FGDConfig(_Section):
    """The ``fgd:`` section of fgd_config.yaml."""

    enabled: StrictBool = True
    debug_mode: StrictBool = False
    sync: SyncConfig = Field(default_factory=SyncConfig)
    directory: DirectoryConfig = Field(default_factory=DirectoryConfig)
    ingestion: IngestionConfig = Field(default_factory=IngestionConfig)
    github: GitHubConfig = Field(default_factory=GitHubConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    hedgehog: HedgehogConfig = Field(default_factory=HedgehogConfig)
    """The fabric Hedgehog's validation rules assume (fabricator's defaults)."""
    api: ApiConfig = Field(default_factory=ApiConfig)
    repositories: RepositoriesConfig = Field(default_factory=RepositoriesConfig)
    cli: CliConfig = Field(default_factory=CliConfig)


class ConfigFile(_Section):
    """FGD Sync configuration file (fgd_config.yaml)."""

    model_config = ConfigDict(title="FGD Sync configuration (fgd_config.yaml)")
    fgd: FGDConfig = Field(default_factory=FGDConfig)


# Variable → (path in the YAML document, type of its value).
ENV_OVERRIDES: dict[str, tuple[tuple[str, ...], type]] = {
    "HEDGEHOG_FGD_ENABLED": (("fgd", "enabled"), bool),
    "HEDGEHOG_FGD_DEBUG": (("fgd", "debug_mode"), bool),
    "HEDGEHOG_FGD_SYNC_TIMEOUT": (("fgd", "sync", "timeout_seconds"), int),
    "HEDGEHOG_FGD_BATCH_SIZE": (("fgd", "ingestion", "batch_size"), int),
    "HEDGEHOG_FGD_WORKER_CONCURRENCY": (("fgd", "ingestion", "worker_pool_size"), int),
    "HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET": (("fgd", "github", "webhook_secret"), str),
    "HEDGEHOG_FGD_METRICS_ENABLED": (("fgd", "monitoring", "metrics_enabled"), bool),
    # the HTTP API's bounds (ApiConfig)
    "HEDGEHOG_FGD_MAX_REQUEST_BODY_BYTES": (("fgd", "api", "max_request_body_bytes"), int),
    "HEDGEHOG_FGD_FILES_CONTENT_MAX_FILE_BYTES": (
        ("fgd", "api", "files_content_max_file_bytes"), int),
    "HEDGEHOG_FGD_FILES_CONTENT_MAX_TOTAL_BYTES": (
        ("fgd", "api", "files_content_max_total_bytes"), int),
    "HEDGEHOG_FGD_CLI_PICKUP_TIMEOUT": (("fgd", "cli", "pickup_timeout_seconds"), int),
    # Comma-separated lists.
    "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": (("fgd", "repositories", "allowed"), list),
    "HEDGEHOG_FGD_GITHUB_TOKEN_HOSTS": (("fgd", "github", "token_hosts"), list),
}
# In the spec's list, refused: a Redis URL would do nothing (the broker is RabbitMQ).
REDIS_URL_ENV = "HEDGEHOG_FGD_REDIS_URL"
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_URL_SCHEMES = {
    "HEDGEHOG_FGD_DATABASE_URL": ("postgresql", "postgres"),
    "HEDGEHOG_FGD_BROKER_URL": ("amqp", "amqps"),
}


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

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # URLs carry passwords; repr/str end up in logs and tracebacks.
        for name, value in super().__repr_args__():
            if name in ("database_url", "broker_url") and value is not None:
                value = redact_url(value)
            yield name, value


def redact_url(url: str) -> str:
    """``url`` with the password (userinfo or ``password=`` query parameter) replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


# --- loading ---------------------------------------------------------------------------------

_Problems = list[tuple[str, str]]
_ROOT = "(root)"  # key reported for problems with the document as a whole
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    def __init__(self, key: object, mark: yaml.Mark) -> None:
        super().__init__(None, None, f"duplicate key {key!r}", mark)
        self.key = str(key)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that rejects duplicate keys (PyYAML would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            # Merge keys ("<<") may legitimately be overridden; scalars are what can clash.
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise _DuplicateKeyError(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _fail(problems: _Problems, source: str) -> ConfigurationError:
    listed = "; ".join(f"{key}: {problem}" for key, problem in problems)
    count = f"{len(problems)} problems: " if len(problems) > 1 else ""
    return ConfigurationError(
        f"invalid configuration ({source}): {count}{listed}",
        details={
            "key": problems[0][0],
            "problem": problems[0][1],
            "problems": [{"key": key, "problem": problem} for key, problem in problems],
            "source": source,
        },
    )


def _expand(value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: f"${{{m[2]}}}" if m[1] else environ.get(m[2], ""), value)
    if isinstance(value, dict):
        return {key: _expand(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, environ) for item in value]
    return value


def _env_value(raw: str, kind: type) -> object:
    if kind is bool:
        if raw.strip().lower() not in _BOOLS:
            raise ValueError(f"expected true/false/1/0/yes/no, got {raw!r}")
        return _BOOLS[raw.strip().lower()]
    if kind is int:
        if not re.fullmatch(r"[+-]?[0-9]+", raw.strip()):
            raise ValueError(f"expected an integer, got {raw!r}")
        return int(raw.strip())
    if kind is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw  # the secret: taken verbatim, never echoed


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_config(
    document: object, *, environ: Mapping[str, str] | None = None, source: str = "<config>"
) -> FGDConfig:
    """Validate a parsed YAML document, with ``${VAR}`` expansion and env overrides applied."""
    environ = os.environ if environ is None else environ
    problems: _Problems = []
    if document is None:  # an empty file (or only comments): all defaults
        document = {}
    if not isinstance(document, dict):
        name = type(document).__name__
        raise _fail(
            [(_ROOT, f"top level must be a mapping with the key 'fgd', got {name}")], source
        )
    data = _expand(document, environ)

    from_env: dict[str, str] = {}  # dotted key → variable that set it
    for var, (path, kind) in ENV_OVERRIDES.items():
        raw = environ.get(var, "")
        if raw == "":
            continue
        try:
            value = _env_value(raw, kind)
        except ValueError as exc:
            problems.append((var, str(exc)))
            continue
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break  # the file's own error for this section is reported below
        else:
            node[path[-1]] = value
            from_env[".".join(path)] = var

    result = None
    try:
        result = ConfigFile.model_validate(data).fgd
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            key = _dotted(err["loc"])
            problem = {
                "extra_forbidden": "unknown key",
                "model_type": "expected a mapping",
            }.get(err["type"], err["msg"].removeprefix("Value error, "))
            if key in from_env:
                key, problem = from_env[key], f"{problem} (sets {key})"
            problems.append((key, problem))
    if problems or result is None:
        raise _fail(problems, source)
    return result


def _read_yaml(path: Path) -> object:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail([(_ROOT, f"cannot read config file: {exc.strerror or exc}")], source) from None
    except UnicodeDecodeError:
        raise _fail([(_ROOT, "config file is not valid UTF-8")], source) from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        # Built from the parts, not str(exc): that quotes the offending line, maybe a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        if context := getattr(exc, "context", None):
            problem = f"{context}, {problem}"
        key = exc.key if isinstance(exc, _DuplicateKeyError) else _ROOT
        raise _fail([(key, f"invalid YAML at {where}{problem}")], source) from None


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
        fgd = parse_config(_read_yaml(config_path), environ=environ, source=str(config_path))

    if environ.get(REDIS_URL_ENV, "").strip():
        raise _fail([(REDIS_URL_ENV, "FGD Sync uses RabbitMQ, not Redis: unset it and set "
                      "HEDGEHOG_FGD_BROKER_URL (amqp://…) instead")], "environment")
    urls: dict[str, str | None] = {}
    for var, schemes in _URL_SCHEMES.items():
        url = environ.get(var, "").strip() or None
        if url is not None and _scheme(url) not in schemes:
            # Never echo the URL: it may carry a password.
            expected = " or ".join(f"{scheme}://" for scheme in schemes)
            raise _fail([(var, f"expected a {expected} URL")], "environment")
        urls[var] = url
    return Settings(
        fgd=fgd,
        database_url=urls["HEDGEHOG_FGD_DATABASE_URL"],
        broker_url=urls["HEDGEHOG_FGD_BROKER_URL"],
        sqlite_path=_sqlite_path(environ),
        config_path=config_path,
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
