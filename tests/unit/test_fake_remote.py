"""The retry policy and ``fgd_core.adapters.testing.FakeGitRemote`` (the spec's MockGitHubClient):
pure tests — an SQLite event store in a temporary folder, no network, no real waiting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fgd_core.adapters.git_repo import GitRemote, RemoteMovedError, Snapshot
from fgd_core.adapters.persistence import persistence_env
from fgd_core.adapters.testing import DEFAULT_FAKE_FILES, FakeGitRemote, RecordingEventBus
from fgd_core.application.app import FGDApplication
from fgd_core.application.pipeline_common import commit_and_push
from fgd_core.application.pipeline_local import LocalSyncDriver
from fgd_core.application.retry import backoff_delay, call_with_retry, retry_delay
from fgd_core.application.steps import SyncSteps
from fgd_core.application.sync_runner import SyncResult, SyncRunner
from fgd_core.config import FGDConfig, RetryPolicy, load_settings
from fgd_core.errors import (
    FGDError,
    GitHubAuthenticationError,
    GitHubConnectionError,
    GitHubNotFoundError,
    GitHubRateLimitError,
    SyncFailedError,
)
from tests.resources import vpc

POLICY = RetryPolicy(max_attempts=3, initial_delay=1.0, backoff_factor=2.0, max_delay=60.0)
MANAGED = "gitops/managed/vpcs/vpc-test.yaml"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FGDApplication]:
    application = FGDApplication(env=persistence_env(None, tmp_path / "fgd.sqlite3"))
    yield application
    application.close()


@pytest.fixture
def config() -> FGDConfig:
    return load_settings(environ={}).fgd  # the default policy: 3 attempts, 1 s ×2, ≤ 60 s


def rate_limited(retry_after: int | None = None) -> GitHubRateLimitError:
    return GitHubRateLimitError("slow down", details={"retry_after_seconds": retry_after})


class Flaky:
    """A callable raising the given errors one by one, then returning "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


# -- services.retry ----------------------------------------------------------------------------


