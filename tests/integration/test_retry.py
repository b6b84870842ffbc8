"""The retry policy against a real git smart-HTTP server on 127.0.0.1 (``tests.gitserver``):
rate-limited pushes honour ``Retry-After`` within the policy, dropped connections are
retried, authentication failures are not; every retry is a recorded ``sync.error``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fgd_core.adapters.testing import RecordingEventBus
from fgd_core.application.app import FGDApplication
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.config import FGDConfig, load_settings
from tests.gitserver import GitHTTPServer, git, init_bare, seed_repo
from tests.resources import vpc

VPC = vpc("vpc-a", 1)
MANAGED = "gitops/managed/vpcs/vpc-a.yaml"
MAX_ATTEMPTS = 3


@pytest.fixture
def config(tmp_path: Path) -> FGDConfig:
    """A small retry policy (from a config file, as an operator would set it): 3 attempts,
    0.05 s then 0.1 s between them, no wait longer than 2 s."""
    path = tmp_path / "fgd_config.yaml"
    path.write_text(
        "fgd:\n"
        "  sync:\n"
        "    timeout_seconds: 60\n"
        "    retry_policy:\n"
        f"      max_attempts: {MAX_ATTEMPTS}\n"
        "      initial_delay: 0.05\n"
        "      backoff_factor: 2.0\n"
        "      max_delay: 2.0\n",
        encoding="utf-8",
    )
    return load_settings(path, environ={}).fgd


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitHTTPServer]:
    with GitHTTPServer(tmp_path / "srv") as srv:
        yield srv


@pytest.fixture
def bare(server: GitHTTPServer) -> Path:
    repo = init_bare(server.root / "fabric.git")
    seed_repo(repo, {"gitops/raw/a.yaml": VPC})
    return repo


def head(bare: Path) -> str:
    return git("rev-parse", "main", cwd=bare).strip()


def files(bare: Path) -> list[str]:
    return git("ls-tree", "-r", "--name-only", "main", cwd=bare).split()


def when_stage_starts(app: FGDApplication, stage: str, action: Callable[[], None]) -> None:
    """Run ``action`` once, as soon as ``stage`` begins (before its first git request)."""
    done: list[bool] = []

    def hook(stored: list[tuple[int, dict[str, Any]]]) -> None:
        for _, envelope in stored:
            if (not done and envelope["event_type"] == "stage.started"
                    and envelope["payload"]["stage"] == stage):
                done.append(True)
                action()

    app.subscribe(hook)


def retried(bus: RecordingEventBus) -> list[dict[str, Any]]:
    return [e.payload for e in bus.of_type("sync.error") if e.payload["details"].get("retrying")]


def test_push_rate_limited_once_waits_retry_after_and_completes(
    app: FGDApplication, config: FGDConfig, server: GitHTTPServer, bare: Path
) -> None:
    fabric = app.register_fabric("lab", server.url("fabric.git"))
    bus = RecordingEventBus().attach(app)
    marks: dict[str, int] = {}

    def limit() -> None:
        marks["limited"] = len(server.requests)
        server.fail_next(429, headers={"Retry-After": "1"})

    when_stage_starts(app, "github_sync", limit)
    started = time.monotonic()
    result = SyncRunner(app, config).run(fabric.fabric_id)
    elapsed = time.monotonic() - started

    assert result.ok and result.pushed and head(bare) == result.commit
    assert MANAGED in files(bare)
    assert elapsed >= 1.0  # Retry-After: 1 honoured (the backoff alone would be 0.05 s)
    push_requests = server.requests[marks["limited"]:]
    assert push_requests[0][2] == 429 and all(s == 200 for _, _, s in push_requests[1:])
    errors = retried(bus)
    assert [e["code"] for e in errors] == ["FGD_4003"]
    assert errors[0]["details"]["retry_after_seconds"] == 1
    assert errors[0]["details"]["retry_in_seconds"] == 1.0
    assert errors[0]["details"]["http_status"] == 429
    assert result.sync.errors == [
        {"code": e["code"], "message": e["message"], "details": e["details"]} for e in errors]


def test_push_rate_limited_more_than_max_attempts_fails_4003_and_changes_nothing(
    app: FGDApplication, config: FGDConfig, server: GitHTTPServer, bare: Path
) -> None:
    before = head(bare)
    fabric = app.register_fabric("lab", server.url("fabric.git"))
    bus = RecordingEventBus().attach(app)
    when_stage_starts(app, "github_sync", lambda: server.fail_next(
        429, count=MAX_ATTEMPTS + 1, headers={"Retry-After": "0"}))
    result = SyncRunner(app, config).run(fabric.fabric_id)

    assert result.sync.state == "failed"
    final = result.sync.errors[-1]
    assert final["code"] == "FGD_4003" and final["details"]["attempts"] == MAX_ATTEMPTS
    assert final["details"]["stage"] == "github_sync"
    assert head(bare) == before and MANAGED not in files(bare)
    assert [s for _, _, s in server.requests].count(429) == MAX_ATTEMPTS
    assert [e["code"] for e in retried(bus)] == ["FGD_4003"] * (MAX_ATTEMPTS - 1)
    git("fsck", "--strict", cwd=bare)


def test_rate_limit_longer_than_max_delay_fails_at_once(
    app: FGDApplication, config: FGDConfig, server: GitHTTPServer, bare: Path
) -> None:
    before = head(bare)
    fabric = app.register_fabric("lab", server.url("fabric.git"))
    when_stage_starts(app, "github_sync", lambda: server.fail_next(
        429, headers={"X-RateLimit-Reset": str(int(time.time()) + 3600)}))
    started = time.monotonic()
    result = SyncRunner(app, config).run(fabric.fabric_id)
    assert result.sync.state == "failed" and result.sync.errors[-1]["code"] == "FGD_4003"
    assert result.sync.errors[-1]["details"]["retry_after_seconds"] > 2
    assert len(result.sync.errors) == 1 and time.monotonic() - started < 10
    assert head(bare) == before


@pytest.mark.parametrize("stage", ["validation", "github_sync"])
def test_dropped_connection_once_is_retried_and_completes(
    app: FGDApplication, config: FGDConfig, server: GitHTTPServer, bare: Path, stage: str
) -> None:
    fabric = app.register_fabric("lab", server.url("fabric.git"))
    bus = RecordingEventBus().attach(app)
    when_stage_starts(app, stage, server.drop_next)
    result = SyncRunner(app, config).run(fabric.fabric_id)

    assert result.ok and result.pushed and head(bare) == result.commit
    assert MANAGED in files(bare)
    assert [s for _, _, s in server.requests].count(0) == 1  # the dropped one
    errors = retried(bus)
    assert [e["code"] for e in errors] == ["FGD_4001"]
    assert errors[0]["details"]["attempt"] == 1 and errors[0]["details"]["retry_in_seconds"] == 0.05
    git("fsck", "--strict", cwd=bare)


def test_unauthorized_push_fails_4002_after_one_attempt(
    app: FGDApplication, config: FGDConfig, server: GitHTTPServer, bare: Path
) -> None:
    before = head(bare)
    fabric = app.register_fabric("lab", server.url("fabric.git"))
    bus = RecordingEventBus().attach(app)
    marks: dict[str, int] = {}

    def deny() -> None:
        marks["denied"] = len(server.requests)
        server.fail_next(401, headers={"WWW-Authenticate": 'Basic realm="fgd-test"'})

    when_stage_starts(app, "github_sync", deny)
    result = SyncRunner(app, config).run(fabric.fabric_id)

    assert result.sync.state == "failed"
    assert [e["code"] for e in result.sync.errors] == ["FGD_4002"]
    assert server.requests[marks["denied"]:] == [
        (server.requests[marks["denied"]][0], server.requests[marks["denied"]][1], 401)]
    assert retried(bus) == [] and head(bare) == before


def test_wrong_token_fails_4002_on_the_first_request(
    app: FGDApplication, config: FGDConfig, server: GitHTTPServer, bare: Path
) -> None:
    server.token = "s3cret"
    fabric = app.register_fabric("lab", server.url("fabric.git"))
    result = SyncRunner(app, config, token="wrong").run(fabric.fabric_id)
    assert result.sync.state == "failed"
    assert [e["code"] for e in result.sync.errors] == ["FGD_4002"]
    assert [s for _, _, s in server.requests] == [401]
