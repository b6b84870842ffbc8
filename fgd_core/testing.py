"""Test doubles for users' own tests (the spec's "Mock Services").

``RecordingEventBus`` is the spec's MockEventBus: ``publish`` records, and
``assert_event_published(event_type)`` checks. ``attach(app)`` makes it record every
envelope the application stores, so a test can assert on what a real run emitted::

    bus = RecordingEventBus().attach(app)
    app.start_sync(fabric_id)
    bus.assert_event_published("sync.started")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    from fgd_core.gitops.plan import IngestionRules, plan_sync

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
