"""fgd_core.config: the spec's fgd_config.yaml, HEDGEHOG_FGD_* overrides, the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from fgd_core.config import (
    ENV_OVERRIDES,
    FGDConfig,
    config_json_schema,
    load_settings,
    parse_config,
    redact_url,
    write_config_schema,
)
from fgd_core.errors import ConfigurationError

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "fgd_config.schema.json"
SECRET = "hunter2-very-secret-value"

# Copied verbatim from the spec's "Configuration Schema" section.
SPEC_YAML = """\
# FGD Configuration Schema (fgd_config.yaml)
fgd:
  # Core settings
  enabled: true
  debug_mode: false

  # Sync settings
  sync:
    timeout_seconds: 300
    max_concurrent_syncs: 10
    retry_policy:
      max_attempts: 3
      initial_delay: 1.0
      backoff_factor: 2.0
      max_delay: 60.0

  # Directory settings
  directory:
    auto_initialize: true
    auto_repair: true
    validation_mode: "strict"  # "strict", "lenient"
    required_subdirs:
      - "vpcs"
      - "connections"
      - "switches"

  # File processing
  ingestion:
    batch_size: 50
    max_file_size_mb: 10
    worker_pool_size: 4
    supported_extensions:
      - ".yaml"
      - ".yml"
    validation_rules:
      enforce_namespaces: true
      require_labels: false
      max_documents_per_file: 100

  # GitHub integration
  github:
    enabled: true
    rate_limit_buffer: 100
    connection_timeout: 30
    read_timeout: 60
    webhook_secret: "${GITHUB_WEBHOOK_SECRET}"

  # Monitoring
  monitoring:
    metrics_enabled: true
    health_check_interval: 60
    alert_thresholds:
      sync_duration_seconds: 300
      error_rate_percent: 5
      queue_depth: 100
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fgd_config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def nested(dotted: str, value: Any) -> dict[str, Any]:
    """{"fgd": {"sync": {"timeout_seconds": value}}} from "fgd.sync.timeout_seconds"."""
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def config_error(document: Any, environ: dict[str, str] | None = None) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        parse_config(document, environ=environ or {})
    return info.value


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings() looks for ./fgd_config.yaml; never pick up a developer's file.
    monkeypatch.chdir(tmp_path)


# --- defaults, file, environment --------------------------------------------------------------


def test_defaults_are_the_spec_values() -> None:
    spec = yaml.safe_load(SPEC_YAML)["fgd"]
    spec["github"]["webhook_secret"] = None  # "${GITHUB_WEBHOOK_SECRET}" with it unset
    dump = FGDConfig().model_dump(mode="json", by_alias=True)
    # FGD Sync's own additions to the spec's file (docs/decisions.md):
    # fgd.hedgehog, the fabric Hedgehog's rules run under (fabricator's defaults);
    hedgehog = dump.pop("hedgehog")
    assert hedgehog["vpc_irb_vlans"] == [{"from": 3000, "to": 3899}]
    assert "172.30.128.0/17" in hedgehog["reserved_subnets"]
    # fgd.api, the HTTP API's bounds;
    assert dump.pop("api") == {"max_request_body_bytes": 1_048_576,
                               "files_content_max_file_bytes": 1_048_576,
                               "files_content_max_total_bytes": 8_388_608}
    # the repository policy and the token's hosts.
    assert dump.pop("repositories") == {"allowed": ["https://"]}
    # the command line's wait for a worker to pick a sync up;
    assert dump.pop("cli") == {"pickup_timeout_seconds": 30}
    # the aggregates a worker / the scheduler keep in memory;
    assert dump.pop("caches") == {"worker_aggregates": 64, "scheduler_aggregates": 256}
    assert dump["github"].pop("token_hosts") == ["github.com"]
    # and the relay's lag threshold (health).
    assert dump["monitoring"]["alert_thresholds"].pop("relay_lag_seconds") == 60
    assert dump == spec


