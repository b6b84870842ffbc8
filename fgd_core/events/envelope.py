"""A persisted event *is* the spec's envelope.

``EnvelopeMapper`` replaces eventsourcing's default mapper: the ``state`` column of each
stored event holds the envelope as UTF-8 JSON (readable with ``psql``, see the
``fgd_envelopes`` view), validated against ``schemas/`` before it is written and again when
it is read. The event's class stays in the store's ``topic`` column, its aggregate id and
version in their own columns, so nothing but the envelope lives in ``state``.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from functools import cache
from hashlib import sha1
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

from fgd_core.domain.actor import EVENT_ATTRIBUTE
from fgd_core.errors import SchemaMismatchError
from fgd_core.events.schemas import validate_envelope
from fgd_core.events.types import event_type_of

# Attributes that live outside the payload: in the envelope or in the store's own columns.
_ENVELOPE_KEYS = frozenset(
    {"originator_id", "originator_version", "timestamp", "fabric_id", "correlation_id",
     "originator_topic", EVENT_ATTRIBUTE}
)
SOURCE_VERSION = "1"


def _holds_nul(state: bytes) -> bool:
    """Whether JSON text holds the escape of NUL (``\\u0000`` preceded by an even number of
    backslashes: ``\\\\u0000`` is the six characters of the text ``\\u0000``)."""
    at = state.find(b"\\u0000")
    while at != -1:
        start = at
        while start > 0 and state[start - 1] == 0x5C:
            start -= 1
        if (at - start) % 2 == 0:
            return True
        at = state.find(b"\\u0000", at + 1)
    return False


def event_id_for(originator_id: UUID, version: int) -> str:
    """``str(uuid5(originator_id, str(version)))``, computed without the UUID objects (it
    runs for every event written).

    Deterministic: the same stored event has the same id in every replay and on the bus,
    which is what lets consumers deduplicate on message_id.
    """
    digest = bytearray(sha1(originator_id.bytes + str(version).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso(dt: datetime) -> str:
    if dt.tzinfo is UTC:  # eventsourcing's timestamps: skip the conversion on the hot path
        return dt.isoformat()[:-6] + "Z"
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_envelope(event: Any, source: str = "fgd_core") -> dict[str, Any]:
    state = vars(event)
    payload = {k: v for k, v in state.items() if k not in _ENVELOPE_KEYS}
    if "sync_id" not in payload and _is_sync_event(type(event).__qualname__):
        payload["sync_id"] = str(event.originator_id)
    metadata: dict[str, Any] = {"source": source, "version": SOURCE_VERSION}
    if "originator_topic" in state:
        metadata["originator_topic"] = state["originator_topic"]
    user_id = state.get(EVENT_ATTRIBUTE)
    if user_id is not None:
        metadata["user_id"] = user_id  # a known user acted (events.actor)
    return {
        "event_id": event_id_for(event.originator_id, event.originator_version),
        "event_type": event_type_of(type(event)),
        "timestamp": iso(event.timestamp),
        "fabric_id": event.fabric_id,
        "correlation_id": event.correlation_id,
        "payload": payload,
        "metadata": metadata,
    }


@cache
def _is_sync_event(qualname: str) -> bool:
    return qualname.startswith("SyncOperation.")


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


class EnvelopeMapper(Mapper[UUID]):
    """Domain event ⇄ StoredEvent whose state is the validated envelope JSON.

    Snapshots are not events (they are in no log and on no bus): they go through
    eventsourcing's own mapper with the given transcoder, into the snapshot store.
    """

    def __init__(self, transcoder: Transcoder | None = None, source: str = "fgd_core") -> None:
        self.transcoder = transcoder  # type: ignore[assignment]
        self.compressor = None
        self.cipher = None
        self.source = source
        self.snapshots: Mapper[UUID] | None = (
            Mapper(transcoder) if transcoder is not None else None
        )

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        if isinstance(domain_event, Snapshot) and self.snapshots is not None:
            return self.snapshots.to_stored_event(domain_event)
        envelope = to_envelope(domain_event, self.source)
        validate_envelope(envelope)
        try:
            state = orjson.dumps(envelope)
        except orjson.JSONEncodeError as exc:  # e.g. a lone surrogate in a string
            raise SchemaMismatchError(
                f"event {envelope['event_type']!r} cannot be encoded as JSON: {exc}",
                details={"event_type": envelope["event_type"]},
            ) from None
        if b"\\u0000" in state and _holds_nul(state):
            # Stored, it would stop the PostgreSQL projections (text cannot hold NUL) and
            # the jsonb view: the edges refuse NUL (fgd_core.ingestion.input_guard); this is the
            # last line behind them.
            raise SchemaMismatchError(
                f"event {envelope['event_type']!r} holds NUL, which the store cannot keep",
                details={"event_type": envelope["event_type"]},
            )
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        if issubclass(cls, Snapshot) and self.snapshots is not None:
            return self.snapshots.to_domain_event(stored_event)
        envelope = decode_envelope(stored_event.state)
        names = _field_names(cls)
        state = {k: v for k, v in envelope["payload"].items() if k in names}
        state["originator_id"] = _as_uuid(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        state["timestamp"] = datetime.fromisoformat(envelope["timestamp"])
        state["fabric_id"] = envelope["fabric_id"]
        state["correlation_id"] = envelope["correlation_id"]
        if "originator_topic" in names:
            state["originator_topic"] = envelope["metadata"]["originator_topic"]
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event


def decode_envelope(state: bytes) -> dict[str, Any]:
    """Stored bytes → a validated envelope (FGD_1004 if what is stored is not one)."""
    envelope = orjson.loads(state)
    validate_envelope(envelope)
    return envelope


def _as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
