"""Tokens, permissions and the audit log on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from click.testing import CliRunner

from fgd_core.application import auth
from fgd_core.application.app import FGDApplication
from fgd_core.application.audit_log import record_audit
from fgd_core.application.auth import (
    AuthenticationError,
    FGDPermissions,
    PermissionDeniedError,
    Principal,
    authenticate,
    authorize,
    create_token,
    list_tokens,
    require_principal,
    revoke_token,
)
from fgd_core.application.replay import history
from fgd_core.cli.auth import token as token_cli
from fgd_core.domain.auth import PERMISSIONS, AuditEntry
from fgd_core.errors import FGDErrorCodes, NotFoundError, SchemaMismatchError, ValidationError
from fgd_core.events.schemas import validate_envelope

KEY = re.compile(r"^[0-9a-f]{40}$")
AUDIT_KEYS = {
    "user",
    "action",
    "ip_address",
    "user_agent",
    "sync_id",
    "details",
    "success",
    "error_message",
}


def envelopes(app: FGDApplication) -> list[dict]:
    return [r.envelope for r in history(app)]


# -- tokens ---------------------------------------------------------------------------------


def test_create_authenticate_authorize_revoke(app: FGDApplication) -> None:
    key, token = create_token(
        app, "alice", permissions=["trigger_fgd_sync", FGDPermissions.VIEW_SYNC_STATUS]
    )
    assert KEY.match(key)
    principal = authenticate(app, f"Token {key}")
    assert principal == Principal(
        user="alice",
        user_id=1,
        superuser=False,
        permissions=frozenset({FGDPermissions.TRIGGER_SYNC, FGDPermissions.VIEW_SYNC_STATUS}),
        fabrics=frozenset(),
        token_id=token.token_id,
    )
    assert authenticate(app, key) == principal  # a bare key works too
    assert authenticate(app, f"token  {key.upper()}") == principal
    authorize(principal, FGDPermissions.TRIGGER_SYNC, fabric_id=7)
    authorize(principal, "view_fgd_sync")
    with pytest.raises(PermissionDeniedError) as denied:
        authorize(principal, FGDPermissions.FORCE_SYNC, fabric_id=7)
    assert denied.value.code == "FGD_1003" and denied.value.http_status == 403
    assert denied.value.details == {"permission": FGDPermissions.FORCE_SYNC, "fabric_id": 7}

    revoked = revoke_token(app, token.token_id, reason="rotated")
    assert revoked.revoked and revoked.revoked_at is not None
    assert authenticate(app, f"Token {key}") is None
    before = len(envelopes(app))
    revoke_token(app, key)  # again, by key: idempotent, nothing recorded
    assert len(envelopes(app)) == before
    types = [e["event_type"] for e in envelopes(app)]
    assert types == [
        "tokenregistry.opened",
        "tokenregistry.added",
        "token.created",
        "token.revoked",
    ]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "Token",
        "Token ",
        "Bearer 0123456789abcdef0123456789abcdef01234567",
        "Token 0123456789abcdef",
        "Token 0123456789abcdef0123456789abcdef0123456z",
        "Token a b",
        42,
        "Basic dXNlcjpwYXNz",
    ],
)
def test_malformed_headers_are_none(app: FGDApplication, header: object) -> None:
    create_token(app, "alice", superuser=True)
    assert authenticate(app, header) is None


def test_wrong_key_is_none_and_require_raises_401(app: FGDApplication) -> None:
    key, _ = create_token(app, "alice", superuser=True)
    wrong = ("0" if key[0] != "0" else "1") + key[1:]
    assert authenticate(app, f"Token {wrong}") is None
    with pytest.raises(AuthenticationError) as caught:
        require_principal(app, f"Token {wrong}")
    assert caught.value.http_status == 401 and caught.value.code == "FGD_1003"
    with pytest.raises(AuthenticationError):
        authorize(None, FGDPermissions.VIEW_SYNC_STATUS)
    assert require_principal(app, key).superuser


def test_expired_token(app: FGDApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    key, token = create_token(app, "ci", permissions=["view_fgd_sync"], expires=expires)
    assert token.expires_at == expires
    assert authenticate(app, key) is not None
    monkeypatch.setattr(auth, "_now", lambda: expires + timedelta(seconds=1))
    assert authenticate(app, key) is None
    with pytest.raises(ValidationError):  # already expired: refused at creation
        create_token(app, "ci", expires=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(ValidationError):
        create_token(app, "ci", expires="next tuesday")


def test_fabric_limited_permissions(app: FGDApplication) -> None:
    key, _ = create_token(
        app, "ops", permissions=["trigger_fgd_sync", "view_fgd_sync"], fabrics=[3, 5, 3]
    )
    principal = authenticate(app, key)
    assert principal is not None and principal.fabrics == {3, 5}
    authorize(principal, FGDPermissions.TRIGGER_SYNC, 3)
    authorize(principal, FGDPermissions.VIEW_SYNC_STATUS, 5)
    for fabric_id in (4, None):  # None: an action on no fabric in particular
        with pytest.raises(PermissionDeniedError):
            authorize(principal, FGDPermissions.TRIGGER_SYNC, fabric_id)
    assert principal.fabrics_with(FGDPermissions.VIEW_SYNC_STATUS) == {3, 5}
    assert principal.fabrics_with(FGDPermissions.FORCE_SYNC) == frozenset()


def test_superuser_has_every_permission_everywhere(app: FGDApplication) -> None:
    key, _ = create_token(app, "root", superuser=True)
    principal = authenticate(app, key)
    assert principal is not None
    for permission in PERMISSIONS:
        for fabric_id in (None, 1, 999):
            authorize(principal, permission, fabric_id)
    assert principal.fabrics_with(FGDPermissions.FORCE_SYNC) is None


def test_unknown_permission_is_fgd_1003_and_nothing_is_stored(app: FGDApplication) -> None:
    with pytest.raises(ValidationError) as caught:
        create_token(app, "alice", permissions=["trigger_fgd_sync", "delete_everything"])
    assert caught.value.code == FGDErrorCodes.VALIDATION_FAILED
    assert caught.value.details["unknown_permissions"] == ["delete_everything"]
    for bad in ({"user": ""}, {"user": "x", "fabrics": [0]}, {"user": "x", "superuser": "yes"}):
        with pytest.raises(ValidationError):
            create_token(app, **bad)  # type: ignore[arg-type]
    assert envelopes(app) == []
    key, _ = create_token(app, "alice", superuser=True)
    with pytest.raises(ValidationError):
        authorize(authenticate(app, key), "netbox_hedgehog.delete_fgd_sync")


def test_user_ids_and_list_tokens(app: FGDApplication) -> None:
    _, a1 = create_token(app, "alice", permissions=["view_fgd_sync"])
    _, b1 = create_token(app, "bob", superuser=True)
    _, a2 = create_token(app, "alice", permissions=["view_fgd_history"], fabrics=[2])
    assert (a1.user_id, b1.user_id, a2.user_id) == (1, 2, 1)
    revoke_token(app, b1.token_id)
    listed = [t.as_dict() for t in list_tokens(app)]
    assert [t["token_id"] for t in listed] == [a1.token_id, b1.token_id, a2.token_id]
    assert [t["revoked"] for t in listed] == [False, True, False]
    assert listed[2]["fabrics"] == [2]
    assert all("key" not in k for t in listed for k in t)
    with pytest.raises(NotFoundError):
        revoke_token(app, str(uuid4()))
    with pytest.raises(NotFoundError):
        revoke_token(app, "not-a-token")


def test_a_fresh_application_sees_the_same_tokens(
    app: FGDApplication, app_env: dict[str, str]
) -> None:
    expires = "2999-01-01T00:00:00Z"
    key, token = create_token(
        app, "alice", permissions=["cancel_fgd_sync"], fabrics=[1], expires=expires
    )
    other = FGDApplication(env=app_env)
    try:
        principal = authenticate(other, key)
        assert principal is not None and principal == authenticate(app, key)
        assert list_tokens(other)[0].as_dict() == token.as_dict()
    finally:
        other.close()


def test_the_key_is_never_stored(app: FGDApplication) -> None:
    keys = [
        create_token(app, f"user{i}", superuser=i == 0, permissions=["view_fgd_sync"])[0]
        for i in range(3)
    ]
    record_audit(
        app,
        user="user1",
        action="token.create",
        fabric_id=None,
        ip_address="10.0.0.1",
        user_agent="curl",
        success=True,
        details={"note": f"made with Token {keys[1]}", "token": keys[2]},
    )
    revoke_token(app, keys[0])
    stored = json.dumps(envelopes(app))
    for key in keys:
        assert key not in stored and key.upper() not in stored
    created = [e for e in envelopes(app) if e["event_type"] == "token.created"]
    assert len(created) == 3 and all(e["fabric_id"] == 0 for e in created)
    assert all(re.fullmatch(r"[0-9a-f]{64}", e["payload"]["key_hash"]) for e in created)


# -- audit log ------------------------------------------------------------------------------


def test_audit_entry_payload_is_exact(app: FGDApplication) -> None:
    sync_id = uuid4()
    position = record_audit(
        app,
        user="alice",
        action="sync.trigger",
        fabric_id=3,
        ip_address="2001:DB8::1",
        user_agent="Mozilla/5.0",
        sync_id=sync_id,
        details={"trigger": "manual"},
        success=True,
        correlation_id="req-1",
    )
    [recorded] = list(history(app))
    assert recorded.position == position
    envelope = recorded.envelope
    assert envelope["event_type"] == "audit.recorded"
    assert envelope["fabric_id"] == 3 and envelope["correlation_id"] == "req-1"
    assert envelope["payload"] == {
        "user": "alice",
        "action": "sync.trigger",
        "ip_address": "2001:db8::1",
        "user_agent": "Mozilla/5.0",
        "sync_id": str(sync_id),
        "details": {"trigger": "manual"},
        "success": True,
        "error_message": "",
    }
    later = record_audit(
        app,
        user=None,
        action="auth.failed",
        fabric_id=None,
        ip_address=None,
        user_agent=None,
        success=False,
        error_message="invalid token",
    )
    assert later > position
    payload = envelopes(app)[-1]["payload"]
    assert set(payload) == AUDIT_KEYS
    assert payload["user"] is None and payload["sync_id"] is None
    assert payload["details"] == {} and payload["ip_address"] is None
    assert envelopes(app)[-1]["fabric_id"] == 0


def test_audit_accepts_a_principal_and_odd_client_hosts(app: FGDApplication) -> None:
    key, _ = create_token(app, "carol", superuser=True)
    principal = authenticate(app, key)
    record_audit(
        app,
        user=principal,
        action="fabric.list",
        fabric_id=0,
        ip_address="testclient",
        user_agent="x" * 600,
        success=True,
    )
    payload = envelopes(app)[-1]["payload"]
    assert payload["user"] == "carol" and payload["ip_address"] == "testclient"
    assert len(payload["user_agent"]) == 500


def test_audit_details_are_scrubbed_at_any_depth(app: FGDApplication) -> None:
    details = {
        "Authorization": "Token " + "a" * 40,
        "headers": {"X-Hub-Signature-256": "sha256=abc", "Accept": "application/json"},
        "request": [{"password": "hunter2", "GitHub_Token": "ghp_x", "name": "lab"}],
        "client_secret": "s3cr3t",
        "token_id": "a-token-id",
        "repository": "https://x-access-token:ghp_abc@github.com/org/fabric.git",
        "note": "sent Bearer abcdefghijklmnopqrstuvwxyz",
        "commit": "b" * 40,
        "count": 3,
    }
    record_audit(
        app,
        user="alice",
        action="webhook.receive",
        fabric_id=1,
        ip_address="192.0.2.1",
        user_agent="GitHub-Hookshot",
        success=False,
        details=details,
        error_message="push to https://bot:pw@example.com/r.git failed",
    )
    payload = envelopes(app)[-1]["payload"]
    assert payload["details"] == {
        "Authorization": "[REDACTED]",
        "headers": {"X-Hub-Signature-256": "[REDACTED]", "Accept": "application/json"},
        "request": [{"password": "[REDACTED]", "GitHub_Token": "[REDACTED]", "name": "lab"}],
        "client_secret": "[REDACTED]",
        "token_id": "a-token-id",
        "repository": "https://[REDACTED]@github.com/org/fabric.git",
        "note": "sent Bearer [REDACTED]",
        "commit": "b" * 40,
        "count": 3,
    }
    assert payload["error_message"] == "push to https://[REDACTED]@example.com/r.git failed"
    stored = json.dumps(envelopes(app))
    for secret in ("hunter2", "ghp_", "s3cr3t", "sha256=abc", "a" * 40, ":pw@", "abcdefghijklm"):
        assert secret not in stored


@pytest.mark.parametrize(
    "bad",
    [
        {"action": ""},
        {"action": "x" * 101},
        {"sync_id": "not-a-uuid"},
        {"success": "yes"},
        {"fabric_id": -1},
        {"details": ["not", "a", "mapping"]},
        {"user": 5},
    ],
)
def test_audit_rejects_bad_input(app: FGDApplication, bad: dict) -> None:
    args = {
        "user": "alice",
        "action": "sync.trigger",
        "fabric_id": 1,
        "ip_address": "127.0.0.1",
        "user_agent": "t",
        "success": True,
        **bad,
    }
    with pytest.raises(ValidationError) as caught:
        record_audit(app, **args)
    assert caught.value.code == "FGD_1003"
    assert envelopes(app) == []


# -- schemas --------------------------------------------------------------------------------


def test_every_new_event_validates_against_its_schema(app: FGDApplication) -> None:
    key, token = create_token(
        app,
        "alice",
        permissions=list(PERMISSIONS),
        fabrics=[1, 2],
        expires=datetime.now(UTC) + timedelta(days=30),
    )
    revoke_token(app, token.token_id, reason="leaked")
    record_audit(
        app,
        user="alice",
        action="sync.trigger",
        fabric_id=2,
        ip_address="::1",
        user_agent="t",
        sync_id=str(uuid4()),
        details={"a": [1, {"b": None}]},
        success=True,
    )
    seen = set()
    for envelope in envelopes(app):
        validate_envelope(envelope)
        seen.add(envelope["event_type"])
    assert seen == {
        "tokenregistry.opened",
        "tokenregistry.added",
        "token.created",
        "token.revoked",
        "audit.recorded",
    }


def test_a_bad_payload_is_fgd_1004_and_not_stored(app: FGDApplication) -> None:
    entry = AuditEntry(
        fabric_id=1,
        correlation_id="c",
        user="alice",
        action="",
        ip_address=None,
        user_agent="t",
        sync_id="nope",
        details={},
        success="yes",  # type: ignore[arg-type]
        error_message="",
    )
    with pytest.raises(SchemaMismatchError) as caught:
        app.save(entry)
    assert caught.value.code == "FGD_1004"
    assert envelopes(app) == []


# -- CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database_url: str | None,
    app_env: dict[str, str],
) -> dict[str, str]:
    """The CLI on the same store as ``app_env`` (SQLite file in tmp_path, or the PG schema)."""
    monkeypatch.chdir(tmp_path)
    for var in ("HEDGEHOG_FGD_DATABASE_URL", "HEDGEHOG_FGD_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HEDGEHOG_FGD_SQLITE_PATH", str(tmp_path / "fgd.sqlite3"))
    if database_url:
        monkeypatch.setenv("HEDGEHOG_FGD_DATABASE_URL", database_url)
    return app_env


def test_cli_create_list_revoke(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(
        token_cli,
        [
            "create",
            "--user",
            "ci",
            "--perm",
            "trigger_fgd_sync",
            "--perm",
            "netbox_hedgehog.view_fgd_sync",
            "--fabric",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.splitlines()[-1]
    assert KEY.match(key)

    app = FGDApplication(env=cli_env)
    try:
        principal = authenticate(app, f"Token {key}")
        assert principal is not None and principal.user == "ci" and principal.fabrics == {4}
        authorize(principal, FGDPermissions.TRIGGER_SYNC, 4)
    finally:
        app.close()

    listed = runner.invoke(token_cli, ["list"])
    assert listed.exit_code == 0 and principal.token_id in listed.stdout
    assert key not in listed.stdout and "active" in listed.stdout
    as_json = runner.invoke(token_cli, ["list", "--json"])
    assert json.loads(as_json.stdout.splitlines()[0])["token_id"] == principal.token_id

    revoked = runner.invoke(token_cli, ["revoke", principal.token_id])
    assert revoked.exit_code == 0, revoked.output
    app = FGDApplication(env=cli_env)
    try:
        assert authenticate(app, key) is None
    finally:
        app.close()

    bad = runner.invoke(token_cli, ["create", "--user", "ci", "--perm", "rm_rf"])
    assert bad.exit_code == 1
    assert json.loads(bad.stderr)["error"]["code"] == "FGD_1003"


def test_concurrent_creations_get_distinct_user_ids(app: FGDApplication) -> None:
    from concurrent.futures import ThreadPoolExecutor

    users = [f"user{i}" for i in range(6)] * 2
    with ThreadPoolExecutor(4) as pool:
        created = list(pool.map(lambda u: create_token(app, u, superuser=True)[1], users))
    ids = {t.user: t.user_id for t in created}
    assert sorted(ids.values()) == list(range(1, 7))
    assert all(ids[t.user] == t.user_id for t in created)
    assert {t.token_id for t in list_tokens(app)} == {t.token_id for t in created}


# -- the repository policy over HTTP: who may point a fabric where ---------------------------

POLICY_CASES = [
    # (who, target, expected status): target "outside" is a repository outside
    # fgd.repositories.allowed, "other_place" the place fabric 2 owns, "inside" a free one.
    ("none", "inside", 401),
    ("viewer", "inside", 403),
    ("configure_other_fabric", "inside", 403),
    ("configure_own_fabric", "outside", 422),
    ("configure_own_fabric", "file_outside", 422),
    ("configure_own_fabric", "other_place", 409),
    ("configure_own_fabric", "inside", 200),
    ("superuser", "outside", 422),  # the policy binds every API caller, superusers too
    ("superuser", "inside", 200),
]


@pytest.mark.parametrize(("who", "target", "expected"), POLICY_CASES,
                         ids=[f"{w}-{t}" for w, t, _ in POLICY_CASES])
def test_auth_matrix_policy_cases(tmp_path: Path, who: str, target: str, expected: int) -> None:
    """A configure token for one fabric cannot repoint it outside the policy, nor onto
    another fabric's place; without the permission for that fabric it learns nothing."""
    from fastapi.testclient import TestClient

    from fgd_api.app import create_app
    from fgd_api.container import Container
    from fgd_core.config import load_settings

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    container = Container.build(load_settings(environ={
        "HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"), "HOME": str(tmp_path),
        "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": str(allowed)}))
    try:
        app = container.app
        own = app.register_fabric("own", str(allowed / "own.git"))
        other = app.register_fabric("other", str(allowed / "other.git"))
        keys = {
            "viewer": create_token(app, "v", permissions=["view_fgd_sync"])[0],
            "configure_other_fabric": create_token(
                app, "o", permissions=["configure_fgd_sync"], fabrics=[other.fabric_id])[0],
            "configure_own_fabric": create_token(
                app, "c", permissions=["configure_fgd_sync"], fabrics=[own.fabric_id])[0],
            "superuser": create_token(app, "s", superuser=True)[0],
        }
        repository = {"outside": str(tmp_path / "elsewhere.git"),
                      "file_outside": f"file://{tmp_path}/elsewhere.git",
                      "other_place": str(allowed / "other.git"),
                      "inside": str(allowed / "new.git")}[target]
        headers = {"Authorization": f"Token {keys[who]}"} if who in keys else {}
        with TestClient(create_app(container)) as client:
            response = client.patch(f"/api/plugins/hedgehog/fabrics/{own.fabric_id}/",
                                    json={"repository": repository}, headers=headers)
        assert response.status_code == expected, response.text
        if expected >= 400:
            assert response.json()["error"]["code"] == "FGD_1003"
            assert app.get_fabric(own.fabric_id).repository == str(allowed / "own.git")
        else:
            assert app.get_fabric(own.fabric_id).repository == repository
    finally:
        container.close()
