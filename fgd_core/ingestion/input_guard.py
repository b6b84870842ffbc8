"""Whether client text can be kept: one decision for every input face.

PostgreSQL's ``text`` and ``jsonb`` cannot hold NUL; no JSON encoder can write a lone surrogate;
control characters and megabyte-long strings have no business in an identifier, a path or a
header. Every edge that takes text from a client — HTTP paths, query values, headers (the
correlation id included), JSON bodies, the WebSocket, bus command properties, headers and
bodies, webhook payloads, file paths, git refs — asks this module, so the rule is the same
everywhere and nothing the stores cannot keep gets past an edge:

    problem(text, IDENTIFIER)          # None, or why it is refused
    check(text, FILE_PATH, "file_path")  # returns the text, or raises UnstorableText
    check_json(value, TEXT, "body")    # walks a JSON value, keys too; names the field
    sanitized(text)                    # a storable copy of at most ECHO_CHARS characters
    bounded(details)                   # the same for every string of a JSON value

What is stored or echoed about a refusal (audit entries, error bodies, dead-letter reasons) is
``sanitized``'s copy: control characters and lone surrogates written as escapes, cut to
``ECHO_CHARS`` characters.

The checks cost one ``str.isprintable()`` (C speed) for ordinary text; only text that fails it
is looked at character by character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Face:
    """Where text comes in, and what it may hold there."""

    name: str
    max_chars: int
    line_breaks: bool = False
    """Tab, line feed and carriage return allowed (free text such as JSON or YAML bodies)."""


# The limits are generous for every real value and small enough that no single string can
# grow an event, an audit entry or an error body much.
IDENTIFIER = Face("identifier", 255)  # ids, names, AMQP properties (a shortstr is 255 bytes)
CORRELATION_ID = Face("correlation id", 200)
URL_PATH = Face("URL path", 2048)
QUERY_STRING = Face("query string", 4096)
HEADER = Face("header", 8192)
FILE_PATH = Face("file path", 1024)
GIT_REF = Face("git ref", 255)  # GitHub's limit for a ref name
TEXT = Face("text", 1 << 20, line_breaks=True)  # free text inside a body already size-capped

ECHO_CHARS = 200
"""Characters of client input an error body, an audit entry or a dead-letter reason keeps."""

_CONTROL = re.compile(r"[\x00-\x1f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNSAFE = re.compile(r"[\x00-\x1f\ud800-\udfff]")
# Bytes: a header value may hold HTAB (RFC 9110 field-value), nothing else below 0x20, no DEL.
_BAD_HEADER_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# A query string: raw control bytes, or percent-escapes that decode to one (%00-%1F).
# Decoding is single-pass, so this is exact: "%2500" is the text "%00", not a NUL.
_BAD_QUERY_BYTES = re.compile(rb"[\x00-\x1f\x7f]|%[01][0-9A-Fa-f]")
_NAMES = {0: "NUL", 9: "TAB", 10: "LF", 13: "CR", 27: "ESC", 127: "DEL"}


class UnstorableText(ValueError):
    """Text refused at an edge. A ValueError, so pydantic validators report it as a field
    error; the edges turn it into FGD_1003 (HTTP 422) or a dead-lettered command."""

    def __init__(self, field: str, problem: str) -> None:
        self.field, self.problem = sanitized(field, 100), problem
        super().__init__(f"{self.field}: {problem}")


def _describe(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate U+{code:04X} (not valid Unicode)"
    name = _NAMES.get(code, "a control character")
    return f"U+{code:04X} ({name})" if code in _NAMES else f"{name} U+{code:04X}"


def problem(text: str, face: Face) -> str | None:
    """Why ``text`` cannot be kept on ``face``, or None if it can."""
    if len(text) > face.max_chars:
        return f"longer than {face.max_chars} characters ({face.name})"
    if text.isprintable():  # no control character, no surrogate: the common case
        return None
    found = _SURROGATE.search(text) or (
        _CONTROL_BUT_LINE_BREAKS if face.line_breaks else _CONTROL
    ).search(text)
    if found is None:  # other non-printables (U+00A0, U+200D …) are fine
        return None
    return f"holds {_describe(found.group())} at position {found.start()}"


def check(text: str, face: Face, field: str) -> str:
    """``text`` if it can be kept on ``face``; UnstorableText naming ``field`` otherwise."""
    why = problem(text, face)
    if why is not None:
        raise UnstorableText(field, why)
    return text


def storable(text: str) -> bool:
    """UTF-8 encodable and free of control characters: what an identifier stored in
    PostgreSQL text or JSON may be (no length limit)."""
    return problem(text, _UNLIMITED) is None


_UNLIMITED = Face("text", 1 << 62)


def json_problem(
    value: Any, face: Face = TEXT, field: str = "body", key_face: Face = IDENTIFIER
) -> tuple[str, str] | None:
    """The first (field, problem) of a JSON value — string values on ``face``, object keys on
    ``key_face`` — or None. Iterative: a deeply nested value cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            why = problem(item, face)
            if why is not None:
                return where, why
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = f"{where}.{sanitized(str(key), 100)}"
                if isinstance(key, str) and (why := problem(key, key_face)) is not None:
                    return name, f"key {why}"
                stack.append((name, inner))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", inner) for i, inner in enumerate(item))
    return None


