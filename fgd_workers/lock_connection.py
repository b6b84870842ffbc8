"""The dedicated PostgreSQL connection a session advisory lock lives on (the relay's, the
scheduler's): outside the pool, so that losing the connection loses the lock, and with TCP
keepalives, so that a silently dead server — and with it the lock's loss — is noticed within
seconds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder

Connect = Callable[[], "psycopg.Connection[Any]"]


def lock_connector(recorder: PostgresApplicationRecorder, application_name: str) -> Connect:
    """A function opening such a connection with the pool's settings (its row factory aside)."""
    pool_kwargs: Any = recorder.datastore.pool.kwargs  # a dict (psycopg_pool allows a callable)
    kwargs = {k: v for k, v in pool_kwargs.items() if k != "row_factory"}

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(
            **kwargs,
            autocommit=True,
            connect_timeout=5,
            application_name=application_name[:63],
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )

    return connect