def test_backoff_grows_by_the_factor_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=9, initial_delay=0.5, backoff_factor=3, max_delay=10)
    assert [backoff_delay(policy, n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10, 10]
    assert backoff_delay(policy, 10_000) == 10  # no overflow


def test_transient_errors_are_retried_with_backoff_and_reported() -> None:
    slept: list[float] = []
    seen: list[tuple[str, int, float]] = []
    fn = Flaky(GitHubConnectionError("reset"), rate_limited())
    result = call_with_retry(fn, POLICY, sleep=slept.append,
                             on_retry=lambda e, a, d: seen.append((e.code, a, d)))
    assert result == "ok" and fn.calls == 3
    assert slept == [1.0, 2.0]
    assert seen == [("FGD_4001", 1, 1.0), ("FGD_4003", 2, 2.0)]


@pytest.mark.parametrize("error", [
    GitHubAuthenticationError("no"), GitHubNotFoundError("gone"), SyncFailedError("bug"),
    FGDError("internal"),
])
def test_permanent_errors_fail_at_once(error: FGDError) -> None:
    slept: list[float] = []
    fn = Flaky(error)
    with pytest.raises(type(error)):
        call_with_retry(fn, POLICY, sleep=slept.append)
    assert fn.calls == 1 and slept == []


def test_non_fgd_exceptions_are_not_retried() -> None:
    fn = Flaky(ValueError("a bug"))
    with pytest.raises(ValueError):
        call_with_retry(fn, POLICY, sleep=lambda s: None)
    assert fn.calls == 1


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    fn = Flaky(*(GitHubConnectionError(f"reset {i}") for i in range(5)))
    with pytest.raises(GitHubConnectionError) as raised:
        call_with_retry(fn, POLICY, sleep=lambda s: None)
    assert fn.calls == 3 and raised.value.message == "reset 2"
    assert raised.value.details["attempts"] == 3


def test_retry_after_is_honoured_when_it_fits() -> None:
    slept: list[float] = []
    call_with_retry(Flaky(rate_limited(7)), POLICY, sleep=slept.append)
    assert slept == [7.0]  # longer than the backoff (1 s): the server's wish wins
    slept.clear()
    call_with_retry(Flaky(rate_limited(0), rate_limited(0)), POLICY, sleep=slept.append)
    assert slept == [1.0, 2.0]  # never shorter than the backoff


def test_retry_after_beyond_max_delay_or_the_deadline_gives_up_at_once() -> None:
    policy = RetryPolicy(max_attempts=5, initial_delay=0.1, backoff_factor=2, max_delay=5)
    fn = Flaky(rate_limited(30))
    with pytest.raises(GitHubRateLimitError):
        call_with_retry(fn, policy, sleep=lambda s: None)
    assert fn.calls == 1
    fn = Flaky(rate_limited(3))
    with pytest.raises(GitHubRateLimitError):  # 3 s fits max_delay but not the 2 s left
        call_with_retry(fn, policy, sleep=lambda s: None, deadline=102.0, clock=lambda: 100.0)
    assert fn.calls == 1
    assert retry_delay(rate_limited(3), policy, 1, deadline=104.0, now=100.0) == 3.0
    assert retry_delay(GitHubConnectionError("x"), policy, 1, deadline=100.05, now=100.0) is None


def test_on_retry_may_stop_the_retries() -> None:
    class Stop(Exception):
        pass

    def stop(*_: Any) -> None:
        raise Stop

    fn = Flaky(GitHubConnectionError("reset"))
    with pytest.raises(Stop):
        call_with_retry(fn, POLICY, sleep=lambda s: None, on_retry=stop)
    assert fn.calls == 1


# -- FakeGitRemote -----------------------------------------------------------------------------


def test_fake_remote_is_a_git_remote_with_fetch_commit_push() -> None:
    remote = FakeGitRemote()
    assert isinstance(remote, GitRemote)
    snap = remote.fetch("main")
    assert snap.head == remote.head() and [e.path for e in snap.files()] == list(DEFAULT_FAKE_FILES)
    sha = remote.commit(snap, {"docs/a.md": b"a\n", "gitops/raw/test.yaml": None}, "m",
                        "A <a@example.com>")
    assert remote.head() == snap.head  # not pushed yet
    remote.push(sha, "main", snap.head)
    assert remote.head() == sha and remote.files() == {"docs/a.md": b"a\n"}
    assert remote.calls == [("fetch", "main"),
                            ("commit", snap.head, ("docs/a.md", "gitops/raw/test.yaml")),
                            ("push", sha, "main", snap.head)]


def test_fake_remote_push_is_a_compare_and_swap() -> None:
    remote = FakeGitRemote(files={"a.txt": "1\n"})
    snap = remote.fetch("main")
    mine = remote.commit(snap, {"b.txt": b"2\n"}, "mine", "A <a@example.com>")
    theirs = remote.commit_files({"c.txt": "3\n"})
    with pytest.raises(RemoteMovedError) as moved:
        remote.push(mine, "main", snap.head)
    assert moved.value.details["actual_sha"] == theirs and remote.head() == theirs


def test_fake_remote_empty_and_other_branches() -> None:
    remote = FakeGitRemote(files={})
    snap = remote.fetch("main")
    assert snap.head is None and snap.files() == ()
    sha = remote.commit(snap, {"x": b"x"}, "first", "A <a@example.com>")
    remote.push(sha, "main", None)
    assert remote.files() == {"x": b"x"} and remote.fetch("other").head is None


@pytest.mark.parametrize(("scenario", "error", "code"), [
    ("rate_limited", GitHubRateLimitError, "FGD_4003"),
    ("connection_failure", GitHubConnectionError, "FGD_4001"),
    ("not_found", GitHubNotFoundError, "FGD_4004"),
    ("auth_failed", GitHubAuthenticationError, "FGD_4002"),
])
def test_fake_remote_scenarios_raise_the_transport_errors(
    scenario: str, error: type[FGDError], code: str
) -> None:
    remote = FakeGitRemote(scenario, retry_after=5, fail_times=2)
    for _ in range(2):
        with pytest.raises(error) as raised:
            remote.fetch("main")
        assert raised.value.code == code
    if scenario == "rate_limited":
        assert raised.value.details["retry_after_seconds"] == 5
    assert remote.fetch("main").head == remote.head()  # fail_times used up: works again
    assert remote.failures == 2 and len(remote.calls) == 3


def test_fake_remote_can_fail_the_push_only() -> None:
    remote = FakeGitRemote("rate_limited", fail_on=("push",))
    snap = remote.fetch("main")
    sha = remote.commit(snap, {"x": b"x"}, "m", "A <a@example.com>")
    with pytest.raises(GitHubRateLimitError):
        remote.push(sha, "main", snap.head)
    assert remote.head() == snap.head


def test_fake_remote_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError):
        FakeGitRemote("flaky")
    with pytest.raises(ValueError):
        FakeGitRemote(fail_on=("commit",))


