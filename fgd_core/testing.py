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
        app.subscribe(lambda stored: [self.publish(envelope) for _, envelope in stored])
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
