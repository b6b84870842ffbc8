"""The HTTP edges refuse what the stores cannot keep, and bound what a request may cost
(issue 10, findings 1 and 7), on SQLite and PostgreSQL through the real app:

- a NUL in a path, query value, header, correlation id or JSON body field is refused with
  the spec's body before anything is audited, so the PostgreSQL read model never meets it;
- request bodies are capped (413) before they are parsed; the webhook keeps GitHub's 25 MiB;
- ``include_content`` is capped per file and in total; error bodies echo little;
- refused anonymous requests are audited at most once per address, reason and second.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.audit_log import audit_entry, record_audit
from fgd_core.application.auth import create_token
from fgd_core.application.webhook_intake import MAX_BODY_BYTES, sign
from fgd_core.config import load_settings
from fgd_core.domain.auth import AuditEntry
from fgd_core.errors import SchemaMismatchError
from fgd_core.events.envelope import decode_envelope
from tests.conftest import PG_URL
from tests.gitserver import init_bare, seed_repo
from tests.resources import vpc

API = "/api/plugins/hedgehog"
SECRET = "edge-secret"


def build(database_url: str | None, tmp_path: Path, **env: str) -> Container:
    environ = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"),
               "HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET": SECRET,
               "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": f"{tmp_path},/srv/", **env}
    if database_url:
        environ["HEDGEHOG_FGD_DATABASE_URL"] = database_url
    return Container.build(load_settings(environ=environ))


@pytest.fixture
def container(database_url: str | None, tmp_path: Path) -> Iterator[Container]:
    c = build(database_url, tmp_path)
    yield c
    c.close()


@pytest.fixture
def fabric_id(client: TestClient, admin: dict[str, str], tmp_path: Path) -> int:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-1", 1)})
    # registered suspended and resumed: no first sync runs beside what the tests count
    response = client.post(f"{API}/fabrics/", headers=admin,
                           json={"name": "lab", "repository": str(bare), "sync_enabled": False})
    assert response.status_code == 201, response.text
    resumed = client.post(f"{API}/fabrics/{response.json()['id']}/resume/", headers=admin)
    assert resumed.status_code == 200, resumed.text
    return int(response.json()["id"])


# -- helpers -------------------------------------------------------------------------------


def stored(container: Container) -> list[bytes]:
    return [n.state for n in container.app.recorder.select_notifications(start=1, limit=10**7)]


def envelope_rows(container: Container, database_url: str | None, tmp_path: Path) -> int:
    """``SELECT envelope FROM fgd_envelopes`` over the whole log: the number of rows read."""
    if database_url is None:
        with sqlite3.connect(tmp_path / "fgd.sqlite3") as conn:
            rows = conn.execute("SELECT envelope FROM fgd_envelopes").fetchall()
        return sum(1 for r in rows if orjson.loads(r[0])["event_type"])
    schema = parse_qs(urlsplit(database_url).query)["schema"][0]
    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(f'SELECT envelope FROM "{schema}".fgd_envelopes').fetchall()
    return sum(1 for r in rows if r[0]["event_type"])


def assert_store_whole(container: Container, database_url: str | None, tmp_path: Path) -> None:
    """The read model catches up (lag 0) and the jsonb/text view reads every stored event."""
    deadline = time.monotonic() + 15
    while container.read_model.lag() != 0:
        assert time.monotonic() < deadline, "the read model does not catch up"
        time.sleep(0.05)
    assert envelope_rows(container, database_url, tmp_path) == len(stored(container))


def assert_refused(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "FGD_1003"
    assert {"message", "details", "timestamp", "correlation_id"} <= set(error)
    if field is not None:
        assert error["details"]["problems"][0]["field"] == field, error
    return error  # type: ignore[no-any-return]


# -- finding 1: the edges refuse what the stores cannot keep ---------------------------------


def test_a_nul_in_the_path_is_refused_before_it_is_audited_and_the_read_model_keeps_up(
    client: TestClient, container: Container, admin: dict[str, str], fabric_id: int,
    database_url: str | None, tmp_path: Path,
) -> None:
    before = len(stored(container))
    for headers in ({}, admin):  # anonymous (the finding) and with a token
        response = client.post(f"{API}/sync-status/x%00y/cancel/", headers=headers)
        assert_refused(response, 422, "path")
    assert len(stored(container)) == before  # not even an audit entry
    # … and the API goes on: a write answers at once, read-your-writes included
    response = client.patch(f"{API}/fabrics/{fabric_id}/", headers=admin,
                            json={"sync_interval_minutes": 30})
    assert response.status_code == 200, response.text
    assert_store_whole(container, database_url, tmp_path)


@pytest.mark.parametrize(("where", "send"), [
    ("header.x-correlation-id", {"headers": {"X-Correlation-ID": "a\x00b"}}),
    ("header.x-correlation-id", {"headers": {"X-Correlation-ID": "a\x1bb"}}),
    ("header.x-correlation-id", {"headers": {"X-Correlation-ID": "c" * 201}}),
    ("header.user-agent", {"headers": {"User-Agent": "evil\x00agent"}}),
    ("query.user", {"params": {"user": "a\x00b"}}),
    ("query.user", {"params": {"user": "a\x1fb"}}),
])
def test_headers_correlation_ids_and_query_values_are_refused(
    client: TestClient, container: Container, admin: dict[str, str], where: str,
    send: dict[str, Any], database_url: str | None, tmp_path: Path,
) -> None:
    before = len(stored(container))
    headers = {**admin, **send.get("headers", {})}
    response = client.get(f"{API}/audit-log/", headers=headers, params=send.get("params"))
    error = assert_refused(response, 422, where)
    assert "\x00" not in response.text and error["correlation_id"] != headers.get(
        "X-Correlation-ID")
    assert len(stored(container)) == before
    # a correlation id of 200 characters is taken as it is (no silent truncation)
    ok = client.get(f"{API}/fabrics/", headers={**admin, "X-Correlation-ID": "c" * 200})
    assert ok.status_code == 200 and ok.headers["X-Correlation-ID"] == "c" * 200
    assert_store_whole(container, database_url, tmp_path)


# (method, path, body template): every POST/PATCH endpoint that takes a JSON body; "{bad}"
# is replaced by the hostile string, as a value and, in the last cases, as a key.
BODIES: list[tuple[str, str, str, str]] = [
    ("post", "/fabrics/", '{"name": "{bad}", "repository": "/srv/x.git"}', "body.name"),
    ("post", "/fabrics/", '{"name": "n", "repository": "{bad}"}', "body.repository"),
    ("patch", "/fabrics/{fabric}/", '{"branch": "{bad}"}', "body.branch"),
    ("post", "/fabrics/{fabric}/gitops-sync/", '{"options": {"{bad}": true}}', "body.options"),
    ("post", "/fabrics/{fabric}/gitops-directory/initialize/", '{"{bad}": true}', "body"),
    ("post", "/fabrics/{fabric}/gitops-directory/repair/", '{"issues": ["{bad}"]}',
     "body.issues[0]"),
    ("post", "/fabrics/{fabric}/gitops-files/process/", '{"file_path": "/gitops/raw/{bad}"}',
     "body.file_path"),
]


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800", "a\\u001fb"])
@pytest.mark.parametrize(("method", "path", "template", "field"), BODIES,
                         ids=[f"{m} {p} {f}" for m, p, _, f in BODIES])
def test_json_bodies_holding_nul_or_lone_surrogates_are_422_naming_the_field(
    client: TestClient, container: Container, admin: dict[str, str], fabric_id: int,
    method: str, path: str, template: str, field: str, bad: str,
) -> None:
    before = len(stored(container))
    body = template.replace("{bad}", bad).encode()
    response = client.request(method.upper(), API + path.format(fabric=fabric_id),
                              content=body, headers={**admin, "Content-Type": "application/json"})
    error = assert_refused(response, 422)
    assert error["details"]["problems"][0]["field"].startswith(field), error
    assert len(stored(container)) == before


def test_a_websocket_with_a_nul_in_its_path_is_refused_before_the_handshake(
    client: TestClient, container: Container,
) -> None:
    before = len(stored(container))
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(
            "/ws/plugins/hedgehog/sync-progress/x%00y/"):
        pass
    assert info.value.code == 1008
    assert len(stored(container)) == before


def test_the_audit_log_and_the_store_never_keep_nul(container: Container) -> None:
    """Behind the edges: audit_entry escapes what callers pass, and the envelope mapper
    refuses an event holding NUL instead of storing what PostgreSQL cannot project."""
    position = record_audit(container.app, user=None, action="probe", fabric_id=None,
                            ip_address="a\x00b", user_agent="ua\x00",
                            details={"path": "/x\x00y", "k\x00": ["\ud800"]},
                            success=False, error_message="e\x00", correlation_id="c\x00")
    state = stored(container)[position - 1]
    envelope = decode_envelope(state)
    assert b"\\u0000" not in state
    assert envelope["payload"]["details"]["path"] == "/x\\x00y"
    raw = AuditEntry(fabric_id=0, correlation_id="c", user=None, action="probe",
                     ip_address=None, user_agent="", sync_id=None, details={},
                     success=False, error_message="NUL\x00")
    with pytest.raises(SchemaMismatchError):
        container.app.save(raw)
    assert len(stored(container)) == position
    assert audit_entry(user=None, action="a", fabric_id=None, ip_address=None,
                       user_agent="", success=True, details={"t": "\\u0000"}).details == {
        "t": "\\u0000"}  # the text backslash-u-0000 is not a NUL: kept as it is


# -- finding 7: bounds -----------------------------------------------------------------------


def test_request_bodies_are_capped_before_they_are_parsed(
    database_url: str | None, tmp_path: Path,
) -> None:
    c = build(database_url, tmp_path, HEDGEHOG_FGD_MAX_REQUEST_BODY_BYTES="4096")
    try:
        with TestClient(create_app(c)) as client:
            key, _ = create_token(c.app, "admin", superuser=True)
            headers = {"Authorization": f"Token {key}", "Content-Type": "application/json"}
            padded = b'{"name": "lab", "repository": "/srv/lab.git"' + b" " * 4100 + b"}"
            error = assert_refused(client.post(f"{API}/fabrics/", content=padded,
                                               headers=headers), 413, "body")
            assert "4096" in error["message"]

            def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it comes
                yield padded[:3000]
                yield padded[3000:]

            assert_refused(client.post(f"{API}/fabrics/", content=streamed(),
                                       headers=headers), 413, "body")
            # a declared 50 MB body is refused on its Content-Length, before it is read
            response = client.post(f"{API}/fabrics/", content=b"{}",
                                   headers={**headers, "Content-Length": str(50 * 2**20)})
            assert_refused(response, 413, "body")
            fits = client.post(f"{API}/fabrics/", headers=headers,
                               content=b'{"name": "lab", "repository": "/srv/lab.git"}')
            assert fits.status_code == 201, fits.text
            # the webhook keeps GitHub's 25 MiB: 2 MiB signed is read (and answered)
            body = orjson.dumps({"zen": "z" * 2 * 2**20, "hook_id": 1})
            hook = client.post(f"{API}/webhooks/github/", content=body, headers={
                "X-GitHub-Event": "ping", "X-GitHub-Delivery": "big-ping",
                "X-Hub-Signature-256": sign(SECRET, body)})
            assert hook.status_code == 200 and hook.json()["msg"] == "pong"
            assert MAX_BODY_BYTES == 25 * 2**20
    finally:
        c.close()


def test_error_bodies_echo_little_of_the_client_input(
    client: TestClient, admin: dict[str, str],
) -> None:
    response = client.get(f"{API}/sync-status/{'s' * 1900}/", headers=admin)
    error = assert_refused(response, 404)
    assert len(response.content) < 1200 and len(error["message"]) <= 300
    response = client.get(f"{API}/sync-status/{'s' * 50_000}/", headers=admin)
    assert_refused(response, 414, "path")
    assert len(response.content) < 600
    many = {f"extra-{i}-" + "k" * 300: 1 for i in range(1000)}
    response = client.post(f"{API}/fabrics/", headers=admin,
                           json={"name": "n", "repository": "/r", **many})
    error = assert_refused(response, 422)
    assert len(response.content) < 10_000 and error["details"]["more_problems"] == 980


def test_include_content_is_capped_per_file_and_in_total(
    database_url: str | None, tmp_path: Path,
) -> None:
    c = build(database_url, tmp_path, HEDGEHOG_FGD_FILES_CONTENT_MAX_FILE_BYTES="1000",
              HEDGEHOG_FGD_FILES_CONTENT_MAX_TOTAL_BYTES="1500")
    try:
        bare = init_bare(tmp_path / "files.git")
        seed_repo(bare, {"gitops/raw/a.yaml": b"# " + "é".encode() * 1200 + b"\n",
                         "gitops/raw/b.yaml": b"# " + b"b" * 1200 + b"\n",
                         "gitops/raw/c.yaml": b"# small\n"})
        fabric = c.app.register_fabric("files", str(bare))
        with TestClient(create_app(c)) as client:
            key, _ = create_token(c.app, "admin", superuser=True)
            response = client.get(
                f"{API}/fabrics/{fabric.fabric_id}/gitops-files/?directory=raw"
                "&include_content=true", headers={"Authorization": f"Token {key}"})
        assert response.status_code == 200, response.text
        listing = response.json()
        files = {f["path"].rsplit("/", 1)[-1]: f for f in listing["files"]}
        sizes = {name: len(f["content"].encode()) for name, f in files.items()}
        assert listing["truncated"] is True
        assert sizes["a.yaml"] <= 1000 and files["a.yaml"]["truncated"]
        assert sum(sizes.values()) <= 1500
        assert all(f["truncated"] is (f["size"] > sizes[n]) for n, f in files.items())
        assert files["a.yaml"]["content"].startswith("# éé")  # cut on a character boundary
    finally:
        c.close()


def test_refused_anonymous_requests_are_audited_once_per_address_reason_and_second(
    client: TestClient, container: Container, database_url: str | None, tmp_path: Path,
) -> None:
    """10,000 refused anonymous requests — no token, a bad token, long paths — grow the
    store by less than 1 MB; each audit entry counts the refusals it stands for."""
    before = stored(container)
    sqlite_file = tmp_path / "fgd.sqlite3"
    file_before = sqlite_file.stat().st_size if database_url is None else 0
    long_sync = "s" * 1800
    started = time.monotonic()
    for i in range(10_000):
        headers = {"Authorization": "Token " + "0" * 40} if i % 2 else {}
        if i % 3 == 0:
            response = client.post(f"{API}/sync-status/{long_sync}{i}/cancel/", headers=headers)
        else:
            response = client.get(f"{API}/sync-status/{long_sync}{i}/", headers=headers)
        assert response.status_code == 401
    elapsed = time.monotonic() - started
    new = stored(container)[len(before):]
    grown = sum(len(state) for state in new)
    assert grown < 1_000_000, grown
    if database_url is None:
        assert sqlite_file.stat().st_size - file_before < 1_000_000
    entries = [decode_envelope(state)["payload"] for state in new]
    assert all(e["action"] in ("cancel_sync", "view_sync") and not e["success"]
               for e in entries)
    assert len(entries) <= 2 * (elapsed + 1) + 2  # two reasons, one entry a second each
    assert all(len(e["details"]["path"]) <= 200 for e in entries)
    counted = len(entries) + sum(e["details"]["suppressed"] for e in entries)
    # only the refusals of each reason's last window are not in an entry yet
    assert 10_000 - 3 * 10_000 / elapsed - 10 <= counted <= 10_000
    assert {e["details"]["reason"] for e in entries} == {"no token", "invalid token"}
    assert_store_whole(container, database_url, tmp_path)
