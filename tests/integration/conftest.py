"""Fixtures of the HTTP tests: the API's ``container`` (SQLite or PostgreSQL, repositories
allowed under tmp_path — a module whose settings differ defines its own), a TestClient of
the real app on it, and a superuser's header."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.config import load_settings


def api_environ(database_url: str | None, tmp_path: Path) -> dict[str, str]:
    """The API's settings of a test: its own store, its own HOME, repositories under tmp_path."""
    environ = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"), "HOME": str(tmp_path),
               "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": str(tmp_path)}
    if database_url:
        environ["HEDGEHOG_FGD_DATABASE_URL"] = database_url
    return environ


@pytest.fixture
def container(database_url: str | None, tmp_path: Path) -> Iterator[Container]:
    c = Container.build(load_settings(environ=api_environ(database_url, tmp_path)))
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


@pytest.fixture
def admin(container: Container) -> dict[str, str]:
    key, _ = create_token(container.app, "admin", superuser=True)
    return {"Authorization": f"Token {key}"}
