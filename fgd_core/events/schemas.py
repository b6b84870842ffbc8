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

# draft-07 defines no "uuid" format (2019-09 does) and fastjsonschema would skip it; the spec
# asks for it on event_id, so it is checked here, lower-case as Python writes UUIDs.
FORMATS = {"uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}


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
def payload_schemas() -> dict[str, dict[str, Any]]:
    """Event type → payload schema, for every file in ``schemas/events/``."""
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((schema_dir() / "events").glob("*.json"))
    }


@cache
def _base_schema() -> dict[str, Any]:
    return load_schema("event.schema.json")


def envelope_validator(event_type: str) -> Validator | None:
    """One compiled validator for the base envelope with ``event_type``'s payload schema
    (one call per event on the hot path instead of two); None for an unknown type."""
    return _compiled(event_type) if event_type in payload_schemas() else None


@cache
def _compiled(event_type: str) -> Validator:
    """Compiled on first use, per known type (only those: the cache cannot grow with the
    names an envelope brings): a process compiles only the types it meets — compiling all
    ~40 costs about 0.2 s of CPU, which a CLI call or a worker's first batch paid."""
    base = _base_schema()
    payload = {k: v for k, v in payload_schemas()[event_type].items()
               if k not in ("$schema", "$id")}
    combined = {"$schema": base["$schema"], "allOf": [base, {"properties": {"payload": payload}}]}
    return fastjsonschema.compile(combined, formats=FORMATS)  # type: ignore[no-any-return]


def known_event_types() -> list[str]:
    return sorted(payload_schemas())


def validate_envelope(envelope: dict[str, Any]) -> None:
    """Raise FGD_1004 unless the envelope and its payload match their schemas."""
    event_type = envelope.get("event_type") if isinstance(envelope, dict) else None
    validator = envelope_validator(event_type) if isinstance(event_type, str) else None
    if validator is None:
        raise SchemaMismatchError(
            f"no schema for event type {event_type!r}", details={"event_type": event_type}
        )
    try:
        validator(envelope)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SchemaMismatchError(
            f"event {event_type!r} does not match its schema: {exc.message}",
            details={"event_type": event_type, "path": exc.name, "rule": exc.rule},
        ) from None
