"""Issue 10, findings 3-6, as regression tests against the real API (SQLite and PostgreSQL),
real git repositories and a real git smart-HTTP listener on 127.0.0.1.

3. the git token goes only over https to ``github.token_hosts``, never after a redirect
   to another origin;
4. a fabric cannot be pointed outside ``fgd.repositories.allowed`` (another fabric's
   repository, a local path, ``file://``) nor at the place another fabric owns;
5. credentials inside a repository URL are refused at save and never shown;
6. unsupported transports, bad branch names and unclean directories are refused at save
   with 422 FGD_1003 naming the field, and nothing is saved.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.adapters.git_repo import GitRemote
from fgd_core.application.auth import create_token
from fgd_core.application.replay import history
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.cli.main import main as fgd_cli
from fgd_core.config import load_settings
from fgd_core.domain.fabric import Fabric
from fgd_core.errors import DuplicateError
from tests.gitserver import GitHTTPServer, init_bare, seed_repo
from tests.resources import vpc

API = "/api/plugins/hedgehog"
TOKEN = "ghs_0123456789abcdefTOKENvalue"


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    path = tmp_path / "allowed"
    path.mkdir()
    return path


@pytest.fixture
def lab_repo(allowed: Path) -> Path:
    bare = init_bare(allowed / "lab.git")
    seed_repo(bare, {"gitops/raw/a.yaml": vpc("vpc-a", 1)})
    return bare


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Another team's repository on the same server, outside the allowed prefixes."""
    bare = init_bare(tmp_path / "outside" / "secret.git")
    seed_repo(bare, {"gitops/raw/secret.yaml": vpc("vpc-secret", 7)})
    return bare


def build(tmp_path: Path, database_url: str | None, allowed: str) -> Container:
    environ = {
        "HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"),
        "HOME": str(tmp_path),
        "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": allowed,
    }
    if database_url:
        environ["HEDGEHOG_FGD_DATABASE_URL"] = database_url
    return Container.build(load_settings(environ=environ))


@pytest.fixture
def container(tmp_path: Path, database_url: str | None, allowed: Path) -> Iterator[Container]:
    c = build(tmp_path, database_url, f"{allowed}/,https://github.com/acme/")
    yield c
    c.close()


@pytest.fixture
def admin(container: Container) -> dict[str, str]:
    return {"Authorization": f"Token {create_token(container.app, 'admin', superuser=True)[0]}"}


def configure_token(container: Container, fabric_id: int) -> dict[str, str]:
    """A token that may configure (and view) one fabric only: the attacker of the issue."""
    key, _ = create_token(container.app, "cfg", fabrics=[fabric_id],
                          permissions=["configure_fgd_sync", "view_fgd_sync"])
    return {"Authorization": f"Token {key}"}


