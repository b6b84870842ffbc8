"""Shared fixtures: an FGD application on each real backend (SQLite file, PostgreSQL).

PostgreSQL tests get a schema of their own (dropped afterwards), so they can run against a
shared server without seeing each other's events.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fgd_core.adapters.persistence import persistence_env, postgres_env
from fgd_core.application.app import FGDApplication

PG_URL = os.environ.get("FGD_TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
_VHOST: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """A RabbitMQ virtual host of this test run's own, so bus tests never see messages of
    another run on the same broker. ``FGD_TEST_BROKER_URL`` set by hand wins."""
    global _VHOST
    if "FGD_TEST_BROKER_URL" in os.environ or shutil.which("rabbitmqctl") is None:
        os.environ.setdefault("FGD_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
        return
    vhost = f"fgd-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True,
                       capture_output=True, timeout=60)
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        # No broker running: the unit tests need none; a bus test will fail on connecting,
        # which says what is missing (nothing is skipped).
        os.environ.setdefault("FGD_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
        return
    _VHOST = vhost
    os.environ["FGD_TEST_BROKER_URL"] = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _VHOST is not None:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", _VHOST], capture_output=True)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_url(pg_schema: str) -> str:
    """A PostgreSQL URL with a fresh schema of this test's own."""
    return f"{PG_URL}?schema={pg_schema}"


@pytest.fixture
def pg_app(pg_url: str) -> Iterator[FGDApplication]:
    """An application on PostgreSQL only (a schema of this test's own)."""
    application = FGDApplication(env=postgres_env(pg_url))
    yield application
    application.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """None for SQLite; a PostgreSQL URL with a fresh schema otherwise."""
    if backend == "sqlite":
        return None
    schema = request.getfixturevalue("pg_schema")
    return f"{PG_URL}?schema={schema}"


@pytest.fixture
def app_env(database_url: str | None, tmp_path: Path) -> dict[str, str]:
    return persistence_env(database_url, tmp_path / "fgd.sqlite3")


@pytest.fixture
def app(app_env: dict[str, str]) -> Iterator[FGDApplication]:
    application = FGDApplication(env=app_env)
    yield application
    application.close()
