"""The connection budget: every kind of worker process holds at most
``WORKER_CONNECTIONS`` (4) PostgreSQL connections, counted on the server
(``pg_stat_activity``) and attributed to processes by their sockets, while a distributed
sync runs through them; the API's pool is configurable."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from fgd_core.adapters.persistence import (
    WORKER_CONNECTIONS,
    persistence_env,
    pool_env,
    postgres_env,
    worker_env,
)
from fgd_core.application.app import FGDApplication
from fgd_core.errors import ConfigurationError
from tests.conftest import PG_URL
from tests.integration.test_workers import FINAL, Cluster, cluster, repo  # noqa: F401
from tests.pg_connections import connections_by_pid

KINDS = ("relay", "discovery", "github", "ingestion", "ingestion", "scheduler", "commands",
         "all")


@pytest.fixture
def app(pg_app: FGDApplication) -> FGDApplication:
    return pg_app


def test_every_worker_process_stays_within_four_connections(
    app: FGDApplication, cluster: Cluster, repo: Path,  # noqa: F811
) -> None:
    procs = {}
    for i, kind in enumerate(KINDS):
        args = {"relay": ["--name", "relay"], "scheduler": ["--tick", "0.2", "--name", "s"],
                "all": ["--tick", "0.2"]}.get(kind, [])
        procs[f"{kind}-{i}"] = cluster.start(kind, *args)
    for name, proc in procs.items():
        if not name.startswith(("scheduler", "commands")):
            cluster.wait_ready(proc)
    # The scheduler starts the new fabric's first sync; the workers carry it to its end.
    fabric = app.register_fabric("lab", str(repo), sync_interval_minutes=60)
    peak = dict.fromkeys(procs, 0)
    deadline = time.monotonic() + 120
    with psycopg.connect(PG_URL.split("?")[0], autocommit=True) as conn:
        while time.monotonic() < deadline:
            counts = connections_by_pid(conn, [p.pid for p in procs.values()])
            for name, proc in procs.items():
                assert proc.poll() is None, cluster.logs()
                peak[name] = max(peak[name], counts[proc.pid])
            ids = list(app.get_fabric(fabric.fabric_id).sync_ids)
            if ids and all(app.get_sync(i).state in FINAL for i in ids):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"sync did not end: {cluster.logs()}")
    assert app.get_sync(ids[0]).state == "completed", cluster.logs()
    print("peak connections", peak)
    assert all(1 <= n <= WORKER_CONNECTIONS for n in peak.values()), peak


def test_a_worker_pool_leaves_room_for_its_dedicated_connections() -> None:
    env = postgres_env("postgresql://u@127.0.0.1/db")
    for dedicated in range(WORKER_CONNECTIONS):
        capped = worker_env(env, dedicated)
        most = int(capped["POSTGRES_POOL_SIZE"]) + int(capped["POSTGRES_MAX_OVERFLOW"])
        assert most + dedicated == WORKER_CONNECTIONS and capped["POSTGRES_POOL_SIZE"] == "1"
    with pytest.raises(ValueError):
        worker_env(env, WORKER_CONNECTIONS)
    sqlite = persistence_env(None, Path("/tmp/x.sqlite3"))
    assert worker_env(sqlite, 1) == sqlite


def test_the_api_pool_is_configurable_and_bad_values_are_refused() -> None:
    assert pool_env({}) == {"POSTGRES_POOL_SIZE": "5", "POSTGRES_MAX_OVERFLOW": "10"}
    assert pool_env({"HEDGEHOG_FGD_API_POOL_SIZE": "2", "HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW": "0"}
                    ) == {"POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "0"}
    for bad in ({"HEDGEHOG_FGD_API_POOL_SIZE": "0"}, {"HEDGEHOG_FGD_API_POOL_SIZE": "many"},
                {"HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW": "-1"}):
        with pytest.raises(ConfigurationError) as caught:
            pool_env(bad)
        assert caught.value.details["key"] in bad


def test_the_api_pool_setting_reaches_the_store(monkeypatch: pytest.MonkeyPatch,
                                                pg_url: str) -> None:
    monkeypatch.setenv("HEDGEHOG_FGD_API_POOL_SIZE", "2")
    monkeypatch.setenv("HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW", "1")
    application = FGDApplication(env=persistence_env(pg_url, Path("/unused")))
    try:
        pool = application.recorder.datastore.pool  # type: ignore[attr-defined]
        assert (pool.min_size, pool.max_size) == (2, 3)
    finally:
        application.close()
