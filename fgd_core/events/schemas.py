"""The JSON Schemas in ``schemas/`` and the validators compiled from them, once per process.

The base envelope schema is the spec's, verbatim (draft-07). Each event type has a payload
schema of its own in ``schemas/events/<event_type>.json``. Validation is compiled with
fastjsonschema: a persisted event is validated on every write and on every read (replay),
so the validator sits on the hot path of both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from fgd_core.errors import SchemaMismatchError

Validator = Callable[[Any], Any]


def schema_dir() -> Path:
    """``schemas/`` beside the package in a source checkout, ``fgd_core/_schemas`` in a wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "schemas", here / "_schemas"):
        if (candidate / "event.schema.json").is_file():
            return candidate
    raise FileNotFoundError("FGD JSON Schemas not found (expected schemas/event.schema.json)")


def load_schema(relative: str) -> dict[str, Any]:
    return json.loads((schema_dir() / relative).read_text(encoding="utf-8"))


@cache
def envelope_validator() -> Validator:
    return fastjsonschema.compile(load_schema("event.schema.json"))


@cache
def payload_validators() -> dict[str, Validator]:
    """Event type → compiled payload validator, for every schema in ``schemas/events/``."""
    return {
        path.name.removesuffix(".json"): fastjsonschema.compile(
            json.loads(path.read_text(encoding="utf-8"))
        )
        for path in sorted((schema_dir() / "events").glob("*.json"))
    }


def known_event_types() -> list[str]:
    return sorted(payload_validators())


def validate_envelope(envelope: dict[str, Any]) -> None:
    """Raise FGD_1004 unless the envelope and its payload match their schemas."""
    event_type = envelope.get("event_type")
    try:
        envelope_validator()(envelope)
        validator = payload_validators().get(event_type)  # type: ignore[arg-type]
        if validator is None:
            raise SchemaMismatchError(
                f"no payload schema for event type {event_type!r}",
                details={"event_type": event_type},
            )
        validator(envelope.get("payload", {}))
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SchemaMismatchError(
            f"event {event_type!r} does not match its schema: {exc.message}",
            details={"event_type": event_type, "path": exc.name, "rule": exc.rule},
        ) from None