# -- whole embedded syncs against the fake remote ---------------------------------------------


def sync_against(app: FGDApplication, config: FGDConfig, remote: FakeGitRemote,
                 ) -> tuple[SyncResult, list[float], RecordingEventBus]:
    slept: list[float] = []
    bus = RecordingEventBus().attach(app)
    fabric = app.register_fabric("lab", remote.url)
    runner = SyncRunner(app, config, remote_factory=lambda f: remote, sleep=slept.append)
    return runner.run(fabric.fabric_id), slept, bus


def retries(bus: RecordingEventBus) -> list[dict[str, Any]]:
    return [e.payload for e in bus.of_type("sync.error") if e.payload["details"].get("retrying")]


def test_sync_success(app: FGDApplication, config: FGDConfig) -> None:
    remote = FakeGitRemote("success")
    result, slept, bus = sync_against(app, config, remote)
    assert result.ok and result.pushed and remote.head() == result.commit
    assert MANAGED in remote.files() and "gitops/raw/test.yaml.archived" in remote.files()
    assert [c[0] for c in remote.calls] == ["fetch", "commit", "push", "fetch"]
    assert slept == [] and retries(bus) == []


def test_sync_rate_limited_fewer_times_than_attempts_is_retried_and_completes(
    app: FGDApplication, config: FGDConfig
) -> None:
    remote = FakeGitRemote("rate_limited", retry_after=1, fail_times=2)
    result, slept, bus = sync_against(app, config, remote)
    assert result.ok and result.pushed and MANAGED in remote.files()
    assert [c[0] for c in remote.calls] == ["fetch", "fetch", "fetch", "commit", "push", "fetch"]
    assert slept == [1.0, 2.0]  # Retry-After 1 s, then the backoff's 2 s
    errors = retries(bus)
    assert [(e["code"], e["details"]["attempt"]) for e in errors] == [("FGD_4003", 1),
                                                                      ("FGD_4003", 2)]
    assert errors[0]["details"]["retry_after_seconds"] == 1


def test_sync_rate_limited_on_push_is_retried_and_completes(
    app: FGDApplication, config: FGDConfig
) -> None:
    remote = FakeGitRemote("rate_limited", retry_after=3, fail_times=1, fail_on=("push",))
    result, slept, bus = sync_against(app, config, remote)
    assert result.ok and remote.head() == result.commit
    assert [c[0] for c in remote.calls] == ["fetch", "commit", "push", "push", "fetch"]
    assert slept == [3.0] and len(retries(bus)) == 1


