"""No 500 for a bad setting (issue 10, finding 6): arbitrary text — all of Unicode, NUL,
lone surrogates, very long strings, URL-shaped and path-shaped values — as a fabric's
repository, branch and gitops_directory, through POST and PATCH of the real API on SQLite
and PostgreSQL. Every answer is the spec's error body or a success; never a 5xx. What was
accepted is what the rules accept, and the fabrics stay readable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.application.repository_policy import RepositoryPolicy
from fgd_core.config import load_settings
from fgd_core.domain.repository import LocationError, branch_problem, directory_problem
from tests.gitserver import init_bare

API = "/api/plugins/hedgehog"
FIELDS = ("repository", "branch", "gitops_directory")

any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates too
long_text = st.text(st.characters(exclude_categories=()), min_size=190, max_size=700)
fragments = st.sampled_from(["", "/", "..", ".", ".git", "%2e%2e", "@", ":", "::", "\x00",
                             "refs/heads/", "~", "^", "@{", ".lock", "//", "\\", "?", "#",
                             "\ud800", "é", " ", "-", "HEAD"])
urlish = st.builds(
    lambda scheme, host, parts: f"{scheme}{host}/{'/'.join(parts)}",
    st.sampled_from(["https://", "http://", "file://", "ssh://", "git://", "ext::", "", "/",
                     "HTTPS://", "https:", "fd::"]),
    st.sampled_from(["github.com", "GitHub.com:443", "github.com/acme", "127.0.0.1:1",
                     "[::1]", "user:pw@github.com", "", "localhost", "github.com:0"]),
    st.lists(st.one_of(fragments, any_text), max_size=5),
)
value = st.one_of(any_text, long_text, urlish,
                  st.lists(st.one_of(fragments, any_text), max_size=6).map("/".join))


@pytest.fixture
def api(tmp_path: Path, database_url: str | None) -> Iterator[tuple[TestClient, Container]]:
    init_bare(tmp_path / "allowed" / "lab.git")
    environ = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"), "HOME": str(tmp_path),
               "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": f"{tmp_path}/allowed,https://github.com/"}
    if database_url:
        environ["HEDGEHOG_FGD_DATABASE_URL"] = database_url
    container = Container.build(load_settings(environ=environ))
    with TestClient(create_app(container)) as client:
        yield client, container
    container.close()


def send(client: TestClient, method: str, url: str, body: dict[str, Any],
         headers: dict[str, str]) -> Any:
    # json.dumps escapes lone surrogates (\\ud800): the text reaches the server as sent.
    return client.request(method, url, content=json.dumps(body),
                          headers={**headers, "Content-Type": "application/json"})


def acceptable(field: str, text: str, policy: RepositoryPolicy) -> bool:
    """Whether the rules accept ``text`` for ``field`` (what a 2xx must agree with)."""
    try:
        if field == "repository":
            policy.check(text)
            return True
    except (LocationError, Exception):
        return False
    problem = branch_problem(text) if field == "branch" else directory_problem(text)
    return problem is None


def test_arbitrary_settings_through_post_and_patch_never_answer_5xx(
    api: tuple[TestClient, Container], tmp_path: Path
) -> None:
    client, container = api
    key, _ = create_token(container.app, "admin", superuser=True)
    headers = {"Authorization": f"Token {key}"}
    lab = send(client, "POST", f"{API}/fabrics/",
               {"name": "lab", "repository": f"{tmp_path}/allowed/lab.git"}, headers)
    assert lab.status_code == 201, lab.text
    lab_id = lab.json()["id"]
    policy = container.app.repository_policy
    assert policy is not None
    names = iter(range(1_000_000))

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(field=st.sampled_from(FIELDS), text=value)
    @example(field="repository", text="ext::sh -c id")
    @example(field="branch", text="refs/heads/../../HEAD")
    @example(field="gitops_directory", text=".git")
    @example(field="repository", text="https://github.com/\x00")
    @example(field="branch", text="\ud800")
    def check(field: str, text: str) -> None:
        body = {"repository": "https://github.com/acme/new.git", field: text}
        created = send(client, "POST", f"{API}/fabrics/", {"name": f"f{next(names)}", **body},
                       headers)
        patched = send(client, "PATCH", f"{API}/fabrics/{lab_id}/", {field: text}, headers)
        for response in (created, patched):
            assert response.status_code < 500, response.text
            assert response.status_code in (200, 201, 409, 422), response.text
            if response.status_code >= 400:
                assert response.json()["error"]["code"] == "FGD_1003"
        if patched.status_code == 200:
            assert acceptable(field, text, policy), (field, text)
            current = patched.json()[field]
            send(client, "PATCH", f"{API}/fabrics/{lab_id}/",
                 {field: {"repository": f"{tmp_path}/allowed/lab.git", "branch": "main",
                          "gitops_directory": "gitops"}[field]}, headers)
            assert current == text
        if created.status_code == 201:
            # free the place again, so later examples are judged on their own value
            send(client, "PATCH", f"{API}/fabrics/{created.json()['id']}/",
                 {"gitops_directory": f"moved{next(names)}"}, headers)

    check()
    listed = client.get(f"{API}/fabrics/", headers=headers)
    assert listed.status_code == 200
    assert all(f["repository"] for f in listed.json()["results"])
