"""Test doubles for users' own tests (the spec's "Mock Services").

``RecordingEventBus`` is the spec's MockEventBus: ``publish`` records, and
``assert_event_published(event_type)`` checks. ``attach(app)`` makes it record every
envelope the application stores, so a test can assert on what a real run emitted::

    bus = RecordingEventBus().attach(app)
    app.start_sync(fabric_id)
    bus.assert_event_published("sync.started")
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, overload

from dulwich.objects import Commit, ObjectID
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo

from fgd_core.adapters.git_repo import GitRemote, Snapshot, descends_from
from fgd_core.errors import (
    FGDError,
    GitHubAuthenticationError,
    GitHubConnectionError,
    GitHubNotFoundError,
    GitHubRateLimitError,
)
from fgd_core.events.schemas import validate_envelope


@dataclass(frozen=True)
class PublishedEvent:
    """An envelope with attribute access (``event.event_type``) as the spec's mock uses."""

    envelope: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.envelope[name]
        except KeyError:
            raise AttributeError(name) from None


class RecordingEventBus:
    def __init__(self, validate: bool = True) -> None:
        self.events: list[PublishedEvent] = []
        self.validate = validate

    def publish(self, event: dict[str, Any] | PublishedEvent) -> None:
        envelope = event.envelope if isinstance(event, PublishedEvent) else event
        if self.validate:
            validate_envelope(envelope)
        self.events.append(PublishedEvent(envelope))

    async def apublish(self, event: dict[str, Any] | PublishedEvent) -> None:
        self.publish(event)

    def attach(self, app: Any) -> RecordingEventBus:
        def record(stored: list[tuple[int, dict[str, Any]]]) -> None:
            for _, envelope in stored:
                self.publish(envelope)

        app.subscribe(record)
        return self

    def of_type(self, event_type: str) -> list[PublishedEvent]:
        return [e for e in self.events if e.event_type == event_type]

    def assert_event_published(self, event_type: str, **payload: Any) -> PublishedEvent:
        """Assert an event of this type (whose payload contains ``payload``) was published."""
        for event in self.of_type(event_type):
            if all(event.payload.get(k) == v for k, v in payload.items()):
                return event
        published = sorted({e.event_type for e in self.events})
        raise AssertionError(
            f"no {event_type!r} event{' with ' + repr(payload) if payload else ''} was "
            f"published; published types: {published}"
        )

    def clear(self) -> None:
        self.events.clear()


# -- the spec's "Test Fixture Format" -------------------------------------------------------

FIXTURE_KEYS = {"test_name", "input", "expected"}


@dataclass(frozen=True)
class FixtureOutcome:
    test_name: str
    actual: dict[str, Any]
    mismatches: list[str]

    @property
    def passed(self) -> bool:
        return not self.mismatches


def run_fixture(fixture: dict[str, Any], rules: Any = None) -> FixtureOutcome:
    """Ingest ``input.content`` as the raw file ``input.file_path`` (a dry run of the real
    planner) and compare with ``expected``: ``status`` (success|failed|skipped),
    ``documents_extracted``, ``files_created`` (API paths) and ``errors`` — each expected
    error is a code (``"FGD_1002"``) or a dict matched against the actual error's fields."""
    from fgd_core.ingestion.plan import IngestionRules, plan_sync

    missing = FIXTURE_KEYS - set(fixture)
    if missing:
        raise ValueError(f"fixture lacks {sorted(missing)}")
    path = str(fixture["input"]["file_path"]).strip("/")
    content = fixture["input"]["content"]
    data = content.encode() if isinstance(content, str) else bytes(content)
    rules = rules or IngestionRules(gitops_dir=path.split("/raw/")[0] if "/raw/" in path else "")
    plan = plan_sync({path: data}, {}, [path], {}, "00000000-0000-0000-0000-000000000000", rules)
    result = plan.file(path)
    actual: dict[str, Any] = {
        "status": {"processed": "success"}.get(result.status, result.status),
        "documents_extracted": result.documents_extracted,
        "files_created": ["/" + p for p in result.target_files],
        "errors": [e.to_dict() for e in result.errors],
    }
    expected = fixture["expected"]
    mismatches = [
        f"{key}: expected {expected[key]!r}, got {actual[key]!r}"
        for key in ("status", "documents_extracted", "files_created")
        if key in expected and expected[key] != actual[key]
    ]
    if "errors" in expected and not _errors_match(expected["errors"], actual["errors"]):
        mismatches.append(f"errors: expected {expected['errors']!r}, got {actual['errors']!r}")
    return FixtureOutcome(str(fixture["test_name"]), actual, mismatches)