def test_no_file_and_no_environment_gives_defaults() -> None:
    settings_ = load_settings(environ={"HOME": "/home/op"})
    assert settings_.fgd == FGDConfig()
    assert settings_.config_path is None
    assert settings_.database_url is None and settings_.broker_url is None
    assert settings_.sqlite_path == Path("/home/op/.local/share/fgd/fgd.sqlite3")


def test_spec_example_file_loads_to_the_defaults(tmp_path: Path) -> None:
    settings_ = load_settings(write(tmp_path, SPEC_YAML), environ={})
    assert settings_.fgd == FGDConfig()


def test_yaml_file_overrides_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "fgd:\n  debug_mode: yes\n  sync:\n    timeout_seconds: 120\n"
        "    retry_policy: {max_attempts: 5, max_delay: 10}\n"
        "  directory: {validation_mode: lenient, required_subdirs: [vpcs]}\n"
        "  ingestion: {supported_extensions: ['.yaml']}\n"
        "  monitoring: {alert_thresholds: {error_rate_percent: 0.5}}\n",
    )
    fgd = load_settings(path, environ={}).fgd
    assert fgd.debug_mode is True
    assert fgd.sync.timeout_seconds == 120
    assert fgd.sync.retry_policy.max_attempts == 5
    assert fgd.sync.retry_policy.max_delay == 10.0  # an int is fine where a float is expected
    assert fgd.sync.retry_policy.initial_delay == 1.0  # untouched siblings keep defaults
    assert fgd.directory.validation_mode == "lenient"
    assert fgd.directory.required_subdirs == ("vpcs",)
    assert fgd.ingestion.supported_extensions == (".yaml",)
    assert fgd.monitoring.alert_thresholds.error_rate_percent == 0.5
    assert fgd.ingestion.batch_size == 50


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "# nothing yet\n"), environ={}).fgd == FGDConfig()


@pytest.mark.parametrize(
    ("var", "raw", "read", "expected"),
    [
        ("HEDGEHOG_FGD_ENABLED", "false", lambda f: f.enabled, False),
        ("HEDGEHOG_FGD_DEBUG", "YES", lambda f: f.debug_mode, True),
        ("HEDGEHOG_FGD_SYNC_TIMEOUT", "45", lambda f: f.sync.timeout_seconds, 45),
        ("HEDGEHOG_FGD_BATCH_SIZE", " 7 ", lambda f: f.ingestion.batch_size, 7),
        ("HEDGEHOG_FGD_WORKER_CONCURRENCY", "16", lambda f: f.ingestion.worker_pool_size, 16),
        ("HEDGEHOG_FGD_METRICS_ENABLED", "0", lambda f: f.monitoring.metrics_enabled, False),
        ("HEDGEHOG_FGD_MAX_REQUEST_BODY_BYTES", "2048",
         lambda f: f.api.max_request_body_bytes, 2048),
        ("HEDGEHOG_FGD_FILES_CONTENT_MAX_FILE_BYTES", "10",
         lambda f: f.api.files_content_max_file_bytes, 10),
        ("HEDGEHOG_FGD_FILES_CONTENT_MAX_TOTAL_BYTES", "20",
         lambda f: f.api.files_content_max_total_bytes, 20),
        (
            "HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET",
            SECRET,
            lambda f: f.github.webhook_secret.get_secret_value(),
            SECRET,
        ),
    ],
)
def test_each_env_variable_overrides_the_file(
    tmp_path: Path, var: str, raw: str, read: Any, expected: Any
) -> None:
    path = write(
        tmp_path,
        "fgd:\n  enabled: true\n  debug_mode: false\n  sync: {timeout_seconds: 100}\n"
        "  ingestion: {batch_size: 10, worker_pool_size: 2}\n"
        "  github: {webhook_secret: from-file}\n  monitoring: {metrics_enabled: true}\n",
    )
    assert read(load_settings(path, environ={var: raw}).fgd) == expected
    assert var in ENV_OVERRIDES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("Yes", True)]
    + [("false", False), ("False", False), ("0", False), ("no", False), ("NO", False)],
)
def test_env_booleans(raw: str, expected: bool) -> None:
    assert parse_config({}, environ={"HEDGEHOG_FGD_ENABLED": raw}).enabled is expected


