"""The pool's connection check (``check_when_signalled``): no round trip for a healthy idle
connection, and a connection the server closed is replaced, not handed out."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from fgd_core.adapters.persistence import check_when_signalled, postgres_env
from fgd_core.application.app import FGDApplication
from tests.conftest import PG_URL


def _pool(app: FGDApplication) -> Any:
    return app.recorder.datastore.pool  # type: ignore[attr-defined]


def test_the_pool_uses_the_signalled_check(pg_url: str) -> None:
    app = FGDApplication(env=postgres_env(pg_url))
    try:
        # psycopg_pool's private name for the callback: an upgrade that renames it fails here.
        assert _pool(app)._check is check_when_signalled
    finally:
        app.close()


def test_only_a_signalled_connection_is_pinged(pg_url: str, monkeypatch: Any) -> None:
    pinged: list[int] = []
    real = ConnectionPool.check_connection

    def counting(conn: Any) -> None:
        pinged.append(conn.info.backend_pid)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counting))
    with psycopg.connect(PG_URL, autocommit=True) as conn, \
            psycopg.connect(PG_URL, autocommit=True) as admin:
        check_when_signalled(conn)  # idle, healthy: nothing to read, no query
        assert pinged == []
        pid = conn.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)  # the server's FATAL and close reach the socket
        with pytest.raises(psycopg.OperationalError):
            check_when_signalled(conn)
        assert pinged == [pid]


def test_a_connection_the_server_ended_is_replaced(pg_url: str) -> None:
    app = FGDApplication(env=postgres_env(pg_url))
    try:
        fabric = app.register_fabric("f", "/tmp/nowhere.git")
        pids = []
        pool = _pool(app)
        with pool.connection() as conn:
            pids.append(conn.info.backend_pid)
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
        # The next transaction gets a live connection: the ended one is noticed and dropped.
        assert app.get_fabric(fabric.fabric_id).name == "f"
        with pool.connection() as conn:
            assert conn.info.backend_pid != pids[0]
    finally:
        app.close()
