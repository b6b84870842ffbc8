"""Secrets out of what is stored and logged: audit details, error messages, log lines.

``scrub_text`` redacts credentials inside a string (``Token <key>``, ``Bearer …``,
``https://user:pw@host``, ``?token=…`` query parameters); ``scrub`` also redacts the value of
every secret-looking key of a JSON value, at any depth. Used by the audit log and by the JSON
log formatter, so a key sent as ``?token=`` (the WebSocket allows it for browsers) never
reaches an access log line.
"""

from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[REDACTED]"
SECRET_MARKERS = (
    "token",
    "authorization",
    "password",
    "passwd",
    "secret",
    "signature",
    "api_key",
    "apikey",
    "cookie",
    "credential",
    "private_key",
)
NOT_SECRET = frozenset({"token_id"})  # an id names a token; it does not authenticate
# ASCII only (?a): credentials are ASCII, and so scrub_text's lower-case substring pre-check
# finds every string this can match.
_AUTH_VALUES = re.compile(
    r"(?ai)\b(?:(token)\s+[0-9a-f]{40}\b|(bearer|basic)\s+[A-Za-z0-9._~+/=-]{16,})"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")
# A secret in a URL's query: ?token=…, &access_token=…, &sig=… (up to the next & # or space)
_QUERY_SECRET = re.compile(
    r"(?ai)([?&;](?:token|access_token|api_key|apikey|key|secret|password|passwd|signature|sig)"
    r"=)[^&#\s\"']+"
)

_SECRET_KEY = re.compile("|".join(map(re.escape, SECRET_MARKERS)))
# The shortest credential _AUTH_VALUES matches ("basic " + 16 characters): a shorter string
# without "@" or "=" holds none, so most audit strings skip every regular expression.
_SHORTEST_AUTH_VALUE = 22


@functools.lru_cache(maxsize=1024)  # audit details repeat the same few keys
def _is_secret_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name not in NOT_SECRET and _SECRET_KEY.search(name) is not None


def scrub_text(text: str) -> str:
    """Credentials inside a string: ``Token <key>``, ``Bearer …``, ``https://user:pw@…``,
    ``?token=…``."""
    if "=" in text:
        text = _QUERY_SECRET.sub(rf"\1{REDACTED}", text)
    has_at = "@" in text
    if len(text) >= _SHORTEST_AUTH_VALUE:
        lower = text.lower()  # three substring scans are far cheaper than the (?i) pattern
        if "token" in lower or "bearer" in lower or "basic" in lower:
            text = _AUTH_VALUES.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", text)
    return _URL_USERINFO.sub(rf"\1{REDACTED}@", text) if has_at else text


def scrub(value: Any) -> Any:
    """A JSON value with every secret-looking key's value, at any depth, redacted."""
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


__all__ = ["NOT_SECRET", "REDACTED", "SECRET_MARKERS", "scrub", "scrub_text"]