@pytest.mark.parametrize("fail_times", [3, None])
def test_sync_rate_limited_as_often_as_attempts_fails_4003(
    app: FGDApplication, config: FGDConfig, fail_times: int | None
) -> None:
    remote = FakeGitRemote("rate_limited", fail_times=fail_times, fail_on=("push",))
    before = remote.head()
    result, slept, bus = sync_against(app, config, remote)
    assert result.sync.state == "failed"
    assert result.sync.errors[-1]["code"] == "FGD_4003"
    assert result.sync.errors[-1]["details"]["attempts"] == 3
    assert remote.head() == before  # the repository is unchanged
    assert [c[0] for c in remote.calls].count("push") == 3
    assert slept == [1.0, 2.0] and len(retries(bus)) == 2


def test_sync_rate_limit_longer_than_max_delay_fails_at_once(
    app: FGDApplication, config: FGDConfig
) -> None:
    remote = FakeGitRemote("rate_limited", retry_after=3600)
    result, slept, bus = sync_against(app, config, remote)
    assert result.sync.state == "failed" and result.sync.errors[-1]["code"] == "FGD_4003"
    assert remote.calls == [("fetch", "main")] and slept == []


def test_sync_connection_failure_fails_4001_after_the_retries(
    app: FGDApplication, config: FGDConfig
) -> None:
    remote = FakeGitRemote("connection_failure")
    result, slept, bus = sync_against(app, config, remote)
    assert result.sync.state == "failed" and result.sync.errors[-1]["code"] == "FGD_4001"
    assert result.sync.errors[-1]["details"]["stage"] == "validation"
    assert remote.calls == [("fetch", "main")] * 3 and slept == [1.0, 2.0]
    assert [e["code"] for e in retries(bus)] == ["FGD_4001", "FGD_4001"]


def test_sync_connection_failure_once_is_retried_and_completes(
    app: FGDApplication, config: FGDConfig
) -> None:
    remote = FakeGitRemote("connection_failure", fail_times=1)
    result, slept, _ = sync_against(app, config, remote)
    assert result.ok and result.pushed and slept == [1.0]


@pytest.mark.parametrize(("scenario", "code"), [("not_found", "FGD_4004"),
                                                ("auth_failed", "FGD_4002")])
def test_sync_not_found_and_auth_failed_fail_without_retry(
    app: FGDApplication, config: FGDConfig, scenario: str, code: str
) -> None:
    remote = FakeGitRemote(scenario)
    result, slept, bus = sync_against(app, config, remote)
    assert result.sync.state == "failed"
    assert [e["code"] for e in result.sync.errors] == [code]
    assert remote.calls == [("fetch", "main")] and slept == [] and retries(bus) == []


def test_distributed_steps_retry_a_rate_limited_push(
    app: FGDApplication, config: FGDConfig
) -> None:
    remote = FakeGitRemote("rate_limited", retry_after=2, fail_times=1, fail_on=("push",))
    slept: list[float] = []
    steps = SyncSteps(app, config, remote_factory=lambda f: remote, sleep=slept.append)
    fabric = app.register_fabric("lab", remote.url)
    sync_id = app.start_sync(fabric.fabric_id).sync_id
    assert steps.discover(sync_id) == "done"
    for path, record in app.get_sync(sync_id).files.items():
        assert steps.ingest(sync_id, path, record["blob_id"]) == "done"
    assert steps.publish(sync_id) == "done"
    sync = app.get_sync(sync_id)
    assert sync.state == "completed" and MANAGED in remote.files()
    assert [c[0] for c in remote.calls].count("push") == 2 and slept == [2.0]
    assert [e["code"] for e in sync.errors] == ["FGD_4003"]


# -- the in-process driver and the pipeline's one commit-and-push loop ---------------------------