def _errors_match(expected: list[Any], actual: list[dict[str, Any]]) -> bool:
    if len(expected) != len(actual):
        return False
    remaining = list(actual)
    for want in expected:
        want = {"code": want} if isinstance(want, str) else dict(want)
        hit = next((a for a in remaining if all(a.get(k) == v for k, v in want.items())), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


def load_fixtures(path: Any) -> list[dict[str, Any]]:
    """Fixtures from a JSON file (one fixture or a list) or every ``*.json`` in a folder."""
    import json
    from pathlib import Path

    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    fixtures: list[dict[str, Any]] = []
    for file in files:
        loaded = json.loads(file.read_text(encoding="utf-8"))
        fixtures.extend(loaded if isinstance(loaded, list) else [loaded])
    return fixtures


def assert_fixture(fixture: dict[str, Any], rules: Any = None) -> FixtureOutcome:
    outcome = run_fixture(fixture, rules)
    if not outcome.passed:
        raise AssertionError(f"{outcome.test_name}: " + "; ".join(outcome.mismatches))
    return outcome


# -- the spec's MockGitHubClient: a fake git remote ---------------------------------------------

FAKE_REMOTE_SCENARIOS = ("success", "rate_limited", "connection_failure", "not_found",
                         "auth_failed")
DEFAULT_FAKE_FILES: dict[str, bytes] = {
    "gitops/raw/test.yaml": b"""apiVersion: vpc.githedgehog.com/v1beta1
kind: VPC
metadata:
  name: vpc-test
spec:
  subnets:
    default:
      subnet: 10.0.1.0/24
      gateway: 10.0.1.1
      vlan: 1001
""",
}
_FAKE_AUTHOR = "FGD Test <fgd-test@localhost>"


class FakeGitRemote(GitRemote):
    """An in-memory git remote for tests: the spec's ``MockGitHubClient`` for the git adapter.

    A drop-in for ``GitRemote`` (``fetch`` → ``Snapshot``, ``commit``, ``push`` with
    compare-and-swap), kept in a dulwich ``MemoryRepo``, no network and no disk::

        remote = FakeGitRemote("rate_limited", fail_times=1)
        runner = SyncRunner(app, config, remote_factory=lambda fabric: remote)
        assert runner.run(fabric_id).ok
        assert [c[0] for c in remote.calls] == ["fetch", "fetch", "commit", "push", "fetch"]

    ``scenario``: ``success``; ``rate_limited`` (FGD_4003 with ``retry_after_seconds`` =
    ``retry_after``); ``connection_failure`` (FGD_4001); ``not_found`` (FGD_4004);
    ``auth_failed`` (FGD_4002). The error is raised by the remote calls named in ``fail_on``
    (``fetch`` and ``push``; ``commit`` is local and never fails) — every time, or only the
    first ``fail_times`` times, after which they succeed (to exercise the retry policy).
    ``files`` (path → bytes or str) is the branch's first commit; None seeds
    ``DEFAULT_FAKE_FILES`` (one raw VPC file, like the spec mock's ``test.yaml``) and ``{}``
    leaves the remote empty (the branch does not exist yet).

    ``calls`` records every call as a tuple, failed ones included: ``("fetch", branch)``,
    ``("commit", base_head, changed_paths)``, ``("push", sha, branch, expected_old_sha)``.
    ``head()``, ``files()`` and ``commit_files()`` look at and move the fake remote (a
    commit someone else pushed, say).
    """

    def __init__(
        self,
        scenario: str = "success",
        files: dict[str, bytes | str] | None = None,
        retry_after: int | None = 1,
        fail_times: int | None = None,
        *,
        branch: str = "main",
        fail_on: tuple[str, ...] = ("fetch", "push"),
        url: str = "https://github.invalid/fake/fabric.git",
    ) -> None:
        if scenario not in FAKE_REMOTE_SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; one of {FAKE_REMOTE_SCENARIOS}")
        unknown = set(fail_on) - {"fetch", "push"}
        if unknown:
            raise ValueError(f"fail_on takes 'fetch' and/or 'push', not {sorted(unknown)}")
        if fail_times is not None and fail_times < 0:
            raise ValueError("fail_times must be >= 0")
        # GitRemote.__init__ opens a real transport: the fake sets up only what the
        # inherited ``commit`` uses (the local repository and the unpushed objects).
        self.scenario, self.retry_after, self.fail_times = scenario, retry_after, fail_times
        self.fail_on, self.branch, self.url = tuple(fail_on), branch, url
        self.calls: list[tuple[Any, ...]] = []
        self.failures = 0  # errors raised so far
        self._client = None  # type: ignore[assignment]
        self._repo = MemoryRepo()  # the remote and the local store at once
        self._local = self._repo
        self._unpushed = {}
        self._lock = threading.RLock()
        seed: Mapping[str, bytes | str | None] = DEFAULT_FAKE_FILES if files is None else files
        if seed:
            self.commit_files(seed, "seed", branch=branch, timestamp=0)

    def __repr__(self) -> str:
        return f"FakeGitRemote({self.scenario!r}, url={self.url!r})"

    @property
    def is_local(self) -> bool:
        return False

    # -- the GitRemote interface ---------------------------------------------------------

    def fetch(self, branch: str) -> Snapshot:
        with self._lock:
            self.calls.append(("fetch", branch))
            self._maybe_fail("fetch")
            return self._snapshot(branch)

    def commit(self, snapshot: Snapshot, changes: Mapping[str, bytes | None], message: str,
               author: str, **kw: Any) -> str:
        with self._lock:
            self.calls.append(("commit", snapshot.head, tuple(sorted(changes))))
            return str(super().commit(snapshot, changes, message, author, **kw))

    def push(self, sha: str, branch: str, expected_old_sha: str | None) -> None:
        with self._lock:
            self.calls.append(("push", sha, branch, expected_old_sha))
            if sha == expected_old_sha:
                return
            self._maybe_fail("push")
            store = self._repo.object_store
            if not descends_from(store, _oid(sha), _oid(expected_old_sha)):
                raise ValueError(f"{sha} does not descend from {expected_old_sha}; "
                                 "refusing to force")
            current = self.head(branch)
            if current != expected_old_sha:
                raise self._moved(branch, expected_old_sha, _oid(current))
            self._repo.refs[_ref(branch)] = _oid(sha)
            self._unpushed.clear()

    # -- looking at and moving the fake remote --------------------------------------------

    def head(self, branch: str | None = None) -> str | None:
        """The commit ``branch`` points at on the fake remote (None: no such branch)."""
        ref = _ref(branch or self.branch)
        refs = self._repo.refs
        return refs[ref].decode() if ref in refs else None

    def files(self, branch: str | None = None) -> dict[str, bytes]:
        """Every file on ``branch`` of the fake remote: path → bytes."""
        snap = self._snapshot(branch or self.branch)
        return {e.path: snap.read(e) for e in snap.files()}

    def commit_files(
        self,
        files: Mapping[str, bytes | str | None],
        message: str = "outside change",
        *,
        branch: str | None = None,
        timestamp: int | None = None,
    ) -> str:
        """Commit ``files`` (None deletes a path) on the fake remote, as someone else's
        push would; not recorded in ``calls`` and never failing."""
        branch = branch or self.branch
        with self._lock:
            base = self._snapshot(branch)
            data = {p: v.encode() if isinstance(v, str) else v for p, v in files.items()}
            sha = str(GitRemote.commit(self, base, data, message, _FAKE_AUTHOR,
                                       timestamp=timestamp))
            self._repo.refs[_ref(branch)] = _oid(sha)
            self._unpushed.clear()
            return sha

    def _snapshot(self, branch: str) -> Snapshot:
        head = self.head(branch)
        store = self._repo.object_store
        if head is None:
            return Snapshot(branch, None, None, store)
        commit = store[_oid(head)]
        assert isinstance(commit, Commit)
        return Snapshot(branch, head, commit.tree.decode(), store)

    # -- the scenario ---------------------------------------------------------------------

    def _maybe_fail(self, call: str) -> None:
        if self.scenario == "success" or call not in self.fail_on:
            return
        if self.fail_times is not None and self.failures >= self.fail_times:
            return
        self.failures += 1
        raise self.error()

    def error(self) -> FGDError:
        """The error this scenario raises, as the real HTTP transport raises it."""
        details: dict[str, Any] = {"url": self.url}
        if self.scenario == "rate_limited":
            details.update(http_status=429, retry_after_seconds=self.retry_after)
            return GitHubRateLimitError(f"rate limited by {self.url}", details=details)
        if self.scenario == "connection_failure":
            details["reason"] = "ConnectionResetError"
            return GitHubConnectionError(f"cannot reach {self.url}: connection reset",
                                         details=details)
        if self.scenario == "not_found":
            details["http_status"] = 404
            return GitHubNotFoundError(f"repository not found: {self.url}", details=details)
        details["http_status"] = 401
        return GitHubAuthenticationError(f"authentication failed for {self.url} (HTTP 401)",
                                         details=details)


def _ref(branch: str) -> Ref:
    return Ref(b"refs/heads/" + branch.encode())


@overload
def _oid(sha: str) -> ObjectID: ...
@overload
def _oid(sha: str | None) -> ObjectID | None: ...
def _oid(sha: str | None) -> ObjectID | None:
    return ObjectID(sha.encode()) if sha else None