def test_empty_env_variable_counts_as_unset() -> None:
    fgd = parse_config(
        nested("fgd.sync.timeout_seconds", 99), environ={"HEDGEHOG_FGD_SYNC_TIMEOUT": ""}
    )
    assert fgd.sync.timeout_seconds == 99


def test_redis_url_is_refused_naming_the_variable() -> None:
    # FGD Sync uses RabbitMQ: a Redis URL would do nothing, so it is refused, not ignored.
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"HEDGEHOG_FGD_REDIS_URL": "redis://:pw@localhost:6379/1"})
    assert caught.value.details["key"] == "HEDGEHOG_FGD_REDIS_URL"
    assert "HEDGEHOG_FGD_BROKER_URL" in caught.value.message
    assert "pw" not in caught.value.message
    assert load_settings(environ={"HEDGEHOG_FGD_REDIS_URL": ""}).fgd == FGDConfig()


def test_variable_expansion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'fgd:\n  github: {webhook_secret: "${GITHUB_WEBHOOK_SECRET}"}\n'
        '  directory: {validation_mode: "${MODE}", required_subdirs: ["${DIR}"]}\n',
    )
    environ = {"GITHUB_WEBHOOK_SECRET": SECRET, "MODE": "lenient", "DIR": "vpcs"}
    fgd = load_settings(path, environ=environ).fgd
    assert fgd.github.webhook_secret is not None
    assert fgd.github.webhook_secret.get_secret_value() == SECRET
    assert fgd.directory.validation_mode == "lenient"
    assert fgd.directory.required_subdirs[0] == "vpcs"

    # $${VAR} is the escape for a literal ${VAR}; text around a reference is kept.
    escaped = parse_config(
        nested("fgd.github.webhook_secret", "a$${DIR}b-${DIR}"), environ=environ
    ).github.webhook_secret
    assert escaped is not None and escaped.get_secret_value() == "a${DIR}b-vpcs"


def test_unset_variable_expands_to_nothing_not_the_literal(tmp_path: Path) -> None:
    path = write(tmp_path, 'fgd:\n  github:\n    webhook_secret: "${GITHUB_WEBHOOK_SECRET}"\n')
    assert load_settings(path, environ={}).fgd.github.webhook_secret is None
    err = config_error(nested("fgd.directory.validation_mode", "${UNSET_MODE}"))
    assert err.details["key"] == "fgd.directory.validation_mode"


def test_config_file_selection(tmp_path: Path) -> None:
    (tmp_path / "fgd_config.yaml").write_text("fgd: {sync: {timeout_seconds: 1}}\n")
    other = tmp_path / "other.yaml"
    other.write_text("fgd: {sync: {timeout_seconds: 2}}\n")
    third = tmp_path / "third.yaml"
    third.write_text("fgd: {sync: {timeout_seconds: 3}}\n")

    local = load_settings(environ={})
    assert (local.config_path, local.fgd.sync.timeout_seconds) == (Path("fgd_config.yaml"), 1)
    from_env = load_settings(environ={"HEDGEHOG_FGD_CONFIG": str(other)})
    assert (from_env.config_path, from_env.fgd.sync.timeout_seconds) == (other, 2)
    explicit = load_settings(third, environ={"HEDGEHOG_FGD_CONFIG": str(other)})
    assert explicit.fgd.sync.timeout_seconds == 3


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigurationError, match="nope.yaml"):
        load_settings(environ={"HEDGEHOG_FGD_CONFIG": str(missing)})
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_settings(missing, environ={})


