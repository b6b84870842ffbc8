"""``asyncapi.yaml`` is the bus contract: it must name every event type the code can persist
(with its payload schema) and every command the consumer accepts (with its schema), and
every ``$ref`` in it must resolve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from fgd_core.adapters.bus_client import COMMANDS as CLIENT_COMMANDS
from fgd_core.events.schemas import schema_dir
from fgd_core.events.types import EVENT_TYPES
from fgd_workers.commands import COMMANDS, CommandIntake

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "asyncapi.yaml"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """A local pointer (``#/a/b``) in the document, or a file relative to it."""
    if ref.startswith("#/"):
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node[part]
        return node
    path = (DOC_PATH.parent / ref.split("#", 1)[0]).resolve()
    assert path.is_file(), f"{ref} does not resolve to a file"
    return json.loads(path.read_text(encoding="utf-8"))


def message(doc: dict[str, Any], channel: dict[str, Any]) -> dict[str, Any]:
    operation = channel.get("subscribe") or channel.get("publish")
    msg = operation["message"]
    return resolve(doc, msg["$ref"]) if "$ref" in msg else msg


def test_document_is_asyncapi_2_with_both_exchanges(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"].startswith("2.")
    exchanges = {c["bindings"]["amqp"]["exchange"]["name"] for c in doc["channels"].values()
                 if c["bindings"]["amqp"]["is"] == "routingKey"}
    assert exchanges == {"fgd.events", "fgd.commands"}


def test_every_ref_resolves(doc: dict[str, Any]) -> None:
    all_refs = refs(doc)
    assert all_refs
    for ref in all_refs:
        assert resolve(doc, ref) is not None, ref


def event_channels(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Routing key → channel, for the channels on fgd.events."""
    return {name.split("/", 1)[1]: ch for name, ch in doc["channels"].items()
            if ch["bindings"]["amqp"].get("exchange", {}).get("name") == "fgd.events"}


def payload_ref(doc: dict[str, Any], channel: dict[str, Any]) -> str:
    payload = message(doc, channel)["payload"]
    [envelope, specific] = payload["allOf"]
    assert resolve(doc, envelope["$ref"]) == json.loads(
        (schema_dir() / "event.schema.json").read_text())
    return str(specific["properties"]["payload"]["$ref"])


@pytest.mark.parametrize("event_type", sorted(set(EVENT_TYPES.values())))
def test_every_persisted_event_type_is_documented_with_its_schema(
    doc: dict[str, Any], event_type: str
) -> None:
    channels = event_channels(doc)
    assert event_type in channels, f"{event_type} missing from asyncapi.yaml"
    channel = channels[event_type]
    msg = message(doc, channel)
    assert msg["name"] == event_type
    assert msg["payload"]["allOf"][1]["properties"]["event_type"] == {"const": event_type}
    ref = payload_ref(doc, channel)
    assert (DOC_PATH.parent / ref).resolve() == (schema_dir() / "events" / f"{event_type}.json")
    headers = resolve(doc, msg["headers"]["$ref"])
    assert {"traceparent", "fabric_id", "correlation_id"} <= set(headers["properties"])


@pytest.mark.parametrize("path", sorted((schema_dir() / "events").glob("*.json")),
                         ids=lambda p: p.name)
def test_every_event_schema_file_is_referenced(doc: dict[str, Any], path: Path) -> None:
    channels = event_channels(doc)
    referenced = {(DOC_PATH.parent / payload_ref(doc, ch)).resolve() for ch in channels.values()}
    assert path.resolve() in referenced


def test_no_documented_event_type_that_the_code_cannot_emit(doc: dict[str, Any]) -> None:
    assert set(event_channels(doc)) == set(EVENT_TYPES.values())


def test_every_accepted_command_is_documented_with_a_valid_draft07_schema(
    doc: dict[str, Any], tmp_path: Path
) -> None:
    accepted = set(CommandIntake(app=None).validators)  # type: ignore[arg-type]
    assert accepted == set(COMMANDS) == set(CLIENT_COMMANDS)
    channels = {name.split("/", 1)[1]: ch for name, ch in doc["channels"].items()
                if ch["bindings"]["amqp"].get("exchange", {}).get("name") == "fgd.commands"}
    assert set(channels) == accepted
    for command in accepted:
        msg = message(doc, channels[command])
        assert msg["name"] == command
        path = (DOC_PATH.parent / msg["payload"]["$ref"]).resolve()
        assert path == schema_dir() / "commands" / f"{command}.json"
        schema = json.loads(path.read_text())
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        headers = resolve(doc, msg["headers"]["$ref"])
        assert {"authorization", "message_id", "reply_to"} <= set(headers["properties"])
    reply = message(doc, doc["channels"]["reply"])
    reply_schema = resolve(doc, reply["payload"]["$ref"])
    jsonschema.Draft7Validator.check_schema(reply_schema)


def test_command_schemas_accept_the_documented_shapes() -> None:
    load = lambda name: json.loads((schema_dir() / "commands" / f"{name}.json").read_text())  # noqa: E731
    trigger = jsonschema.Draft7Validator(load("sync.trigger"))
    assert trigger.is_valid({"fabric_id": 3, "trigger": "manual", "options": {},
                             "correlation_id": "netbox-1"})
    assert not trigger.is_valid({"fabric_id": 0})
    assert not trigger.is_valid({"fabric_id": 3, "options": {"force": True}})
    webhook = jsonschema.Draft7Validator(load("webhook.github"))
    base = {"event": "push", "delivery_id": "abc-1", "signature": "sha256=00"}
    assert webhook.is_valid({**base, "body": "{}"})
    assert webhook.is_valid({**base, "body_base64": "e30="})
    assert not webhook.is_valid({**base, "body": "{}", "body_base64": "e30="})
    assert not webhook.is_valid(base)
    reply = jsonschema.Draft7Validator(load("reply"), format_checker=jsonschema.FormatChecker())
    assert reply.is_valid({"sync_id": "6f1c1b6e-3f0b-4f43-9d5e-0a4b1f6f1a7e", "status": "started"})
    assert reply.is_valid({"status": "duplicate", "delivery": "abc-1"})
    assert reply.is_valid({"error": {"code": "FGD_3001", "message": "busy", "details": {},
                                     "timestamp": "2026-01-01T00:00:00Z",
                                     "correlation_id": "c"}})


def test_the_committed_document_is_what_the_generator_writes() -> None:
    """asyncapi.yaml is generated from EVENT_TYPES, COMMANDS, the schemas and the dead-letter
    reasons; a new event type or command changes it (python -m fgd_workers.asyncapi)."""
    from fgd_workers import asyncapi

    assert DOC_PATH.read_text(encoding="utf-8") == asyncapi.render(), (
        "asyncapi.yaml is out of date: run python -m fgd_workers.asyncapi")
    assert asyncapi.main(["--check"]) == 0


def test_the_generator_check_fails_on_a_stale_document(tmp_path: Path) -> None:
    from fgd_workers import asyncapi

    stale = tmp_path / "asyncapi.yaml"
    stale.write_text(asyncapi.render().replace("audit.recorded", "audit.gone"))
    assert asyncapi.main(["--check", "--output", str(stale)]) == 1
    assert asyncapi.main(["--output", str(stale)]) == 0
    assert asyncapi.main(["--check", "--output", str(stale)]) == 0


def test_every_dead_letter_reason_is_documented(doc: dict[str, Any]) -> None:
    from fgd_workers.command_intake import Refused
    from fgd_workers.commands import DEAD_LETTER_REASONS

    documented = doc["components"]["schemas"]["DeadLetterHeaders"]["properties"][
        "x-fgd-reason-code"]["enum"]
    assert documented == list(DEAD_LETTER_REASONS)
    with pytest.raises(ValueError, match="undocumented"):
        Refused("made_up", "no such reason")
