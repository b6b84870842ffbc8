"""Where configuration comes from besides the model: the YAML file (``${VAR}`` expansion,
duplicate keys refused), the ``HEDGEHOG_FGD_*`` overrides of file keys (``ENV_OVERRIDES``)
and the process's runtime variables (``RuntimeSettings``: tokens, queue names, pool sizes,
tracing …). This module and ``fgd_core.config`` are the only ones that read ``HEDGEHOG_FGD_*``
variables (tests/unit/test_env_reads.py); everything else gets them from ``Settings``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from fgd_core.config_model import ConfigFile, FGDConfig
from fgd_core.errors import ConfigurationError

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
URL_SCHEMES = {
    "HEDGEHOG_FGD_DATABASE_URL": ("postgresql", "postgres"),
    "HEDGEHOG_FGD_BROKER_URL": ("amqp", "amqps"),
}


# --- loading ---------------------------------------------------------------------------------

Problems = list[tuple[str, str]]
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


def config_problem(problems: Problems, source: str) -> ConfigurationError:
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
    problems: Problems = []
    if document is None:  # an empty file (or only comments): all defaults
        document = {}
    if not isinstance(document, dict):
        name = type(document).__name__
        raise config_problem(
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
        raise config_problem(problems, source)
    return result


def read_config_file(path: Path) -> object:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise config_problem([(_ROOT, f"cannot read config file: {exc.strerror or exc}")],
                             source) from None
    except UnicodeDecodeError:
        raise config_problem([(_ROOT, "config file is not valid UTF-8")], source) from None
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
        raise config_problem([(key, f"invalid YAML at {where}{problem}")], source) from None



# --- runtime variables -----------------------------------------------------------------------
# Not keys of the file: where a process finds its peers and secrets, and its own switches.
# Each is read here once; an empty variable counts as unset.

GITHUB_TOKEN_ENV = "HEDGEHOG_FGD_GITHUB_TOKEN"
API_TOKEN_ENV = "HEDGEHOG_FGD_TOKEN"
API_URL_ENV = "HEDGEHOG_FGD_API_URL"
BROKER_URL_ENV = "HEDGEHOG_FGD_BROKER_URL"
COMMANDS_QUEUE_ENV = "HEDGEHOG_FGD_COMMANDS_QUEUE"
QUEUE_PREFIX_ENV = "HEDGEHOG_FGD_QUEUE_PREFIX"
TRACING_ENV = "HEDGEHOG_FGD_TRACING"
POOL_SIZE_ENV = "HEDGEHOG_FGD_API_POOL_SIZE"
MAX_OVERFLOW_ENV = "HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW"
HANDLER_DELAY_ENV = "HEDGEHOG_FGD_TEST_HANDLER_DELAY"
METRICS_HOST_ENV = "HEDGEHOG_FGD_METRICS_HOST"
GIT_CACHE_ENV = "HEDGEHOG_FGD_GIT_CACHE"
SCHEDULER_TICK_ENV = "HEDGEHOG_FGD_SCHEDULER_TICK"
DEFAULT_QUEUE_PREFIX = "fgd"
DEFAULT_POOL_SIZE, DEFAULT_MAX_OVERFLOW = 5, 10


class RuntimeSettings(BaseModel):
    """The process's runtime variables. Secrets are ``SecretStr``: repr, str and
    ``model_dump(mode="json")`` (``fgd config check``) show ``**********``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    github_token: SecretStr | None = None
    """HEDGEHOG_FGD_GITHUB_TOKEN: sent only over https to ``github.token_hosts``."""
    api_token: SecretStr | None = None
    """HEDGEHOG_FGD_TOKEN: the CLI's API token in remote mode (never a command-line option)."""
    api_url: str | None = None
    """HEDGEHOG_FGD_API_URL: the CLI's remote mode (``fgd --api``)."""
    broker_url: str | None = None
    """HEDGEHOG_FGD_BROKER_URL as given (``Settings.broker_url`` is the checked one)."""
    commands_queue: str | None = None
    """HEDGEHOG_FGD_COMMANDS_QUEUE: the bus intake's queue (None: its default)."""
    queue_prefix: str = DEFAULT_QUEUE_PREFIX
    """HEDGEHOG_FGD_QUEUE_PREFIX: work queues are <prefix>.discovery, .ingestion, .github."""
    tracing: str = ""
    """HEDGEHOG_FGD_TRACING: the API's OpenTelemetry exporter ("" off)."""
    # The next three are kept as given and checked where they are used (the API's store
    # refuses a bad pool size, FGD_1003 naming the variable), so that a process that does
    # not use them is not stopped by them.
    api_pool_size: str | None = None
    """HEDGEHOG_FGD_API_POOL_SIZE: connections the API's / CLI's pool opens at start (5)."""
    api_pool_max_overflow: str | None = None
    """HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW: more connections it may open on demand (10)."""
    test_handler_delay: str | None = None
    """HEDGEHOG_FGD_TEST_HANDLER_DELAY: test hook, seconds a worker's handler waits first."""
    metrics_host: str | None = None
    """HEDGEHOG_FGD_METRICS_HOST: default of the workers' --metrics-host."""
    git_cache: str | None = None
    """HEDGEHOG_FGD_GIT_CACHE: default of the workers' --cache-dir."""
    scheduler_tick: str | None = None
    """HEDGEHOG_FGD_SCHEDULER_TICK: default of the scheduler's --tick (click checks it)."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # The broker URL may carry a password; repr/str end up in logs and tracebacks.
        for name, value in super().__repr_args__():
            if name == "broker_url" and value is not None:
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


def runtime_settings(environ: Mapping[str, str] | None = None) -> RuntimeSettings:
    """The runtime variables of ``environ`` (default: the process's environment). Reads no
    file: the CLI's remote mode and the bus helpers use it without a configuration file."""
    environ = os.environ if environ is None else environ

    def text(var: str) -> str | None:
        return environ.get(var, "").strip() or None

    def secret(var: str, strip: bool = True) -> SecretStr | None:
        value = environ.get(var, "")
        value = value.strip() if strip else value  # the git token is taken verbatim
        return SecretStr(value) if value else None

    return RuntimeSettings(
        github_token=secret(GITHUB_TOKEN_ENV, strip=False),
        api_token=secret(API_TOKEN_ENV),
        api_url=text(API_URL_ENV),
        broker_url=text(BROKER_URL_ENV),
        commands_queue=environ.get(COMMANDS_QUEUE_ENV) or None,
        queue_prefix=text(QUEUE_PREFIX_ENV) or DEFAULT_QUEUE_PREFIX,
        tracing=environ.get(TRACING_ENV, ""),
        api_pool_size=environ.get(POOL_SIZE_ENV),
        api_pool_max_overflow=environ.get(MAX_OVERFLOW_ENV),
        test_handler_delay=environ.get(HANDLER_DELAY_ENV),
        metrics_host=text(METRICS_HOST_ENV),
        git_cache=text(GIT_CACHE_ENV),
        scheduler_tick=text(SCHEDULER_TICK_ENV),
    )
