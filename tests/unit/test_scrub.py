"""The audit scrubber's fast paths (short strings, strings without "@") redact exactly what
the two regular expressions alone would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fgd_core.redact import (
    _AUTH_VALUES,
    _QUERY_SECRET,
    _URL_USERINFO,
    REDACTED,
    SECRET_MARKERS,
    scrub,
    scrub_text,
)


def reference(text: str) -> str:
    text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    text = _AUTH_VALUES.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", text)
    return _URL_USERINFO.sub(rf"\1{REDACTED}@", text)


pieces = st.sampled_from(["token ", "Token\t", "bearer ", "BASIC  ", "https://", "a:b@", "@",
                          " ", "x", "0123456789abcdef", "a" * 40, "/", "git+ssh://",
                          "\u017f", "\u212a", "\u0130", "é", "TOK", "EN ", "?token=", "&key=",
                          "=", "&"])
texts = st.lists(st.one_of(pieces, st.text(max_size=5)), max_size=12).map("".join)


@given(texts)
def test_scrub_text_equals_the_plain_regular_expressions(text: str) -> None:
    assert scrub_text(text) == reference(text)


def test_the_shortest_credentials_are_still_redacted() -> None:
    assert scrub_text("basic " + "A" * 16) == f"basic {REDACTED}"
    assert scrub_text("a://u@h") == f"a://{REDACTED}@h"
    assert scrub_text("Token " + "f" * 40) == f"Token {REDACTED}"


@given(st.sampled_from(SECRET_MARKERS), st.sampled_from(["", "X-", "my_", "Git-Hub-"]))
def test_secret_keys_any_case_and_dash(marker: str, prefix: str) -> None:
    key = prefix + marker.upper().replace("_", "-")
    assert scrub({key: "v", "token_id": "t", "name": "n"}) == {
        key: REDACTED, "token_id": "t", "name": "n"}


def test_log_lines_never_carry_a_token() -> None:
    """uvicorn's access log line for a WebSocket opened with ?token=<key>, and a traceback
    quoting credentials, as the JSON formatter writes them."""
    import json
    import logging
    import sys

    from fgd_core.adapters.observability import JsonFormatter

    key = "0123456789abcdef0123456789abcdef01234567"
    access = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/api/plugins/hedgehog/ws/sync/s-1/?token={key}&x=1",
         "1.1", 101), None)
    line = json.loads(JsonFormatter().format(access))
    assert key not in line["message"]
    assert "?token=[REDACTED]&x=1" in line["message"]
    try:
        raise RuntimeError(f"push to https://bot:{key}@github.com/x.git failed (Token {key})")
    except RuntimeError:
        failed = logging.LogRecord("fgd", logging.ERROR, __file__, 1, "push failed", (),
                                   sys.exc_info())
    assert key not in JsonFormatter().format(failed)
