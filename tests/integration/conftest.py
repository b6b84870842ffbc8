"""Fixtures of the HTTP tests: a TestClient of the real app and a superuser's header, on
the ``container`` each test module builds (its settings differ: secrets, allowed
repositories …)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.auth import create_token


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


@pytest.fixture
def admin(container: Container) -> dict[str, str]:
    key, _ = create_token(container.app, "admin", superuser=True)
    return {"Authorization": f"Token {key}"}
