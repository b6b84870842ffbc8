"""The schemas in schemas/ and the envelope mapper (pure: no database)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from uuid import uuid4, uuid5

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.errors import SchemaMismatchError
from fgd_core.events.envelope import EnvelopeMapper, event_id_for, to_envelope
from fgd_core.events.schemas import known_event_types, load_schema, schema_dir, validate_envelope
from fgd_core.events.types import EVENT_TYPES, WEBSOCKET_TYPES
from tests.paths import SPEC


def spec_base_schema() -> dict:
    """The "Base Event Schema" block of the spec, parsed as JSON."""
    text = SPEC.read_text(encoding="utf-8")
    block = text.split("# Base Event Schema\n", 1)[1].split("```", 1)[0]
    return json.loads(block)


def test_base_schema_is_the_specs_verbatim() -> None:
    assert load_schema("event.schema.json") == spec_base_schema()


def test_every_event_class_has_a_schema_and_every_schema_a_class() -> None:
    assert sorted(set(EVENT_TYPES.values())) == known_event_types()
    pattern = re.compile(spec_base_schema()["properties"]["event_type"]["pattern"])
    assert all(pattern.match(t) for t in known_event_types())
    # The spec's WebSocket names break the pattern: they are derived, never persisted.
    assert not pattern.match(WEBSOCKET_TYPES["stage.completed"])
    assert set(WEBSOCKET_TYPES) <= set(known_event_types())


@pytest.mark.parametrize("path", sorted((schema_dir() / "events").glob("*.json")), ids=str)
def test_payload_schemas_are_valid_draft07(path: Path) -> None:
    schema = json.loads(path.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_the_specs_documented_payloads_validate() -> None:
    examples = {
        "sync.started": {"sync_id": str(uuid4()), "trigger": "manual",
                         "options": {"force_refresh": False, "validate_only": False}},
        "directory.validated": {"valid": True, "issues": [], "repairs_needed": [],
                                "directory_stats": {"raw_files": 5, "managed_files": 45}},
        "file.processed": {"file_path": "/gitops/raw/config.yaml", "status": "success",
                           "documents_extracted": 3,
                           "target_files": ["/gitops/managed/vpcs/vpc-1.yaml"],
                           "processing_time": 0.245},
        "sync.completed": {"sync_id": str(uuid4()), "duration_seconds": 135,
                           "files_processed": 23, "files_created": 45, "errors": 0,
                           "warnings": 1, "final_state": "completed"},
    }
    for event_type, payload in examples.items():
        validate_envelope({"event_id": str(uuid4()), "event_type": event_type,
                           "timestamp": "2025-08-02T10:30:00Z", "fabric_id": 123,
                           "payload": payload})


@pytest.mark.parametrize(
    "breakage",
    [
        {"event_id": "not-a-uuid"},
        {"event_type": "sync.stage_completed"},
        {"event_type": "sync.unknown"},
        {"timestamp": "yesterday"},
        {"fabric_id": "123"},
        {"payload": {"sync_id": "x", "trigger": "manual", "options": {}}},
        {"payload": {"sync_id": str(uuid4()), "trigger": "cron", "options": {}}},
        {"payload": {"sync_id": str(uuid4()), "trigger": "manual", "options": {"x": 1}}},
        {"metadata": {"user_id": "root"}},
    ],
)
def test_broken_envelopes_are_fgd_1004(breakage: dict) -> None:
    envelope = {"event_id": str(uuid4()), "event_type": "sync.started",
                "timestamp": "2025-08-02T10:30:00Z", "fabric_id": 1,
                "payload": {"sync_id": str(uuid4()), "trigger": "manual", "options": {}}}
    envelope.update(breakage)
    with pytest.raises(SchemaMismatchError) as caught:
        validate_envelope(envelope)
    assert caught.value.code == "FGD_1004"


@given(st.uuids(), st.integers(1, 10**9))
def test_event_ids_are_uuid5_of_aggregate_and_version(oid, version) -> None:  # type: ignore[no-untyped-def]
    assert event_id_for(oid, version) == str(uuid5(oid, str(version)))


def test_mapper_round_trips_a_domain_event() -> None:
    sync = SyncOperation.start(5, "webhook", {"validate_only": True}, correlation_id="c-1")
    sync.begin_stage("validation")
    mapper = EnvelopeMapper()
    for event in sync.collect_events():
        stored = mapper.to_stored_event(event)
        envelope = json.loads(stored.state)
        assert envelope == to_envelope(event)
        assert envelope["fabric_id"] == 5 and envelope["correlation_id"] == "c-1"
        assert envelope["payload"]["sync_id"] == str(sync.id)
        assert vars(mapper.to_domain_event(stored)) == vars(event)


def test_mapper_refuses_to_read_a_tampered_event() -> None:
    sync = SyncOperation.start(5)
    mapper = EnvelopeMapper()
    stored = mapper.to_stored_event(sync.collect_events()[0])
    tampered = json.loads(stored.state)
    tampered["payload"]["trigger"] = "cron"
    with pytest.raises(SchemaMismatchError):
        mapper.to_domain_event(type(stored)(
            originator_id=stored.originator_id, originator_version=1,
            topic=stored.topic, state=json.dumps(tampered).encode()))