def test_a_cross_file_conflict_is_rejected_at_publish_in_process_too(
    app: FGDApplication, config: FGDConfig
) -> None:
    remote = FakeGitRemote(files={"gitops/raw/a.yaml": vpc("vpc-x", 1),
                                  "gitops/raw/b.yaml": vpc("vpc-x", 2),
                                  "gitops/raw/c.yaml": vpc("vpc-c", 3)})
    bus = RecordingEventBus().attach(app)
    fabric = app.register_fabric("lab", remote.url)
    result = LocalSyncDriver(app, config, remote_factory=lambda f: remote).run(fabric.fabric_id)
    assert result.ok and result.pushed and remote.head() == result.commit
    # Each file is planned alone (as a bus worker plans it), so both land as processed
    # first and are then withdrawn by publish: the same events as with the workers.
    assert {e.payload["file_path"] for e in bus.of_type("file.processed")} == {
        "gitops/raw/a.yaml", "gitops/raw/b.yaml", "gitops/raw/c.yaml"}
    assert {e.payload["file_path"] for e in bus.of_type("file.rejected")} == {
        "gitops/raw/a.yaml", "gitops/raw/b.yaml"}
    files = remote.files()
    assert "gitops/managed/vpcs/vpc-c.yaml" in files and "gitops/managed/vpcs/vpc-x.yaml" \
        not in files
    assert "gitops/raw/a.yaml" in files and "gitops/raw/c.yaml.archived" in files
    assert result.plan is not None and [a.raw_path for a in result.plan.archives] == [
        "gitops/raw/c.yaml"]


def test_only_paths_discovers_those_files_alone(app: FGDApplication, config: FGDConfig) -> None:
    remote = FakeGitRemote(files={"gitops/raw/a.yaml": vpc("vpc-a", 1),
                                  "gitops/raw/b.yaml": vpc("vpc-b", 2)})
    fabric = app.register_fabric("lab", remote.url)
    driver = LocalSyncDriver(app, config, remote_factory=lambda f: remote)
    result = driver.run(fabric.fabric_id, only_paths=["gitops/raw/b.yaml"])
    assert result.ok and set(result.sync.files) == {"gitops/raw/b.yaml"}
    assert "gitops/raw/a.yaml" in remote.files() and "gitops/raw/b.yaml" not in remote.files()


def test_commit_and_push_rebuilds_on_a_moved_remote() -> None:
    remote = FakeGitRemote(files={"README.md": b"x\n"})
    base = remote.fetch("main")
    remote.commit_files({"theirs.txt": b"theirs\n"})  # someone pushed meanwhile
    moved: list[RemoteMovedError] = []
    bases: list[str | None] = []

    def build(snapshot: Snapshot) -> tuple[dict[str, bytes | None], str]:
        bases.append(snapshot.head)
        return {"mine.txt": b"mine\n"}, "ours"

    done = commit_and_push(remote, "main", base, build, attempts=3, on_moved=moved.append)
    assert done.pushed and remote.head() == done.commit and len(moved) == 1
    assert bases[0] == base.head and bases[1] != base.head  # built again on the new head
    assert {"theirs.txt", "mine.txt"} <= set(remote.files())


def test_commit_and_push_gives_up_after_its_attempts_and_changes_nothing() -> None:
    remote = FakeGitRemote(files={"README.md": b"x\n"})
    base = remote.fetch("main")
    head = remote.commit_files({"theirs.txt": b"theirs\n"})
    with pytest.raises(RemoteMovedError):
        commit_and_push(remote, "main", base,
                        lambda s: ({"mine.txt": b"mine\n"}, "ours"), attempts=1)
    assert remote.head() == head


def test_commit_and_push_commits_nothing_when_nothing_changes() -> None:
    remote = FakeGitRemote(files={"README.md": b"x\n"})
    base = remote.fetch("main")
    done = commit_and_push(remote, "main", base, lambda s: ({}, "ours"), attempts=3)
    assert done.commit is None and not done.pushed and remote.head() == base.head
    assert [c[0] for c in remote.calls] == ["fetch"]
