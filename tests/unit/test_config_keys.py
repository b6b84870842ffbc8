"""No silent no-ops (issue 13): every key of fgd_config.yaml and every HEDGEHOG_FGD_* variable
either acts — a test proves it, named in the table below, and product code reads it — or is
refused when the configuration loads, naming it.

Pure: reads the models and the source files, runs the planner; no service. Add a key and
this test fails until the table says which test proves it acts (or that it is refused).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from fgd_core.config import ENV_OVERRIDES, REDIS_URL_ENV, ConfigFile, load_settings, parse_config
from fgd_core.errors import ConfigurationError
from fgd_core.ingestion.hedgehog.fabric_config import HedgehogConfig
from fgd_core.ingestion.plan import IngestionRules, RawFile, plan_sync

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("fgd_core", "fgd_workers", "fgd_api")
TRUTH = "tests/integration/test_config_truth.py"
THIS = "tests/unit/test_config_keys.py"
# Where the configuration is defined and read (the file model, the environment, Settings).
CONFIG_MODULES = ("config.py", "config_env.py", "config_model.py")

# key → the test that shows it acts ("path::name"). One test may prove several keys.
ACTS: dict[str, str] = {
    "fgd.enabled": f"{TRUTH}::test_enabled_false_refuses_every_sync_with_fgd_3004",
    "fgd.debug_mode": f"{TRUTH}::test_fgd_serve_logs_at_debug_and_hides_metrics_as_configured",
    "fgd.sync.timeout_seconds": "tests/integration/test_sync_runner.py::"
    "test_timeout_fails_the_sync_with_3002",
    "fgd.sync.max_concurrent_syncs": "tests/integration/test_scheduler.py::"
    "test_max_concurrent_syncs_is_respected",
    "fgd.sync.retry_policy.max_attempts": "tests/integration/test_retry.py::"
    "test_push_rate_limited_more_than_max_attempts_fails_4003_and_changes_nothing",
    "fgd.sync.retry_policy.initial_delay": "tests/unit/test_fake_remote.py::"
    "test_backoff_grows_by_the_factor_and_is_capped",
    "fgd.sync.retry_policy.backoff_factor": "tests/unit/test_fake_remote.py::"
    "test_backoff_grows_by_the_factor_and_is_capped",
    "fgd.sync.retry_policy.max_delay": "tests/integration/test_retry.py::"
    "test_rate_limit_longer_than_max_delay_fails_at_once",
    "fgd.directory.auto_initialize": f"{TRUTH}::"
    "test_auto_initialize_initializes_a_missing_directory_before_the_sync",
    "fgd.directory.auto_repair": f"{TRUTH}::"
    "test_auto_repair_off_fails_the_sync_with_fgd_2004_and_rewrites_nothing",
    "fgd.directory.validation_mode": "tests/integration/test_directory.py::"
    "test_lenient_mode_downgrades_subdirs_and_unsupported_files",
    "fgd.directory.required_subdirs": f"{TRUTH}::"
    "test_auto_initialize_initializes_a_missing_directory_before_the_sync",
    "fgd.ingestion.batch_size": f"{TRUTH}::test_batch_size_is_files_per_save",
    "fgd.ingestion.max_file_size_mb": f"{THIS}::test_ingestion_keys_reach_the_planner",
    "fgd.ingestion.worker_pool_size": f"{TRUTH}::test_worker_processes_follow_the_configuration",
    "fgd.ingestion.supported_extensions": f"{THIS}::test_ingestion_keys_reach_the_planner",
    "fgd.ingestion.validation_rules.enforce_namespaces":
        f"{THIS}::test_ingestion_keys_reach_the_planner",
    "fgd.ingestion.validation_rules.require_labels":
        f"{THIS}::test_ingestion_keys_reach_the_planner",
    "fgd.ingestion.validation_rules.max_documents_per_file":
        f"{THIS}::test_ingestion_keys_reach_the_planner",
    "fgd.github.enabled": f"{TRUTH}::test_github_disabled_never_pushes_and_says_so",
    "fgd.github.rate_limit_buffer": f"{TRUTH}::test_rate_limit_buffer_keeps_requests_in_reserve",
    "fgd.github.connection_timeout": f"{TRUTH}::test_git_timeouts_come_from_the_configuration",
    "fgd.github.read_timeout": f"{TRUTH}::test_git_timeouts_come_from_the_configuration",
    "fgd.github.webhook_secret": "tests/integration/test_webhooks.py::"
    "test_bad_or_missing_signature_is_401_and_only_the_audit_is_stored",
    "fgd.github.token_hosts": "tests/integration/test_sync_runner.py::"
    "test_sync_over_https_with_a_token_sent_only_to_the_token_hosts",
    "fgd.monitoring.metrics_enabled": f"{TRUTH}::"
    "test_metrics_enabled_turns_the_api_metrics_on_and_off",
    "fgd.monitoring.health_check_interval": f"{TRUTH}::"
    "test_worker_processes_follow_the_configuration",
    "fgd.api.max_request_body_bytes": f"{TRUTH}::test_api_bounds_come_from_the_configuration",
    "fgd.api.files_content_max_file_bytes": "tests/integration/test_edges.py::"
    "test_include_content_is_capped_per_file_and_in_total",
    "fgd.api.files_content_max_total_bytes": "tests/integration/test_edges.py::"
    "test_include_content_is_capped_per_file_and_in_total",
    "fgd.repositories.allowed": "tests/integration/test_repository_policy.py::"
    "test_a_configure_token_cannot_point_its_fabric_outside_the_policy",
    "fgd.cli.pickup_timeout_seconds": "tests/integration/test_cli_workers.py::"
    "test_with_no_worker_fgd_sync_says_so_and_exits_4_within_the_pickup_timeout",
    "fgd.caches.worker_aggregates": "tests/unit/test_bootstrap.py::"
    "test_worker_caches_come_from_the_settings",
    "fgd.caches.scheduler_aggregates": "tests/unit/test_bootstrap.py::"
    "test_worker_caches_come_from_the_settings",
}
# Every fgd.hedgehog key reaches the fabric rules (the rules' own tests prove each rule).
ACTS |= {f"fgd.hedgehog.{name}": f"{THIS}::test_hedgehog_keys_reach_the_fabric_rules"
         for name in HedgehogConfig.model_fields}

# alert_thresholds: health and /metrics (tests/integration/test_health.py).
HEALTH = "tests/integration/test_health.py"
ACTS |= {
    "fgd.monitoring.alert_thresholds.sync_duration_seconds":
        f"{HEALTH}::test_active_syncs_are_exact_and_thresholds_act",
    "fgd.monitoring.alert_thresholds.error_rate_percent":
        f"{HEALTH}::test_active_syncs_are_exact_and_thresholds_act",
    "fgd.monitoring.alert_thresholds.queue_depth":
        f"{HEALTH}::test_a_queue_with_messages_and_no_consumer_is_unhealthy_naming_it",
    "fgd.monitoring.alert_thresholds.relay_lag_seconds":
        f"{HEALTH}::test_a_read_model_that_stops_moving_is_a_stall",
}
# Keys some other work makes act; empty, so that a gap would be visible rather than silent.
OWNED_ELSEWHERE: dict[str, str] = {}

# Variables read outside ENV_OVERRIDES (where state lives, processes' own switches) → the
# test that shows each acts, or "refused".
RUNTIME_ENV: dict[str, str] = {
    "HEDGEHOG_FGD_CONFIG": f"{TRUTH}::test_worker_processes_follow_the_configuration",
    "HEDGEHOG_FGD_DATABASE_URL": f"{TRUTH}::test_enabled_false_refuses_every_sync_with_fgd_3004",
    "HEDGEHOG_FGD_SQLITE_PATH": f"{TRUTH}::test_metrics_enabled_turns_the_api_metrics_on_and_off",
    "HEDGEHOG_FGD_BROKER_URL": f"{TRUTH}::test_worker_processes_follow_the_configuration",
    "HEDGEHOG_FGD_QUEUE_PREFIX": f"{TRUTH}::test_worker_processes_follow_the_configuration",
    REDIS_URL_ENV: "refused",
}


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += leaf_keys(annotation, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_key_is_accounted_for() -> None:
    keys = set(leaf_keys(ConfigFile))
    listed = set(ACTS) | set(OWNED_ELSEWHERE)
    assert keys - listed == set(), "keys nobody shows to act: add a test and list it"
    assert listed - keys == set(), "stale entries: the key is gone"
    assert set(ACTS).isdisjoint(OWNED_ELSEWHERE)


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


@pytest.mark.parametrize("proof", sorted(set(ACTS.values()) | {
    v for v in RUNTIME_ENV.values() if v != "refused"}))
def test_each_named_proof_exists(proof: str) -> None:
    path, _, name = proof.partition("::")
    assert name in _test_names(ROOT / path), f"{proof} does not exist"


def _product_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for package in PRODUCT
                     for p in sorted((ROOT / package).rglob("*.py"))
                     if p.name not in CONFIG_MODULES)


@pytest.mark.parametrize("key", sorted(ACTS))
def test_each_acting_key_is_read_by_product_code(key: str) -> None:
    leaf = key.rsplit(".", 1)[1]
    reads = re.findall(rf"\.{leaf}\b", _product_source())
    # A hedgehog key is read twice at least: copied into FabricConfig, then used by a rule.
    assert len(reads) >= (2 if key.startswith("fgd.hedgehog.") else 1), f"nothing reads {key}"


def test_every_override_variable_sets_a_key_that_acts() -> None:
    for var, (path, _) in ENV_OVERRIDES.items():
        assert ".".join(path) in ACTS, f"{var} sets {'.'.join(path)}, which does not act"


def test_every_variable_the_product_reads_is_accounted_for() -> None:
    read = set(re.findall(r"HEDGEHOG_FGD_[A-Z_]+[A-Z]", _product_source()))
    for name in CONFIG_MODULES:
        read |= set(re.findall(r"HEDGEHOG_FGD_[A-Z_]+[A-Z]",
                               (ROOT / "fgd_core" / name).read_text(encoding="utf-8")))
    # Read by the processes themselves (CLI options, pools, test hooks): each is an option
    # of its command with its own help, documented where it is used.
    process_options = {
        "HEDGEHOG_FGD_API_POOL_SIZE", "HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW",
        "HEDGEHOG_FGD_COMMANDS_QUEUE", "HEDGEHOG_FGD_METRICS_HOST", "HEDGEHOG_FGD_TRACING",
        "HEDGEHOG_FGD_SCHEDULER_TICK", "HEDGEHOG_FGD_GIT_CACHE", "HEDGEHOG_FGD_TOKEN",
        "HEDGEHOG_FGD_TEST_HANDLER_DELAY", "HEDGEHOG_FGD_GITHUB_TOKEN", "HEDGEHOG_FGD_API_URL",
    }
    unknown = read - set(ENV_OVERRIDES) - set(RUNTIME_ENV) - process_options
    assert unknown == set(), f"variables read but not accounted for: {sorted(unknown)}"


def test_refused_variables_are_refused_naming_them() -> None:
    for var, verdict in RUNTIME_ENV.items():
        if verdict != "refused":
            continue
        with pytest.raises(ConfigurationError) as caught:
            load_settings(environ={var: "something"})
        assert caught.value.details["key"] == var


# --- proofs that need no service --------------------------------------------------------------

VPC = b"""apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: vpc-1
  namespace: %s
