"""PostgreSQL goes away under the API and comes back: 503 with FGD_5002 meanwhile, then the
API recovers by itself (no restart).

The outage is made by cutting a TCP proxy between the API and the real PostgreSQL server:
to the API that is exactly a server that stopped (connections reset, new ones refused) —
without stopping the server other tests on this machine share.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.config import load_settings
from tests.tcpproxy import TCPProxy

API = "/api/plugins/hedgehog"


def wait_until(condition, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture
def proxy() -> Iterator[TCPProxy]:
    p = TCPProxy(("127.0.0.1", 5432)).start()
    yield p
    p.stop()


def test_database_outage_is_503_then_the_api_recovers(
    proxy: TCPProxy, pg_schema: str, tmp_path: Path
) -> None:
    url = f"postgresql://root@127.0.0.1:{proxy.port}/test?schema={pg_schema}"
    container = Container.build(load_settings(environ={
        "HEDGEHOG_FGD_DATABASE_URL": url, "HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "x"),
        "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": "/r"}))
    key, _ = create_token(container.app, "admin", superuser=True)
    headers = {"Authorization": f"Token {key}"}
    try:
        with TestClient(create_app(container)) as client:
            created = client.post(f"{API}/fabrics/", json={"name": "lab", "repository": "/r",
                                                            "sync_enabled": False},
                                  headers=headers)
            assert created.status_code == 201
            # registered suspended (its first sync would fail on "/r" beside the outage)
            resumed = client.post(f"{API}/fabrics/1/resume/", headers=headers)
            assert resumed.status_code == 200, resumed.text

            proxy.stop()
            wait_until(lambda: client.app.state.db_gate.down)
            for request in (
                lambda: client.get(f"{API}/fabrics/1/", headers=headers),
                lambda: client.post(f"{API}/fabrics/1/gitops-sync/", json={}, headers=headers),
            ):
                response = request()
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "FGD_5002"
                assert response.headers.get("Retry-After")
            health = client.get(f"{API}/health/")
            assert health.status_code == 503
            assert health.json()["checks"]["database"]["code"] == "FGD_5002"

            proxy.start()
            wait_until(lambda: not client.app.state.db_gate.down)
            deadline = time.monotonic() + 30
            while True:
                response = client.get(f"{API}/fabrics/1/", headers=headers)
                if response.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert response.status_code == 200 and response.json()["name"] == "lab"
            started = client.post(f"{API}/fabrics/1/gitops-sync/", json={}, headers=headers)
            assert started.status_code == 202, started.text
    finally:
        container.close()


def test_health_reports_the_broker_and_its_outage(tmp_path: Path) -> None:
    """With a broker configured, health checks it: ok, then 503 FGD_5003 while it is cut
    away, then ok again — the API itself keeps serving (it does not publish)."""
    broker = os.environ["FGD_TEST_BROKER_URL"]
    proxy = TCPProxy(("127.0.0.1", 5672)).start()
    url = broker.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    container = Container.build(load_settings(environ={
        "HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"),
        "HEDGEHOG_FGD_BROKER_URL": url}))
    container.extras["broker_health"].ttl = 0  # no caching in the test
    try:
        with TestClient(create_app(container)) as client:
            ok = client.get(f"{API}/health/")
            assert ok.status_code == 200 and ok.json()["checks"]["broker"] == {"status": "ok"}
            proxy.stop()
            down = client.get(f"{API}/health/")
            assert down.status_code == 503
            assert down.json()["checks"]["broker"]["code"] == "FGD_5003"
            proxy.start()
            assert client.get(f"{API}/health/").status_code == 200
    finally:
        proxy.stop()
        container.close()