def refused(response: Any, field: str, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "FGD_1003"
    # checked by the domain: details.field; by the request schema: details.problems
    named = [error["details"].get("field")] + [
        p["field"].rsplit(".", 1)[-1] for p in error["details"].get("problems", [])]
    assert field in named, error
    return dict(error)


def stored_count(container: Container) -> int:
    """Events other than the audit entries (every refusal is audited, nothing else)."""
    return sum(1 for r in history(container.app) if r.event_type != "audit.recorded")


def register(client: TestClient, headers: dict[str, str], repository: str, name: str = "lab",
             **settings: Any) -> Any:
    """Registered suspended and resumed unless the test says otherwise: no first sync runs
    beside what the test looks at (test_fabric_lifecycle tests that one)."""
    resume = "sync_enabled" not in settings
    response = client.post(f"{API}/fabrics/", headers=headers,
                           json={"name": name, "repository": repository,
                                 **({"sync_enabled": False} if resume else {}), **settings})
    if resume and response.status_code == 201:
        resumed = client.post(f"{API}/fabrics/{response.json()['id']}/resume/",
                              headers=headers)
        assert resumed.status_code == 200, resumed.text
        return type(response)(201, json={**response.json(), **resumed.json()},
                              request=response.request)
    return response


# -- finding 3: the token is scoped ---------------------------------------------------------


def test_a_fabric_pointed_at_a_local_http_listener_never_receives_the_token(
    tmp_path: Path, database_url: str | None, allowed: Path, lab_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The attack of finding 3, with the listener inside the policy (an operator allowed
    http://127.0.0.1:PORT): the save succeeds, listing files reaches the listener, the
    token does not — the scheduler's fetches go through the same remote factory."""
    with GitHTTPServer(tmp_path / "listener", token="anything") as listener:
        init_bare(listener.root / "x.git")
        monkeypatch.setenv("HEDGEHOG_FGD_GITHUB_TOKEN", TOKEN)  # read by the container
        container = build(tmp_path, database_url, f"{allowed},{listener.url()}")
        try:
            with TestClient(create_app(container)) as client:
                key, _ = create_token(container.app, "a", superuser=True)
                admin = {"Authorization": f"Token {key}"}
                fabric_id = register(client, admin, str(lab_repo)).json()["id"]
                cfg = configure_token(container, fabric_id)
                moved = client.patch(f"{API}/fabrics/{fabric_id}/", headers=cfg,
                                     json={"repository": listener.url("x.git")})
                assert moved.status_code == 200, moved.text
                files = client.get(f"{API}/fabrics/{fabric_id}/gitops-files/", headers=cfg)
                assert files.status_code == 409 and files.json()["error"]["code"] == "FGD_4002"
                sync = client.post(f"{API}/fabrics/{fabric_id}/gitops-sync/", headers=admin,
                                   json={})
                container.executor.wait(sync.json()["sync_id"], timeout=30)
        finally:
            container.close()
    assert listener.requests, "the listener was asked"
    assert listener.auth_headers and set(listener.auth_headers) == {None}


def test_the_token_never_follows_a_redirect_to_another_origin(tmp_path: Path) -> None:
    with GitHTTPServer(tmp_path / "a", token=TOKEN) as origin, \
            GitHTTPServer(tmp_path / "b") as elsewhere:
        init_bare(origin.root / "fabric.git")
        init_bare(elsewhere.root / "fabric.git")
        path = "fabric.git/info/refs?service=git-upload-pack"
        origin.fail_next(302, headers={"Location": elsewhere.url(path)})
        remote = GitRemote(origin.url("fabric.git"), token=TOKEN)
        with pytest.raises(Exception) as info:
            remote.fetch("main")
        assert getattr(info.value, "code", None) == "FGD_4001"
        assert "redirected to another origin" in str(info.value)
        assert elsewhere.requests == []  # not followed at all, so nothing to leak
        assert TOKEN not in str(info.value.__dict__)

        # Within the origin (GitHub renaming a repository) it is followed, with the token.
        init_bare(origin.root / "renamed.git")
        origin.fail_next(301, headers={"Location": origin.url(
            "renamed.git/info/refs?service=git-upload-pack")})
        origin.auth_headers.clear()
        assert remote.fetch("main").head is None  # the renamed (empty) repository answered
        assert origin.auth_headers and None not in origin.auth_headers


def test_the_runner_withholds_the_token_from_http_and_from_other_hosts(
    app: Any, tmp_path: Path
) -> None:
    with GitHTTPServer(tmp_path / "srv", token=TOKEN) as server:
        init_bare(server.root / "fabric.git")
        fabric = app.register_fabric("lab", server.url("fabric.git"))
        # Even naming the listener among the token hosts: http is never given the token.
        config = load_settings(environ={
            "HEDGEHOG_FGD_GITHUB_TOKEN_HOSTS": f"127.0.0.1:{server.port},github.com"}).fgd
        result = SyncRunner(app, config, token=TOKEN).run(fabric.fabric_id)
        assert result.sync.errors[-1]["code"] == "FGD_4002"
        assert server.auth_headers and set(server.auth_headers) == {None}


def test_connection_errors_do_not_tell_a_closed_port_from_others(tmp_path: Path) -> None:
    """What an error body says about a URL nobody answers: "cannot reach", whatever the
    socket said (refused, reset, timeout)."""
    with GitHTTPServer(tmp_path / "srv") as server:
        port = server.port
    remote = GitRemote(f"http://127.0.0.1:{port}/x.git")  # the server is gone: refused
    with pytest.raises(Exception) as info:
        remote.fetch("main")
    error = info.value
    assert getattr(error, "code", None) == "FGD_4001"
    assert "refused" not in str(error).lower() and error.details["reason"] == "unreachable"


# -- finding 4: the repository policy --------------------------------------------------------


def test_a_configure_token_cannot_point_its_fabric_outside_the_policy(
    client: TestClient, container: Container, admin: dict[str, str], allowed: Path,
    lab_repo: Path, outside: Path, tmp_path: Path,
) -> None:
    fabric_id = register(client, admin, str(lab_repo)).json()["id"]
    cfg = configure_token(container, fabric_id)
    link = allowed / "link.git"
    link.symlink_to(outside)  # inside the prefix by name, outside by what it is
    before = stored_count(container)
    for repository in (
        str(outside),
        f"file://{outside}",
        f"{allowed}/../outside/secret.git",
        f"file://{allowed}/%2e%2e/outside/secret.git",
        str(link),
        f"{allowed}x/evil.git",  # a prefix is matched by whole path components
        "outside/secret.git",  # relative: resolved against whatever the server's cwd is
        "https://github.com/acme-evil/r.git",
        "https://github.com.evil.example/acme/r.git",
        "http://github.com/acme/r.git",  # the prefix says https
        "https://github.com:8443/acme/r.git",
    ):
        response = client.patch(f"{API}/fabrics/{fabric_id}/", headers=cfg,
                                json={"repository": repository})
        refused(response, "repository")
    assert stored_count(container) == before  # refused before anything was written
    shown = client.get(f"{API}/fabrics/{fabric_id}/", headers=cfg).json()
    assert shown["repository"] == str(lab_repo)
    files = client.get(f"{API}/fabrics/{fabric_id}/gitops-files/?include_content=true",
                       headers=cfg).json()
    assert "secret" not in str(files)

    # Normalized forms of allowed repositories are accepted.
    for repository in ("https://GitHub.com:443/acme/r.git/", f"file://{lab_repo}"):
        response = client.patch(f"{API}/fabrics/{fabric_id}/", headers=cfg,
                                json={"repository": repository})
        assert response.status_code == 200, response.text


def test_two_fabrics_cannot_own_one_repository_branch_and_directory(
    client: TestClient, container: Container, admin: dict[str, str], lab_repo: Path,
) -> None:
    first = register(client, admin, str(lab_repo)).json()["id"]
    for variant in (str(lab_repo), f"{lab_repo}/", f"file://{lab_repo}",
                    f"{lab_repo.parent}/./{lab_repo.name}"):
        error = refused(register(client, admin, variant, name="copy"), "repository", 409)
        assert error["details"]["fabric_id"] == first
    # another directory or branch of the same repository is another place
    second = register(client, admin, str(lab_repo), name="dev", branch="dev").json()["id"]
    third = register(client, admin, str(lab_repo), name="ops", gitops_directory="ops").json()
    assert third["id"] == second + 1
    # ... and moving onto an owned place is refused the same way, on every field
    refused(client.patch(f"{API}/fabrics/{second}/", headers=admin, json={"branch": "main"}),
            "repository", 409)
    refused(client.patch(f"{API}/fabrics/{third['id']}/", headers=admin,
                         json={"gitops_directory": "gitops"}), "repository", 409)
    # a fabric that moves away frees its place
    client.patch(f"{API}/fabrics/{first}/", headers=admin, json={"gitops_directory": "old"})
    assert client.patch(f"{API}/fabrics/{third['id']}/", headers=admin,
                        json={"gitops_directory": "gitops"}).status_code == 200
    https_first = register(client, admin, "https://github.com/acme/r.git", name="gh")
    assert https_first.status_code == 201
    for variant in ("https://github.com/acme/r", "https://GITHUB.com/acme/r/"):
        refused(register(client, admin, variant, name="gh2"), "repository", 409)


def test_concurrent_registrations_of_one_place_conflict_and_one_wins(app: Any) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        barrier.wait()
        try:
            app.register_fabric(f"f{n}", "https://github.com/acme/r.git")
            outcomes.append("ok")
        except DuplicateError:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate"] * 3 + ["ok"]


def test_fabrics_registered_before_places_were_recorded_keep_theirs(app: Any) -> None:
    """A store written before ``registry.claimed`` existed: its fabrics' places are claimed
    on the next registration, so a newcomer cannot take one."""
    registry = app._registry()
    registry.add(1, "old", "fabric-1")
    legacy = Fabric(fabric_id=1, correlation_id="fabric-1", name="old",
                    repository="https://github.com/acme/r.git", branch="main",
                    gitops_directory="gitops", sync_enabled=True, auto_sync_on_change=False,
                    sync_interval_minutes=60)
    app.save(registry, legacy)  # as an older version saved it: no claim
    with pytest.raises(DuplicateError):
        app.register_fabric("new", "https://github.com/acme/r")
    assert app.register_fabric("new", "https://github.com/acme/other").fabric_id == 2


# -- finding 5: credentials in URLs ----------------------------------------------------------


def test_credentials_in_a_repository_url_are_refused_and_never_shown(
    client: TestClient, container: Container, admin: dict[str, str], lab_repo: Path,
) -> None:
    before = stored_count(container)
    for url in ("https://user:s3cretpw@github.com/acme/r.git",
                "https://s3cretpw@github.com/acme/r.git",
                "https://github.com/acme/r.git?access_token=s3cretpw"):
        error = refused(register(client, admin, url), "repository")
        assert "s3cretpw" not in str(error)
    assert stored_count(container) == before
    fabric_id = register(client, admin, str(lab_repo)).json()["id"]
    response = client.patch(f"{API}/fabrics/{fabric_id}/", headers=admin,
                            json={"repository": "https://x-access-token:s3cretpw@github.com/acme/r"})
    assert "s3cretpw" not in response.text
    refused(response, "repository")
    audit = client.get(f"{API}/audit-log/", headers=admin).text
    assert "s3cretpw" not in audit
    assert all("s3cretpw" not in str(r.envelope) for r in history(container.app))


def test_credentials_stored_by_an_older_version_are_redacted_from_every_view(
    client: TestClient, container: Container, admin: dict[str, str], tmp_path: Path,
) -> None:
    app = container.app
    registry = app._registry()
    registry.add(1, "legacy", "fabric-1")
    legacy = Fabric(fabric_id=1, correlation_id="fabric-1", name="legacy",
                    repository="https://user:s3cretpw@github.com/acme/r.git", branch="main",
                    gitops_directory="gitops", sync_enabled=True, auto_sync_on_change=False,
                    sync_interval_minutes=60)
    app.save(registry, legacy)  # bypassing today's checks, as an older version did
    container.read_model.wait_for(app.last_position())
    for url in (f"{API}/fabrics/1/", f"{API}/fabrics/"):
        response = client.get(url, headers=admin)
        assert response.status_code == 200
        assert "s3cretpw" not in response.text and "github.com/acme/r.git" in response.text
    assert all("s3cretpw" not in str(r.envelope) for r in history(app))
    # replay still rebuilds the fabric as stored (its syncs keep their credentials)
    assert app.get_fabric(1).repository == "https://user:s3cretpw@github.com/acme/r.git"
    env = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "fgd.sqlite3"), "HOME": str(tmp_path)}
    if container.settings.database_url:
        env["HEDGEHOG_FGD_DATABASE_URL"] = container.settings.database_url
    for args in (["events", "--json"], ["fabric", "list"]):
        out = CliRunner().invoke(fgd_cli, args, env=env)
        assert out.exit_code == 0, out.output
        assert "s3cretpw" not in out.output and "acme/r.git" in out.output


# -- finding 6: bad settings are refused at save ---------------------------------------------

BAD_SETTINGS = [
    ("repository", "ssh://git@github.com/acme/r.git"),
    ("repository", "git://github.com/acme/r.git"),
    ("repository", "ext::sh -c touch% /tmp/pwned"),
    ("repository", "git@github.com:acme/r.git"),
    ("repository", "fd::17"),
    ("repository", "ftp://github.com/acme/r.git"),
    ("repository", "https:///nohost"),
    ("repository", "https://[::1/x"),
    ("repository", "https://github.com:99999/acme/r"),
    ("branch", "refs/heads/../../HEAD"),
    ("branch", "-delete"),
    ("branch", "HEAD"),
    ("branch", "a..b"),
    ("branch", "a.lock"),
    ("branch", "x@{1}"),
    ("branch", "with space"),
    ("branch", "a//b"),
    ("branch", ".hidden"),
    ("gitops_directory", "."),
    ("gitops_directory", ".git"),
    ("gitops_directory", "a/.GIT"),
    ("gitops_directory", "a/./b"),
    ("gitops_directory", ".."),
    ("gitops_directory", "/abs"),
    ("gitops_directory", "a//b"),
]


# Storage plays no part in these refusals (the hypothesis test runs both backends).
@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS,
                         ids=[f"{f}={v}" for f, v in BAD_SETTINGS])