spec:
  subnets:
    default: {subnet: 10.0.1.0/24, gateway: 10.0.1.1, vlan: 1001}
"""


def _status(config_doc: dict[str, object], path: str, content: bytes) -> str:
    rules = IngestionRules.from_config(parse_config(config_doc, environ={}), "gitops")
    plan = plan_sync({path: RawFile(content)}, {}, [path], {}, "sync-1", rules)
    return plan.files[0].status


def _ingestion(**values: object) -> dict[str, object]:
    return {"fgd": {"ingestion": values}}


def _rules(**values: object) -> dict[str, object]:
    return _ingestion(validation_rules=values)


def test_ingestion_keys_reach_the_planner() -> None:
    good = VPC % b"default"
    raw = "gitops/raw/vpc.yaml"
    assert _status({}, raw, good) == "processed"
    assert _status(_ingestion(supported_extensions=[".yml"]), raw, good) == "skipped"
    assert _status(_ingestion(max_file_size_mb=1), raw, good + b"#" * 1_100_000) == "failed"
    three = b"---\n".join([good, good.replace(b"vpc-1", b"vpc-2").replace(b".1.", b".2.")
                           .replace(b"1001", b"1002"),
                           good.replace(b"vpc-1", b"vpc-3").replace(b".1.", b".3.")
                           .replace(b"1001", b"1003")])
    assert _status({}, raw, three) == "processed"
    assert _status(_rules(max_documents_per_file=2), raw, three) == "failed"
    other_namespace = VPC % b"lab"
    assert _status({}, raw, other_namespace) == "failed"
    assert _status(_rules(enforce_namespaces=False), raw, other_namespace) == "processed"
    assert _status(_rules(require_labels=True), raw, good) == "failed"


@pytest.mark.parametrize("name", sorted(HedgehogConfig.model_fields))
def test_hedgehog_keys_reach_the_fabric_rules(name: str) -> None:
    changed = {
        "reserved_subnets": ["192.168.0.0/16"],
        "vpc_irb_vlans": [{"from": 3000, "to": 3001}],
        "th5_workaround_vlans": [{"from": 3900, "to": 3901}],
        "fabric_mtu": 9000,
        "server_facing_mtu_offset": 100,
        "vpc_peering_disabled": True,
        "allow_extra_switch_profiles": True,
        "fabric_subnet": "172.31.128.0/17",
        "management_subnet": "172.31.0.0/21",
        "management_dhcp_start": "172.31.4.0",
        "control_vip": "172.31.0.1/32",
        "protocol_subnet": "172.31.8.0/22",
        "vtep_subnet": "172.31.12.0/22",
        "spine_asn": 65000,
        "leaf_asn_start": 65102,
        "leaf_asn_end": 65500,
    }
    assert set(changed) == set(HedgehogConfig.model_fields), "a new hedgehog key: add it"
    default = parse_config({}, environ={}).hedgehog.fabric_config()
    configured = parse_config({"fgd": {"hedgehog": {name: changed[name]}}},
                              environ={}).hedgehog.fabric_config()
    assert configured != default
    rules = IngestionRules.from_config(
        parse_config({"fgd": {"hedgehog": {name: changed[name]}}}, environ={}), "gitops")
    assert rules.fabric == configured  # the planner's rules carry it
