"""The API's principal cache (``fgd_core.application.auth.PrincipalCache``): what it keeps, for
how long,
and when a revocation or an expiry takes effect."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from fgd_core.application import auth
from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import (
    authenticate,
    authenticate_cached,
    cached_principal,
    create_token,
    principal_cache,
    revoke_token,
)

API = "/api/plugins/hedgehog"


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The key hashes looked up in the store, in order."""
    seen: list[str] = []
    real = auth._authenticate_digest

    def counting(app: FGDApplication, digest: str):  # type: ignore[no-untyped-def]
        seen.append(digest)
        return real(app, digest)

    monkeypatch.setattr(auth, "_authenticate_digest", counting)
    return seen


def test_a_valid_token_is_loaded_once_per_ttl(app: FGDApplication, loads: list[str]) -> None:
    principal_cache(app).ttl = 0.3
    key, token = create_token(app, "alice", permissions=["view_fgd_sync"])
    assert cached_principal(app, f"Token {key}") is None  # nothing cached yet
    first = authenticate_cached(app, f"Token {key}")
    assert first is not None and first == authenticate(app, key)
    assert authenticate_cached(app, key.upper()) == first  # same key, any spelling
    assert cached_principal(app, f"Token {key}") == first
    assert len(loads) == 2  # the cached call, then authenticate's own (uncached) load
    time.sleep(0.35)
    assert cached_principal(app, f"Token {key}") is None  # expired from the cache
    assert authenticate_cached(app, f"Token {key}") == first
    assert len(loads) == 3


def test_failures_are_never_cached(app: FGDApplication, loads: list[str]) -> None:
    unknown = "ab" * 20
    for _ in range(3):
        assert authenticate_cached(app, f"Token {unknown}") is None
    assert len(loads) == 3 and principal_cache(app)._entries == {}
    key, token = create_token(app, "bob", permissions=["view_fgd_sync"])
    revoke_token(app, token.token_id)
    for _ in range(2):
        assert authenticate_cached(app, key) is None
    assert len(loads) == 5 and principal_cache(app)._entries == {}
    assert authenticate_cached(app, "Token not-a-key") is None
    assert len(loads) == 5  # malformed: refused without a lookup


def test_the_cache_keeps_no_key(app: FGDApplication) -> None:
    key, _ = create_token(app, "carol", superuser=True)
    assert authenticate_cached(app, key) is not None
    entries = principal_cache(app)._entries
    assert list(entries) == [auth.hash_key(key)]
    assert key not in repr(entries) and key.upper() not in repr(entries)


def test_revoking_through_the_same_application_takes_effect_at_once(
    app: FGDApplication,
) -> None:
    principal_cache(app).ttl = 60.0
    key, token = create_token(app, "dave", permissions=["view_fgd_sync"])
    assert authenticate_cached(app, key) is not None
    revoke_token(app, token.token_id)  # by id
    assert cached_principal(app, key) is None
    assert authenticate_cached(app, key) is None

    key2, _ = create_token(app, "dave", permissions=["view_fgd_sync"])
    assert authenticate_cached(app, key2) is not None
    revoke_token(app, key2)  # by key
    assert authenticate_cached(app, key2) is None


def test_a_revocation_made_elsewhere_takes_effect_within_the_ttl(
    app: FGDApplication, app_env: dict[str, str]
) -> None:
    principal_cache(app).ttl = 0.5
    key, token = create_token(app, "erin", permissions=["view_fgd_sync"])
    assert authenticate_cached(app, key) is not None
    other = FGDApplication(env=app_env)  # e.g. `fgd token revoke` in another process
    try:
        revoked_at = time.monotonic()
        revoke_token(other, token.token_id)
    finally:
        other.close()
    assert authenticate(app, key) is None  # the store knows at once
    while True:  # the cache within its TTL
        asked = time.monotonic()
        if authenticate_cached(app, key) is None:
            break
        assert asked - revoked_at < 0.5, "revocation not effective within the TTL"
        time.sleep(0.02)
    assert authenticate_cached(app, key) is None


def test_a_token_expiring_while_cached_is_refused_at_once(
    app: FGDApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    principal_cache(app).ttl = 60.0
    expires = datetime.now(UTC) + timedelta(hours=1)
    key, _ = create_token(app, "frank", permissions=["view_fgd_sync"], expires=expires)
    assert authenticate_cached(app, key) is not None
    monkeypatch.setattr(auth, "_now", lambda: expires + timedelta(seconds=1))
    assert cached_principal(app, key) is None
    assert authenticate_cached(app, key) is None


def test_each_application_has_its_own_cache(
    app: FGDApplication, app_env: dict[str, str]
) -> None:
    key, _ = create_token(app, "gina", superuser=True)
    assert authenticate_cached(app, key) is not None
    other = FGDApplication(env=app_env)
    try:
        assert cached_principal(other, key) is None
        assert principal_cache(other) is not principal_cache(app)
    finally:
        other.close()


def test_the_api_honours_revocation(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fgd_api.app import create_app
    from fgd_api.container import Container
    from fgd_core.config import load_settings

    environ = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "f.sqlite3"), "HOME": str(tmp_path),
               "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": str(tmp_path)}
    container = Container.build(load_settings(environ=environ))
    try:
        principal_cache(container.app).ttl = 0.5
        key, token = create_token(container.app, "admin", superuser=True)
        key2, token2 = create_token(container.app, "ops", superuser=True)
        path = f"{API}/sync-status/{uuid4()}/"
        with TestClient(create_app(container)) as client:
            for k in (key, key2):
                # authenticated (the sync does not exist), twice: the second from the cache
                for _ in range(2):
                    assert client.get(path, headers={"Authorization": f"Token {k}"}
                                      ).status_code == 404

            revoke_token(container.app, token.token_id)  # the API's own application
            assert client.get(path, headers={"Authorization": f"Token {key}"}
                              ).status_code == 401

            other = FGDApplication(env=dict(container.app.env))  # another process
            try:
                revoke_token(other, token2.token_id)
            finally:
                other.close()
            deadline = time.monotonic() + 0.5
            while True:
                asked = time.monotonic()
                status = client.get(path, headers={"Authorization": f"Token {key2}"}).status_code
                if status == 401:
                    break
                assert status == 404 and asked < deadline, "revocation not within the TTL"
                time.sleep(0.02)
    finally:
        container.close()