def test_bad_settings_are_422_naming_the_field_and_nothing_is_saved(
    client: TestClient, container: Container, admin: dict[str, str], lab_repo: Path,
    field: str, value: str,
) -> None:
    fabric_id = register(client, admin, str(lab_repo)).json()["id"]
    before = stored_count(container)
    body = {"repository": "https://github.com/acme/new.git", field: value}
    refused(register(client, admin, body.pop("repository"), name="new", **body), field)
    refused(client.patch(f"{API}/fabrics/{fabric_id}/", headers=admin, json={field: value}),
            field)
    assert stored_count(container) == before
    assert client.get(f"{API}/fabrics/", headers=admin).json()["count"] == 1


def test_the_cli_checks_transports_but_not_the_policy(tmp_path: Path, lab_repo: Path) -> None:
    """``fgd fabric register`` acts with the operator's rights: a local path outside the
    (default, https-only) policy is fine; an ssh:// URL is refused with FGD_1003, no
    traceback."""
    env = {"HEDGEHOG_FGD_SQLITE_PATH": str(tmp_path / "cli.sqlite3"), "HOME": str(tmp_path)}
    ok = CliRunner().invoke(fgd_cli, ["fabric", "register", "lab", "--repo", str(lab_repo)],
                            env=env)
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(
        fgd_cli, ["fabric", "register", "x", "--repo", "ssh://git@h/r.git"], env=env)
    assert bad.exit_code != 0
    assert "FGD_1003" in bad.output and "Traceback" not in bad.output
    assert bad.exception is None or isinstance(bad.exception, SystemExit)
    assert os.path.exists(tmp_path / "cli.sqlite3")
    # `fgd sync` finds the fabric owning the place however the repository is spelled
    for spelling in (f"file://{lab_repo}", f"{lab_repo}/"):
        again = CliRunner().invoke(fgd_cli, ["sync", "--repo", spelling, "--validate-only",
                                             "--json"], env=env)
        assert again.exit_code == 0, again.output
    listed = CliRunner().invoke(fgd_cli, ["fabric", "list"], env=env)
    assert listed.output.count('"id"') == 1, listed.output
