"""The file model of fgd_config.yaml: one pydantic section per key group (the spec's values
as defaults). Loading, environment overrides and the process settings live in
``fgd_core.config`` (which re-exports these names) and ``fgd_core.config_env``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
)

from fgd_core.domain.repository import LocationError, parse_prefix
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


class CachesConfig(_Section):
    """Aggregates a process keeps in memory, read again by fast-forward (not in the spec: an
    extension). Every message re-reads its sync: a worker that keeps recent aggregates reads
    only the events recorded since, instead of replaying a 200-file sync each time."""

    worker_aggregates: PositiveInt = 64
    """Aggregates each sync worker process (discovery, ingestion, github) keeps."""
    scheduler_aggregates: PositiveInt = 256
    """Aggregates the scheduler process keeps (every fabric, every pass)."""


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
    caches: CachesConfig = Field(default_factory=CachesConfig)


class ConfigFile(_Section):
    """FGD Sync configuration file (fgd_config.yaml)."""

    model_config = ConfigDict(title="FGD Sync configuration (fgd_config.yaml)")
    fgd: FGDConfig = Field(default_factory=FGDConfig)
