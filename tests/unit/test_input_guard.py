"""fgd_core.ingestion.input_guard on its own: what each face refuses, and that what it lets
through or
writes (sanitized copies, bounded values) can always be stored as JSON without NUL."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fgd_core.ingestion.input_guard import (
    ECHO_CHARS,
    FILE_PATH,
    HEADER,
    IDENTIFIER,
    QUERY_STRING,
    TEXT,
    UnstorableText,
    bounded,
    bytes_problem,
    check,
    check_json,
    json_problem,
    problem,
    sanitized,
    storable,
)

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)


def keepable(text: str) -> bool:
    """What PostgreSQL text/jsonb and orjson can hold."""
    try:
        return b"\\u0000" not in orjson.dumps(text)
    except orjson.JSONEncodeError:
        return False


@pytest.mark.parametrize(("text", "face", "refused"), [
    ("lab-1", IDENTIFIER, False),
    ("Fabrik Zürich ✓ 👍", IDENTIFIER, False),
    ("a\u00a0b\u200dc", IDENTIFIER, False),  # non-printable but harmless
    ("x\x00y", IDENTIFIER, True),
    ("x\x1by", IDENTIFIER, True),
    ("x\x7fy", IDENTIFIER, False),  # DEL: C0 only, as the fabric settings' own check
    ("a\tb", IDENTIFIER, True),
    ("a\tb\nc\r\n", TEXT, False),
    ("a\x00b", TEXT, True),
    ("a\x0cb", TEXT, True),
    ("\ud800", TEXT, True),
    ("x" * 255, IDENTIFIER, False),
    ("x" * 256, IDENTIFIER, True),
    ("/gitops/raw/" + "a" * 1012, FILE_PATH, False),
    ("/gitops/raw/" + "a" * 1013, FILE_PATH, True),
])
def test_each_face_refuses_what_it_should(text: str, face: object, refused: bool) -> None:
    assert (problem(text, face) is not None) is refused  # type: ignore[arg-type]


def test_check_names_the_field_and_the_character() -> None:
    with pytest.raises(UnstorableText) as info:
        check("ab\x00", IDENTIFIER, "file_path")
    assert info.value.field == "file_path"
    assert "U+0000 (NUL) at position 2" in info.value.problem


def test_json_walks_keys_and_values_and_names_the_field() -> None:
    assert json_problem({"a": [1, "ok", {"b": True}]}) is None
    assert json_problem({"a": [1, {"b": "x\x00"}]})[0] == "body.a[1].b"  # type: ignore[index]
    field, why = json_problem({"ok": {"k\x00": 1}})  # type: ignore[misc]
    assert field == "body.ok.k\\x00" and why.startswith("key holds U+0000")
    assert json_problem(["\ud800"], field="payload")[0] == "payload[0]"  # type: ignore[index]
    deep: object = "x\x00"
    for _ in range(100_000):  # iterative: no RecursionError
        deep = [deep]
    assert json_problem(deep) is not None
    with pytest.raises(UnstorableText):
        check_json({"a": "\x00"})


@pytest.mark.parametrize(("raw", "face", "refused"), [
    (b"limit=10&status=completed", QUERY_STRING, False),
    (b"user=%C3%A9", QUERY_STRING, False),
    (b"user=%2500", QUERY_STRING, False),  # the text "%00"
    (b"user=a%00b", QUERY_STRING, True),
    (b"user=a%1Fb", QUERY_STRING, True),
    (b"user=a%7fb", QUERY_STRING, False),
    (b"Mozilla/5.0 (X11)\tx", HEADER, False),
    (b"caf\xc3\xa9", HEADER, False),
    (b"a\x00b", HEADER, True),
    (b"a\nb", HEADER, True),
])
def test_bytes_faces(raw: bytes, face: object, refused: bool) -> None:
    assert (bytes_problem(raw, face) is not None) is refused  # type: ignore[arg-type]


@given(any_text, st.integers(2, 400))
def test_sanitized_is_always_keepable_short_and_unchanged_when_fine(text: str, limit: int) -> None:
    copy = sanitized(text, limit)
    assert keepable(copy) and storable(copy) and len(copy) <= limit
    escaped = text.replace("\n", "\\x0a").replace("\r", "\\x0d")
    if len(escaped) <= limit and problem(text, TEXT) is None and "\t" not in text:
        assert copy == escaped
    elif len(escaped) > limit and problem(text, TEXT) is None and "\t" not in text:
        assert copy == escaped[: limit - 1] + "…"  # cut after escaping, marked


@given(any_text)
def test_what_a_face_lets_through_is_keepable(text: str) -> None:
    if problem(text, TEXT) is None:
        assert keepable(text)
    assert storable(text) is (problem(text, IDENTIFIER.__class__("x", 1 << 62)) is None)


@given(st.recursive(
    st.one_of(any_text, st.integers(-2**63, 2**63 - 1), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=80),
                            st.dictionaries(any_text, inner, max_size=5)),
    max_leaves=200))
def test_bounded_values_are_keepable_and_small(value: object) -> None:
    out = bounded(value)
    assert b"\\u0000" not in orjson.dumps(out)

    def strings(v: object) -> list[str]:
        if isinstance(v, str):
            return [v]
        if isinstance(v, dict):
            return [*v, *(s for x in v.values() for s in strings(x))]
        if isinstance(v, list):
            assert len(v) <= 50
            return [s for x in v for s in strings(x)]
        return []

    assert all(len(s) <= ECHO_CHARS for s in strings(out))