def test_runtime_settings_from_environment() -> None:
    environ = {
        "HOME": "/home/op",
        "XDG_DATA_HOME": "/data",
        "HEDGEHOG_FGD_DATABASE_URL": "postgresql://fgd:pw@db:5432/fgd",
        "HEDGEHOG_FGD_BROKER_URL": "amqps://fgd:pw@mq/vhost",
    }
    settings_ = load_settings(environ=environ)
    assert settings_.database_url == "postgresql://fgd:pw@db:5432/fgd"
    assert settings_.broker_url == "amqps://fgd:pw@mq/vhost"
    assert settings_.sqlite_path == Path("/data/fgd/fgd.sqlite3")
    relative_xdg = load_settings(environ={"HOME": "/home/op", "XDG_DATA_HOME": "rel"})
    assert relative_xdg.sqlite_path == Path("/home/op/.local/share/fgd/fgd.sqlite3")
    explicit = load_settings(environ={"HOME": "/h", "HEDGEHOG_FGD_SQLITE_PATH": "~/x.db"})
    assert explicit.sqlite_path == Path("/h/x.db")


@pytest.mark.parametrize(
    ("var", "url"),
    [
        ("HEDGEHOG_FGD_DATABASE_URL", "mysql://root:pw-in-url@db/fgd"),
        ("HEDGEHOG_FGD_BROKER_URL", "redis://:pw-in-url@cache/0"),
    ],
)
def test_wrong_url_scheme_names_the_variable_without_the_url(var: str, url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(environ={var: url})
    assert info.value.details["key"] == var
    assert var in str(info.value)
    assert "pw-in-url" not in str(info.value) + json.dumps(info.value.details)


def test_repr_and_str_hide_url_passwords_and_the_secret() -> None:
    settings_ = load_settings(
        environ={
            "HEDGEHOG_FGD_DATABASE_URL": "postgresql://fgd:dbpass@db/fgd?password=qpass",
            "HEDGEHOG_FGD_BROKER_URL": "amqp://fgd:mqpass@mq//",
            "HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET": SECRET,
        }
    )
    for text in (repr(settings_), str(settings_), repr(settings_.fgd), str(settings_.fgd.github)):
        for leaked in ("dbpass", "qpass", "mqpass", SECRET):
            assert leaked not in text
    assert "fgd:***@db" in repr(settings_)
    assert SECRET not in settings_.fgd.model_dump_json()
    assert redact_url("postgresql://db/fgd") == "postgresql://db/fgd"
    assert redact_url("amqp://user@mq//") == "amqp://user@mq//"


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("fgd:\n  sync: {timeout_seconds: 1\n", "(root)"),  # malformed YAML
        ("fgd: [unclosed\n", "(root)"),
        ("- fgd\n", "(root)"),  # top level is a list
        ("just a string\n", "(root)"),
        ("fgd: {}\n---\nfgd: {}\n", "(root)"),  # two documents
        ("fgd:\n  enabled: true\n  enabled: false\n", "enabled"),  # duplicate key
        ("fgd: !!python/object/apply:os.system [true]\n", "(root)"),  # unsafe tag
        ("fdg: {}\n", "fdg"),  # unknown top-level key
        ("fgd:\n  sync: {timeout_secs: 5}\n", "fgd.sync.timeout_secs"),  # unknown nested key
        ("fgd: null\n", "fgd"),
        ("fgd:\n  sync: 5\n", "fgd.sync"),
        ('fgd:\n  sync: {timeout_seconds: "300"}\n', "fgd.sync.timeout_seconds"),
        ("fgd:\n  sync: {timeout_seconds: 300.0}\n", "fgd.sync.timeout_seconds"),
        ("fgd:\n  sync: {timeout_seconds: 0}\n", "fgd.sync.timeout_seconds"),
        ("fgd:\n  sync: {max_concurrent_syncs: -1}\n", "fgd.sync.max_concurrent_syncs"),
        ("fgd:\n  sync: {retry_policy: {max_attempts: 0}}\n", "fgd.sync.retry_policy.max_attempts"),
        (
            "fgd:\n  sync: {retry_policy: {backoff_factor: 0.5}}\n",
            "fgd.sync.retry_policy.backoff_factor",
        ),
        ("fgd:\n  sync: {retry_policy: {max_delay: .inf}}\n", "fgd.sync.retry_policy.max_delay"),
        (
            "fgd:\n  sync: {retry_policy: {initial_delay: 5, max_delay: 1}}\n",
            "fgd.sync.retry_policy.max_delay",
        ),
        ('fgd:\n  enabled: "true"\n', "fgd.enabled"),
        ("fgd:\n  directory: {validation_mode: loose}\n", "fgd.directory.validation_mode"),
        ("fgd:\n  directory: {required_subdirs: [../etc]}\n", "fgd.directory.required_subdirs[0]"),
        (
            "fgd:\n  ingestion: {supported_extensions: [yaml]}\n",
            "fgd.ingestion.supported_extensions[0]",
        ),
        ("fgd:\n  ingestion: {supported_extensions: []}\n", "fgd.ingestion.supported_extensions"),
        (
            "fgd:\n  ingestion: {supported_extensions: .yaml}\n",
            "fgd.ingestion.supported_extensions",
        ),
        (
            "fgd:\n  ingestion: {validation_rules: {max_documents_per_file: 0}}\n",
            "fgd.ingestion.validation_rules.max_documents_per_file",
        ),
        ("fgd:\n  github: {rate_limit_buffer: -1}\n", "fgd.github.rate_limit_buffer"),
        ("fgd:\n  github: {webhook_secret: 12345}\n", "fgd.github.webhook_secret"),
        (
            "fgd:\n  monitoring: {alert_thresholds: {error_rate_percent: 101}}\n",
            "fgd.monitoring.alert_thresholds.error_rate_percent",
        ),
    ],
)
def test_bad_file_raises_configuration_error_naming_the_key(
    tmp_path: Path, text: str, key: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(write(tmp_path, text), environ={})
    err = info.value
    assert err.code == "FGD_1003"
    assert err.details["key"] == key
    assert err.details["problem"]
    assert err.details["problems"][0] == {"key": key, "problem": err.details["problem"]}
    assert f"{key}:" in str(err)


def test_invalid_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "fgd_config.yaml"
    path.write_bytes(b"fgd:\n  debug_mode: \xff\n")
    with pytest.raises(ConfigurationError, match="UTF-8"):
        load_settings(path, environ={})


def test_several_problems_are_all_reported() -> None:
    err = config_error(
        {"fgd": {"sync": {"timeout_seconds": 0, "bogus": 1}, "debug_mode": "no"}},
        environ={"HEDGEHOG_FGD_BATCH_SIZE": "many"},
    )
    keys = {problem["key"] for problem in err.details["problems"]}
    assert keys == {
        "fgd.sync.timeout_seconds",
        "fgd.sync.bogus",
        "fgd.debug_mode",
        "HEDGEHOG_FGD_BATCH_SIZE",
    }
    assert all(key in str(err) for key in keys)


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("HEDGEHOG_FGD_ENABLED", "maybe"),
        ("HEDGEHOG_FGD_DEBUG", "on"),
        ("HEDGEHOG_FGD_METRICS_ENABLED", "2"),
        ("HEDGEHOG_FGD_SYNC_TIMEOUT", "5m"),
        ("HEDGEHOG_FGD_SYNC_TIMEOUT", "1.5"),
        ("HEDGEHOG_FGD_SYNC_TIMEOUT", "0"),  # parses, but out of range
        ("HEDGEHOG_FGD_BATCH_SIZE", "-3"),
        ("HEDGEHOG_FGD_WORKER_CONCURRENCY", "four"),
    ],
)
def test_bad_env_variable_names_the_variable(var: str, raw: str) -> None:
    err = config_error({}, environ={var: raw})
    assert err.details["key"] == var
    assert var in str(err)