def check_json(
    value: Any, face: Face = TEXT, field: str = "body", key_face: Face = IDENTIFIER
) -> Any:
    """``value`` if every string and key in it can be kept; UnstorableText naming the first
    field that cannot."""
    found = json_problem(value, face, field, key_face)
    if found is not None:
        raise UnstorableText(*found)
    return value


def bytes_problem(raw: bytes, face: Face) -> str | None:
    """The same question for raw header bytes (HTAB allowed) or a raw query string (percent
    escapes decoding to a control character refused too)."""
    if len(raw) > face.max_chars:
        return f"longer than {face.max_chars} bytes ({face.name})"
    bad = (_BAD_QUERY_BYTES if face is QUERY_STRING else _BAD_HEADER_BYTES).search(raw)
    if bad is None:
        return None
    text = bad.group().decode("latin-1")
    char = chr(int(text[1:], 16)) if text.startswith("%") else text
    return f"holds {_describe(char)} at byte {bad.start()}"


def first_bad_header(values: list[bytes]) -> tuple[int, str] | None:
    """(index, problem) of the first raw header value that cannot be kept, or None. One
    scan over all of them joined (a request's headers are a few hundred bytes); only when
    it finds something, or they are long, is each looked at on its own."""
    joined = b" ".join(values)
    if len(joined) <= HEADER.max_chars and _BAD_HEADER_BYTES.search(joined) is None:
        return None
    for i, value in enumerate(values):
        why = bytes_problem(value, HEADER)
        if why is not None:
            return i, why
    return None


# -- what may be stored and echoed about refused input --------------------------------------


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitized(text: str, limit: int | None = ECHO_CHARS) -> str:
    """A copy of ``text`` that can be stored and echoed: control characters and lone
    surrogates written as ``\\xNN`` / ``\\uNNNN``; at most ``limit`` characters, the last
    one "…" when it was cut."""
    if limit is not None and len(text) > limit:
        text = text[: limit + 1]  # enough to know it is cut after escaping
    if not text.isprintable():
        text = _UNSAFE.sub(_escape, text)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def bounded(
    value: Any, limit: int | None = ECHO_CHARS, items: int | None = 50, depth: int = 8
) -> Any:
    """A JSON value with every string (keys too) ``sanitized`` to ``limit`` characters, lists
    and objects cut to ``items`` entries and nesting to ``depth`` levels — for error details
    and audit entries that may echo client input. Other values are kept as they are."""
    if isinstance(value, str):
        return sanitized(value, limit)
    if depth <= 0 and isinstance(value, dict | list):
        return "…"
    if isinstance(value, dict):
        entries = list(value.items())[:items] if items is not None else value.items()
        return {
            (sanitized(k, limit) if isinstance(k, str) else k): bounded(v, limit, items, depth - 1)
            for k, v in entries
        }
    if isinstance(value, list | tuple):
        kept = value[:items] if items is not None else value
        return [bounded(v, limit, items, depth - 1) for v in kept]
    return value


__all__ = [
    "CORRELATION_ID",
    "ECHO_CHARS",
    "FILE_PATH",
    "GIT_REF",
    "HEADER",
    "IDENTIFIER",
    "QUERY_STRING",
    "TEXT",
    "URL_PATH",
    "Face",
    "UnstorableText",
    "bounded",
    "bytes_problem",
    "first_bad_header",
    "check",
    "check_json",
    "json_problem",
    "problem",
    "sanitized",
    "storable",
]
