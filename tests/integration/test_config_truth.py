"""Every configuration key does what its name says (issue 13, "no silent no-ops"): each test
here proves one key acts, against the real event store (SQLite and PostgreSQL), real git
repositories, the real HTTP app and real worker processes. ``tests/unit/test_config_keys``
maps every key and variable to the test that proves it (or to its refusal)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.app import FGDApplication
from fgd_core.application.steps import SyncSteps
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.bootstrap import build_runner
from fgd_core.config import FGDConfig, Settings, load_settings
from tests.gitserver import git, init_bare, seed_repo
from tests.resources import vpc

BAD_VPC = vpc("bad", 9).replace(b"vlan: 1009", b"vlan: 99999")


def commits(bare: Path) -> int:
    return int(git("rev-list", "--count", "main", cwd=bare))


def tree(bare: Path) -> list[str]:
    return git("ls-tree", "-r", "--name-only", "main", cwd=bare).split()


def settings_for(tmp_path: Path, database_url: str | None, **env: str) -> Settings:
    environ = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"),
               "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": f"{tmp_path}/", **env}
    if database_url:
        environ["HEDGEHOG_FGD_DATABASE_URL"] = database_url
    return load_settings(environ=environ)


def with_keys(config: FGDConfig, section: str, **values: Any) -> FGDConfig:
    return config.model_copy(update={section: getattr(config, section).model_copy(
        update=values)})


# --- options.force_refresh ----------------------------------------------------------------


def distributed_sync(app: FGDApplication, steps: SyncSteps, fabric_id: int,
                     options: dict[str, Any] | None = None) -> Any:
    """One sync through the distributed steps (discover, ingest each file, publish) in this
    process, in the order the workers run them."""
    sync_id = app.start_sync(fabric_id, "manual", options).sync_id
    steps.discover(sync_id)
    for path, record in sorted(app.get_sync(sync_id).files.items()):
        steps.ingest(sync_id, path, record.get("blob_id"))
    steps.publish(sync_id)
    return app.get_sync(sync_id)


@pytest.mark.parametrize("engine", ["embedded", "distributed"])
def test_force_refresh_retries_a_failed_file_even_if_unchanged(
    app: FGDApplication, tmp_path: Path, engine: str
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/good.yaml": vpc("good", 1), "gitops/raw/bad.yaml": BAD_VPC})
    fabric = app.register_fabric("lab", str(repo))
    config = load_settings(environ={}).fgd
    if engine == "embedded":
        runner = SyncRunner(app, config)

        def sync(options: dict[str, Any] | None = None) -> Any:
            return runner.run(fabric.fabric_id, "manual", options).sync
    else:
        steps = SyncSteps(app, config, cache_root=tmp_path / "cache")

        def sync(options: dict[str, Any] | None = None) -> Any:
            return distributed_sync(app, steps, fabric.fabric_id, options)

    first = sync()
    assert first.state == "completed"
    assert first.files["gitops/raw/bad.yaml"]["status"] == "failed"
    again = sync()  # unchanged since it failed: skipped
    assert again.files["gitops/raw/bad.yaml"]["status"] == "skipped"
    forced = sync({"force_refresh": True})
    bad = forced.files["gitops/raw/bad.yaml"]
    assert bad["status"] == "failed"  # validated again, with its errors
    assert any("4094" in e["message"] or "vlan" in str(e.get("field"))
               for e in bad["validation_errors"])
    assert forced.state == "completed"
    # and the sync after the forced one skips it again (still recorded as failing)
    assert sync().files["gitops/raw/bad.yaml"]["status"] == "skipped"


# --- fgd.enabled --------------------------------------------------------------------------


def test_enabled_false_refuses_every_sync_with_fgd_3004(
    tmp_path: Path, database_url: str | None
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("a", 1)})
    settings = settings_for(tmp_path, database_url, HEDGEHOG_FGD_ENABLED="false")
    container = Container.build(settings)
    try:
        fabric = container.app.register_fabric("lab", str(repo))
        with TestClient(create_app(container)) as client:
            from fgd_core.application.auth import create_token

            key, _ = create_token(container.app, "admin", superuser=True)
            answer = client.post(
                f"/api/plugins/hedgehog/fabrics/{fabric.fabric_id}/gitops-sync/",
                json={}, headers={"Authorization": f"Token {key}"})
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "FGD_3004"
        assert "fgd.enabled" in error["message"]
        with pytest.raises(Exception) as caught:  # the library and the CLI: the same refusal
            container.runner.run(fabric.fabric_id)
        assert getattr(caught.value, "code", None) == "FGD_3004"
        assert container.app.get_fabric(fabric.fabric_id).sync_ids == []
        assert commits(repo) == 1
    finally:
        container.close()


def test_enabled_false_scheduler_starts_nothing(tmp_path: Path) -> None:
    from fgd_workers.scheduler import Scheduler

    settings = settings_for(tmp_path, None, HEDGEHOG_FGD_ENABLED="0")
    app, _ = build_runner(settings)
    try:
        fabric = app.register_fabric("lab", "https://github.com/example/fabric.git")
        report = Scheduler(app, settings.fgd.sync).tick()
        assert report.started == []
        assert {"fabric_id": fabric.fabric_id, "trigger": "fabric_created",  # its first
                "reason": "disabled"} in report.skipped
    finally:
        app.close()


# --- fgd.github.enabled -------------------------------------------------------------------


def test_github_disabled_never_pushes_and_says_so(
    tmp_path: Path, database_url: str | None
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/raw/a.yaml": vpc("a", 1)})
    before = git("rev-parse", "main", cwd=repo)
    settings = settings_for(tmp_path, database_url)
    settings = settings.model_copy(
        update={"fgd": with_keys(settings.fgd, "github", enabled=False)})
    app, runner = build_runner(settings)
    try:
        fabric = app.register_fabric("lab", str(repo))
        result = runner.run(fabric.fabric_id)
        assert result.ok and not result.pushed
        assert result.sync.options["include_github_sync"] is False
        assert result.sync.files["gitops/raw/a.yaml"]["status"] == "processed"
        assert any("github.enabled" in w["message"] for w in result.sync.warnings)
        assert git("rev-parse", "main", cwd=repo) == before  # the remote is untouched
        # Directory writes push too: refused, naming the key.
        from fgd_core.application.gitops_ops import GitOpsService

        for operation, code in ((GitOpsService(runner).initialize_directory, "FGD_2003"),
                                (GitOpsService(runner).repair_directory, "FGD_2004")):
            with pytest.raises(Exception) as caught:
                operation(fabric.fabric_id)
            assert getattr(caught.value, "code", None) == code
            assert "github.enabled" in str(caught.value)
        assert git("rev-parse", "main", cwd=repo) == before
    finally:
        app.close()



# --- fgd.github.rate_limit_buffer ---------------------------------------------------------


@pytest.mark.parametrize("buffer", [10, 4])
def test_rate_limit_buffer_keeps_requests_in_reserve(
    app: FGDApplication, tmp_path: Path, buffer: int
) -> None:
    import time

    from fgd_core.adapters import rate_reserve
    from tests.gitserver import GitHTTPServer

    rate_reserve.release_all()
    with GitHTTPServer(tmp_path / "srv") as server:
        bare = init_bare(tmp_path / "srv" / "fabric.git")
        seed_repo(bare, {"gitops/raw/a.yaml": vpc("a", 1)})
        # The host says 5 requests are left until the reset in 5 minutes.
        server.extra_headers = {"X-RateLimit-Remaining": "5",
                                "X-RateLimit-Reset": str(int(time.time()) + 300)}
        fabric = app.register_fabric("lab", server.url("fabric.git"))
        config = with_keys(load_settings(environ={}).fgd, "github", rate_limit_buffer=buffer)
        result = SyncRunner(app, config, sleep=lambda _: None).run(fabric.fabric_id)
        try:
            if buffer >= 5:  # 5 left is within the reserve: the first answer stops the rest
                assert result.sync.state == "failed"
                error = result.sync.errors[-1]
                assert error["code"] == "FGD_4003"
                assert "rate_limit_buffer" in error["message"]
                assert len(server.requests) == 1  # nothing was sent after that answer
                assert commits(bare) == 1
            else:  # 5 left, 4 kept: the sync goes ahead
                assert result.ok and result.pushed, result.sync.errors
        finally:
            rate_reserve.release_all()


# --- fgd.directory.auto_initialize / auto_repair ------------------------------------------

BROKEN_MANIFEST = b"this: [is not a manifest\n"


def run_sync(engine: str, app: FGDApplication, config: FGDConfig, tmp_path: Path,
             fabric_id: int, options: dict[str, Any] | None = None) -> Any:
    if engine == "embedded":
        return SyncRunner(app, config).run(fabric_id, "manual", options).sync
    steps = SyncSteps(app, config, cache_root=tmp_path / "cache")
    return distributed_sync(app, steps, fabric_id, options)


@pytest.mark.parametrize("engine", ["embedded", "distributed"])
def test_auto_initialize_initializes_a_missing_directory_before_the_sync(
    app: FGDApplication, tmp_path: Path, engine: str
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"README.md": b"a new fabric\n"})
    fabric = app.register_fabric("lab", str(repo))
    config = load_settings(environ={}).fgd
    sync = run_sync(engine, app, config, tmp_path, fabric.fabric_id)
    assert sync.state == "completed", sync.errors
    files = tree(repo)
    assert {"gitops/.hnp/manifest.yaml", "gitops/raw/README.md",
            "gitops/managed/vpcs/.gitkeep"} <= set(files)
    assert commits(repo) == 2  # the seed and the initialization
    assert app.get_fabric(fabric.fabric_id).gitops_initialized
    # Initialized now: the next sync has nothing to prepare.
    assert run_sync(engine, app, config, tmp_path, fabric.fabric_id).state == "completed"
    assert commits(repo) == 2


@pytest.mark.parametrize("engine", ["embedded", "distributed"])
def test_auto_initialize_off_fails_the_sync_with_fgd_2001(
    app: FGDApplication, tmp_path: Path, engine: str
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"README.md": b"a new fabric\n"})
    fabric = app.register_fabric("lab", str(repo))
    config = with_keys(load_settings(environ={}).fgd, "directory", auto_initialize=False)
    sync = run_sync(engine, app, config, tmp_path, fabric.fabric_id)
    assert sync.state == "failed"
    assert sync.errors[-1]["code"] == "FGD_2001"
    assert "auto_initialize" in sync.errors[-1]["message"]
    assert commits(repo) == 1


def test_a_sync_that_pushes_nothing_initializes_nothing(
    app: FGDApplication, tmp_path: Path
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"README.md": b"a new fabric\n"})
    fabric = app.register_fabric("lab", str(repo))
    config = load_settings(environ={}).fgd
    sync = SyncRunner(app, config).run(fabric.fabric_id, "manual", {"validate_only": True}).sync
    assert sync.state == "completed" and commits(repo) == 1


@pytest.mark.parametrize("engine", ["embedded", "distributed"])
def test_auto_repair_repairs_an_unreadable_manifest_before_the_sync(
    app: FGDApplication, tmp_path: Path, engine: str
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/.hnp/manifest.yaml": BROKEN_MANIFEST,
                     "gitops/raw/a.yaml": vpc("a", 1)})
    fabric = app.register_fabric("lab", str(repo))
    config = load_settings(environ={}).fgd
    sync = run_sync(engine, app, config, tmp_path, fabric.fabric_id)
    assert sync.state == "completed", sync.errors
    assert sync.files["gitops/raw/a.yaml"]["status"] == "processed"
    assert git("show", "main:gitops/.hnp/manifest.yaml.broken", cwd=repo).encode() \
        == BROKEN_MANIFEST
    log = git("log", "--format=%s", "main", cwd=repo).splitlines()
    assert log[1] == "fgd: repair /gitops before a sync"  # then the sync's own commit
    assert app.get_fabric(fabric.fabric_id).gitops_directory_status == "valid"


@pytest.mark.parametrize("engine", ["embedded", "distributed"])
def test_auto_repair_off_fails_the_sync_with_fgd_2004_and_rewrites_nothing(
    app: FGDApplication, tmp_path: Path, engine: str
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {"gitops/.hnp/manifest.yaml": BROKEN_MANIFEST,
                     "gitops/raw/a.yaml": vpc("a", 1)})
    fabric = app.register_fabric("lab", str(repo))
    config = with_keys(load_settings(environ={}).fgd, "directory", auto_repair=False)
    sync = run_sync(engine, app, config, tmp_path, fabric.fabric_id)
    assert sync.state == "failed"
    error = sync.errors[-1]
    assert error["code"] == "FGD_2004"
    assert error["details"]["issues"] == ["invalid_manifest"]
    assert commits(repo) == 1


# --- worker processes: worker_pool_size, debug_mode, metrics_enabled, health_check_interval ---


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def consumers_of(broker: str, queue: str) -> int:
    from kombu import Connection

    with Connection(broker) as conn:
        return int(conn.default_channel.queue_declare(queue=queue, passive=True).consumer_count)


def scrape(port: int) -> str | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            return str(answer.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def test_worker_processes_follow_the_configuration(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from tests.integration.test_workers import Cluster

    cluster = Cluster(tmp_path, pg_url)
    try:
        # Ingestion: 3 consumers, DEBUG logs, metrics off although a port is given.
        off_port = free_port()
        monkeypatch.setenv("HEDGEHOG_FGD_WORKER_CONCURRENCY", "3")
        monkeypatch.setenv("HEDGEHOG_FGD_DEBUG", "true")
        monkeypatch.setenv("HEDGEHOG_FGD_METRICS_ENABLED", "false")
        ingestion = cluster.start("ingestion", "--metrics-port", str(off_port))
        for name in ("HEDGEHOG_FGD_WORKER_CONCURRENCY", "HEDGEHOG_FGD_DEBUG",
                     "HEDGEHOG_FGD_METRICS_ENABLED"):
            monkeypatch.delenv(name)
        # Discovery: the defaults, but a self-check every second (from the YAML file).
        config = tmp_path / "fgd_config.yaml"
        config.write_text("fgd:\n  monitoring:\n    health_check_interval: 1\n")
        monkeypatch.setenv("HEDGEHOG_FGD_CONFIG", str(config))
        on_port = free_port()
        discovery = cluster.start("discovery", "--metrics-port", str(on_port))
        monkeypatch.delenv("HEDGEHOG_FGD_CONFIG")

        queue = f"{cluster.prefix}.ingestion"
        wait_for(lambda: consumers_of(cluster.broker, queue) == 3, "3 ingestion consumers")
        ingestion_log = Path(ingestion.log_path).read_text()  # type: ignore[attr-defined]
        assert re.search(r'"level": "debug"|\bDEBUG\b', ingestion_log), ingestion_log[-2000:]
        assert "metrics disabled" in ingestion_log
        assert scrape(off_port) is None  # nothing listens there
        wait_for(lambda: consumers_of(cluster.broker, f"{cluster.prefix}.discovery") == 1,
                 "the discovery consumer")

        def checks() -> float:
            text = scrape(on_port) or ""
            found = re.search(r'^fgd_worker_health_checks_total\{outcome="ok"\} (\S+)$', text,
                              re.MULTILINE)
            return float(found.group(1)) if found and float(found.group(1)) >= 3 else 0.0

        wait_for(checks, "three self-checks of the discovery worker")
        discovery_log = Path(discovery.log_path).read_text()  # type: ignore[attr-defined]
        assert not re.search(r'"level": "debug"|\bDEBUG\b', discovery_log), discovery_log[-2000:]
        assert ingestion.poll() is None and discovery.poll() is None
    finally:
        cluster.close()


# --- the API: metrics_enabled, debug_mode -------------------------------------------------


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_metrics_enabled_turns_the_api_metrics_on_and_off(tmp_path: Path, enabled: str) -> None:
    settings = settings_for(tmp_path, None, HEDGEHOG_FGD_METRICS_ENABLED=enabled)
    container = Container.build(settings)
    try:
        with TestClient(create_app(container)) as client:
            answer = client.get("/metrics")
    finally:
        container.close()
    if enabled == "true":
        assert answer.status_code == 200 and "fgd_sync_total" in answer.text
    else:
        assert answer.status_code == 404
        assert answer.json()["error"]["details"]["key"] == "fgd.monitoring.metrics_enabled"


def test_fgd_serve_logs_at_debug_and_hides_metrics_as_configured(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    fgd = Path(sys.executable).parent / "fgd"
    command = [str(fgd)] if fgd.exists() else [sys.executable, "-m", "fgd_core.cli"]
    environ = {**os.environ, "HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"),
               "HEDGEHOG_FGD_DEBUG": "yes", "HEDGEHOG_FGD_METRICS_ENABLED": "no"}
    environ.pop("HEDGEHOG_FGD_DATABASE_URL", None)
    environ.pop("HEDGEHOG_FGD_BROKER_URL", None)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        # --log-level warning: debug_mode still wins (it sets DEBUG in every process).
        proc = subprocess.Popen([*command, "serve", "--port", str(port), "--log-level",
                                 "warning"], env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        def health() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/plugins/hedgehog/health/", timeout=2):
                    return True
            except OSError:
                return False

        wait_for(health, "fgd serve", timeout=60)
        import urllib.error

        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert caught.value.code == 404
        wait_for(lambda: '"level": "debug"' in log_path.read_text()
                 or '"level":"debug"' in log_path.read_text(), "a debug line in the log")
    finally:
        proc.terminate()
        proc.wait(15)


# --- keys that acted already, proven through the configuration --------------------------


@pytest.mark.parametrize(("batch_size", "saves"), [(2, 3), (50, 1)])
def test_batch_size_is_files_per_save(
    app: FGDApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_size: int,
    saves: int
) -> None:
    repo = init_bare(tmp_path / "fabric.git")
    seed_repo(repo, {f"gitops/raw/v{n}.yaml": vpc(f"v{n}", n) for n in range(1, 6)})
    fabric = app.register_fabric("lab", str(repo))
    config = with_keys(load_settings(environ={}).fgd, "ingestion", batch_size=batch_size)
    calls: list[str] = []
    real = app.update_sync

    def outcomes(sync_id: str) -> int:
        return sum(rec["status"] in {"processed", "failed", "skipped"}
                   for rec in app.get_sync(sync_id).files.values())

    def counting(sync_id: str, command: Any, *args: Any, **kwargs: Any) -> Any:
        before = outcomes(sync_id)
        done = real(sync_id, command, *args, **kwargs)
        if outcomes(sync_id) > before:  # a save that recorded file outcomes
            calls.append(sync_id)
        return done

    monkeypatch.setattr(app, "update_sync", counting)
    result = SyncRunner(app, config).run(fabric.fabric_id)
    assert result.ok and len(result.sync.files) == 5
    assert len(calls) == saves  # the five files' outcomes in batches of batch_size


def test_git_timeouts_come_from_the_configuration(app: FGDApplication, tmp_path: Path) -> None:
    from fgd_core.application.remotes import make_remote
    from tests.gitserver import GitHTTPServer

    with GitHTTPServer(tmp_path / "srv") as server:
        bare = init_bare(tmp_path / "srv" / "fabric.git")
        seed_repo(bare, {"gitops/raw/a.yaml": vpc("a", 1)})
        fabric = app.register_fabric("lab", server.url("fabric.git"))
        server.latency = 2.0  # every answer takes two seconds
        impatient = with_keys(load_settings(environ={}).fgd, "github", read_timeout=1,
                              connection_timeout=1)
        with pytest.raises(Exception) as caught:
            make_remote(fabric, impatient, None, None).fetch("main")
        assert getattr(caught.value, "code", None) == "FGD_4001"
        patient = with_keys(load_settings(environ={}).fgd, "github", read_timeout=20,
                            connection_timeout=7)
        remote = make_remote(fabric, patient, None, None)
        assert remote.fetch("main").head is not None
        # connection_timeout cannot be provoked on 127.0.0.1 (a connect succeeds or is
        # refused at once): its wiring into the HTTP client is what can be shown.
        timeout = remote._client._timeout  # type: ignore[union-attr]
        assert timeout.connect_timeout == 7 and timeout.read_timeout == 20


def test_api_bounds_come_from_the_configuration(tmp_path: Path) -> None:
    from fgd_core.application.auth import create_token

    body = {"name": "lab", "repository": f"{tmp_path}/" + "x" * 300 + ".git"}
    statuses = {}
    for limit in ("100", "1048576"):
        settings = settings_for(tmp_path / limit, None,
                                HEDGEHOG_FGD_MAX_REQUEST_BODY_BYTES=limit)
        container = Container.build(settings)
        try:
            key, _ = create_token(container.app, "admin", superuser=True)
            with TestClient(create_app(container)) as client:
                statuses[limit] = client.post("/api/plugins/hedgehog/fabrics/", json=body,
                                              headers={"Authorization": f"Token {key}"})
        finally:
            container.close()
    assert statuses["100"].status_code == 413
    assert statuses["1048576"].status_code != 413


def test_enabled_false_answers_a_github_push_with_fgd_3004(tmp_path: Path) -> None:
    from tests.gitserver import GitHTTPServer
    from tests.integration.test_webhooks import SECRET, deliver, push_payload, stored_types

    with GitHTTPServer(tmp_path / "srv") as server:
        bare = init_bare(server.root / "hedgehog" / "fabric.git")
        seed_repo(bare, {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1)})
        settings = settings_for(tmp_path, None, HEDGEHOG_FGD_ENABLED="false",
                                HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET=SECRET,
                                HEDGEHOG_FGD_ALLOWED_REPOSITORIES=server.url())
        container = Container.build(settings)
        try:
            container.app.register_fabric("lab", server.url("hedgehog/fabric.git"),
                                          auto_sync_on_change=True)
            with TestClient(create_app(container)) as client:
                answer = deliver(client, push_payload(server.url("hedgehog/fabric.git")))
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "FGD_3004"
            assert "sync.started" not in stored_types(container)
        finally:
            container.close()