@given(
    raw=st.text(max_size=8).filter(
        lambda s: s.strip().lower() not in {"true", "false", "1", "0", "yes", "no", ""}
    )
)
def test_any_other_boolean_spelling_is_rejected(raw: str) -> None:
    err = config_error({}, environ={"HEDGEHOG_FGD_METRICS_ENABLED": raw})
    assert err.details["key"] == "HEDGEHOG_FGD_METRICS_ENABLED"


def test_secret_never_appears_in_errors(tmp_path: Path) -> None:
    # A bad value elsewhere, the secret from the environment.
    err = config_error(
        {"fgd": {"github": {"read_timeout": "x"}}},
        environ={"HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET": SECRET, "HEDGEHOG_FGD_DEBUG": "bad"},
    )
    assert SECRET not in str(err) + repr(err) + json.dumps(err.details)
    # The secret in the file, on a line that breaks the YAML (PyYAML would quote that line).
    path = write(tmp_path, f"fgd:\n  github:\n    webhook_secret: {SECRET}: oops\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(path, environ={})
    assert SECRET not in str(info.value) + json.dumps(info.value.details)
    # The secret in the file next to an unknown key.
    path = write(tmp_path, f"fgd:\n  github: {{webhook_secret: {SECRET}, bogus: 1}}\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings(path, environ={})
    assert info.value.details["key"] == "fgd.github.bogus"
    assert SECRET not in str(info.value) + json.dumps(info.value.details)


def _int_fields(model: type[BaseModel], prefix: str) -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            paths += _int_fields(field.annotation, f"{prefix}.{name}")
        elif field.annotation is int:
            paths.append(f"{prefix}.{name}")
    return paths


INT_FIELDS = _int_fields(FGDConfig, "fgd")
WRONG_FOR_INT = st.one_of(
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=10),
    st.integers().map(str),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def test_int_fields_were_found() -> None:
    assert "fgd.sync.timeout_seconds" in INT_FIELDS
    assert "fgd.monitoring.alert_thresholds.queue_depth" in INT_FIELDS
    assert "fgd.hedgehog.fabric_mtu" in INT_FIELDS
    # the spec's 13, fgd.hedgehog's 5, fgd.api's 3 bounds, fgd.cli's pickup timeout and
    # alert_thresholds.relay_lag_seconds, fgd.caches' 2
    assert len(INT_FIELDS) == 25


@settings(max_examples=300)
@given(field=st.sampled_from(INT_FIELDS), value=WRONG_FOR_INT)
def test_wrong_typed_integer_values_always_name_the_field(field: str, value: Any) -> None:
    err = config_error(nested(field, value))
    assert err.details["key"] == field
    assert f"{field}:" in str(err)


# --- JSON Schema ----------------------------------------------------------------------------------


def test_committed_schema_file_is_the_generated_schema(tmp_path: Path) -> None:
    expected = json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == expected
    write_config_schema(tmp_path / "out.json")
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == expected


def test_schema_is_draft07_without_2020_12_constructs() -> None:
    schema = config_json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    text = json.dumps(schema)
    assert "$defs" not in text and "prefixItems" not in text
    assert "#/definitions/FGDConfig" in text


def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_spec_example_validates_against_the_schema_file() -> None:
    _validator().validate(yaml.safe_load(SPEC_YAML))
    _validator().validate({"fgd": FGDConfig().model_dump(mode="json", by_alias=True)})


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["fgd"]["sync"].update(timeout_secs=5),  # unknown key
        lambda d: d.update(extra={}),
        lambda d: d["fgd"]["sync"].update(timeout_seconds="300"),
        lambda d: d["fgd"]["directory"].update(validation_mode="loose"),
        lambda d: d["fgd"]["ingestion"].update(supported_extensions=["yaml"]),
    ],
)
def test_schema_file_rejects_what_the_loader_rejects(mutate: Any) -> None:
    document = yaml.safe_load(SPEC_YAML)
    mutate(document)
    assert not _validator().is_valid(document)
