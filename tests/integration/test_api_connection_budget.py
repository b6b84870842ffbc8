"""The API's connection budget (issue 13): every PostgreSQL connection of ``fgd serve`` —
its event-store pool and the async sync-status/history reads together — stays within
``HEDGEHOG_FGD_API_POOL_SIZE`` + ``_MAX_OVERFLOW``, plus the documented fixed extras (the
live read-model runner's own pools, the embedded scheduler's lock connection, the database
gate's short-lived probe), counted on the server (``pg_stat_activity``) while many clients
hammer the hot reads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from fgd_api.projections.recorders import AsyncReads
from fgd_core.adapters.persistence import api_read_connections, api_store_env, postgres_env
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from tests.conftest import PG_URL
from tests.gitserver import init_bare
from tests.integration.test_cli_remote import free_port
from tests.pg_connections import connections_by_pid

ROOT = Path(__file__).resolve().parents[2]
API = "/api/plugins/hedgehog"
# fgd serve's connections outside its budget (docker-compose.yml, docs/scaling.md): the live
# read-model runner's two pools (its event feed's and its view's, POSTGRES_POOL_SIZE 1 +
# _MAX_OVERFLOW 2 each, the feed's LISTEN included; 4 seen: LISTEN + a reader, and two on the
# view's while it creates its tables), the embedded scheduler's advisory-lock connection,
# the database gate's short-lived probe.
RUNNER_EXTRAS, SCHEDULER_LOCK, GATE_PROBE = 6, 1, 1
FIXED_EXTRAS = RUNNER_EXTRAS + SCHEDULER_LOCK + GATE_PROBE
CLIENTS = 20


def test_the_budget_is_split_between_the_store_pool_and_the_async_reads() -> None:
    for size, overflow in ((5, 10), (2, 4), (1, 1), (3, 0), (1, 0), (10, 50)):
        environ = {"HEDGEHOG_FGD_API_POOL_SIZE": str(size),
                   "HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW": str(overflow)}
        store = api_store_env(environ)
        opened, most = int(store["POSTGRES_POOL_SIZE"]), int(store["POSTGRES_MAX_OVERFLOW"])
        reads = api_read_connections(environ)
        assert reads >= 1 and opened >= 1 and opened <= size
        assert opened + most + reads == max(size + overflow, 2), (size, overflow)
    assert api_read_connections({}) == 5 and api_store_env({}) == {
        "POSTGRES_POOL_SIZE": "5", "POSTGRES_MAX_OVERFLOW": "5"}


def test_async_reads_never_open_more_than_their_size(pg_url: str) -> None:
    """Twelve reads at once (each holding its connection 50 ms) on a budget of 2: never more
    than 2 backends with this application_name, and every read answered."""
    name = f"fgd-test-reads-{os.getpid()}"
    kwargs = postgres_env(pg_url)
    conninfo = {"dbname": kwargs["POSTGRES_DBNAME"], "host": kwargs["POSTGRES_HOST"],
                "port": kwargs["POSTGRES_PORT"], "user": kwargs["POSTGRES_USER"],
                "application_name": name}
    reads = AsyncReads(conninfo, 5, size=2)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        with psycopg.connect(PG_URL.split("?")[0], autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_stat_activity"
                                   " WHERE application_name = %s", (name,)).fetchone()
                peak = max(peak, int(row[0]) if row else 0)
                time.sleep(0.005)

    async def many() -> list[list[Any]]:
        return await asyncio.gather(*(
            reads.fetchall("SELECT %s::int AS n, pg_sleep(0.05)", (i,)) for i in range(12)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = asyncio.run(many())
        results += asyncio.run(many())  # another event loop, the same budget and connections
    finally:
        stop.set()
        watcher.join()
        reads.close()
    assert sorted(r[0][0] for r in results) == sorted([*range(12), *range(12)])
    assert 1 <= peak <= 2, peak
    assert reads.opened == 0 and not reads.idle


@pytest.fixture
def served(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, str, list[str], int, int]]:
    """``fgd serve`` on PostgreSQL with a budget of 2 + 4 connections, syncs in its read
    model: (url, token, sync ids, fabric id, server pid)."""
    app = FGDApplication(env=postgres_env(pg_url))
    try:
        key, _ = create_token(app, "operator", superuser=True)
        fabric = app.register_fabric("lab", str(init_bare(tmp_path / "lab.git")))
        sync_ids = []
        for _ in range(30):
            sync = app.start_sync(fabric.fabric_id)
            app.cancel_sync(sync.sync_id)
            sync_ids.append(sync.sync_id)
    finally:
        app.close()
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HEDGEHOG_FGD_")},
        "HOME": str(tmp_path),
        "HEDGEHOG_FGD_DATABASE_URL": pg_url,
        "HEDGEHOG_FGD_API_POOL_SIZE": "2",
        "HEDGEHOG_FGD_API_POOL_MAX_OVERFLOW": "4",
        "PYTHONPATH": str(ROOT),
    }
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fgd_core.cli", "serve", "--port", str(port),
             "--log-level", "warning"],
            env=environ, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "fgd serve did not come up"
                try:  # up, and its read model has caught up with the syncs
                    answer = httpx.get(f"{url}{API}/sync-status/{sync_ids[-1]}/",
                                       headers={"Authorization": f"Token {key}"})
                    if answer.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            yield url, key, sync_ids, fabric.fabric_id, proc.pid
        finally:
            proc.terminate()
            proc.wait(20)


def test_the_api_stays_within_its_budget_under_concurrent_reads(
    served: tuple[str, str, list[str], int, int],
) -> None:
    url, key, sync_ids, fabric_id, pid = served
    budget = 2 + 4
    paths = [f"{API}/sync-status/{s}/" for s in sync_ids]
    paths += [f"{API}/fabrics/{fabric_id}/sync-history/?status=cancelled&limit=10&offset={o}"
              for o in range(0, 30, 5)]
    answers: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Token {key}"},
                          timeout=30) as http:
            for i in range(60):  # bounded: 20 clients × 60 requests
                if stop.is_set():
                    return
                code = http.get(paths[(n * 7 + i) % len(paths)]).status_code
                with lock:
                    answers.append(code)

    peak = 0
    clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    with psycopg.connect(PG_URL.split("?")[0], autocommit=True) as conn:
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 120
        while any(t.is_alive() for t in clients):
            if time.monotonic() > deadline:
                stop.set()
            peak = max(peak, connections_by_pid(conn, [pid])[pid])
            time.sleep(0.01)
        peak = max(peak, connections_by_pid(conn, [pid])[pid])
    for thread in clients:
        thread.join()
    assert not stop.is_set(), "the clients did not finish in time"
    assert answers and set(answers) == {200}, sorted(set(answers))
    assert len(answers) == CLIENTS * 60
    print("peak connections of fgd serve", peak, "budget", budget, "+", FIXED_EXTRAS)
    assert 1 <= peak <= budget + FIXED_EXTRAS, peak
