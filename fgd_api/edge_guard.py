"""The HTTP edge of ``fgd_core.ingestion.input_guard``: a request is refused before any endpoint,
audit
or store sees it when its path, query string, headers (the correlation id included) or JSON
body hold text the stores cannot keep, or when its body is larger than the configured cap.

Called by ``fgd_api.app.RequestMiddleware`` for every request and WebSocket handshake. The
ordinary request costs a few C-speed scans: ``str.isprintable`` on the path, one regular
expression over the raw query string and over each raw header value, and a byte search of the
body for the JSON escapes that could decode to a control character or a lone surrogate (only
a body holding one is parsed and walked here; FastAPI parses it again, as before).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import Counter
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope

from fgd_core.errors import FGDErrorCodes, error_body
from fgd_core.ingestion.input_guard import (
    CORRELATION_ID,
    QUERY_STRING,
    TEXT,
    URL_PATH,
    bytes_problem,
    first_bad_header,
    json_problem,
    problem,
    sanitized,
)

WEBHOOK_PREFIX = "/api/plugins/hedgehog/webhooks/"  # reads its own body (GitHub's 25 MiB cap)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A JSON escape that may decode to a control character (\u0000-\u001f) or a surrogate
# (\ud800-\udfff): only a body holding one is parsed and walked by the guard.
_RISKY_ESCAPE = re.compile(rb"\\u(?:00[01][0-9A-Fa-f]|[Dd][89A-Fa-f][0-9A-Fa-f]{2})")

refused_input_total = Counter(
    "fgd_http_refused_input_total",
    "HTTP requests refused at the edge (text the store cannot keep, too large)",
    ["face"],
)


@dataclass
class Refusal:
    """Why a request is refused: HTTP status, the field (``path``, ``query.x``,
    ``header.x``, ``body.a.b``) and the problem."""

    status: int
    field: str
    problem: str
    face: str

    def response(self, cid: str | None) -> JSONResponse:
        refused_input_total.labels(self.face).inc()
        problems = [{"field": self.field, "problem": self.problem}]
        body = error_body(
            FGDErrorCodes.VALIDATION_FAILED,
            f"invalid request: {self.field}: {self.problem}",
            {"problems": problems},
            cid,
        )
        return JSONResponse(body, status_code=self.status)


@dataclass
class ScopeCheck:
    """What the scan of a request's head found: the correlation id to use, the declared body
    length, and the refusal if there is one."""

    correlation_id: str
    content_length: int | None = None
    refusal: Refusal | None = None


def check_scope(scope: Scope) -> ScopeCheck:
    """Path, query string and every header of ``scope`` (HTTP or WebSocket)."""
    header_cid: bytes | None = None
    length: bytes | None = None
    refusal: Refusal | None = None
    headers = scope["headers"]
    for name, value in headers:
        if name == b"x-correlation-id":
            header_cid = value
        elif name == b"content-length":
            length = value
    bad = first_bad_header([value for _, value in headers])
    if bad is not None:
        name = sanitized(headers[bad[0]][0].decode("latin-1"), 100)
        refusal = Refusal(422, f"header.{name}", bad[1], "header")
    cid = None
    if header_cid is not None:
        text = header_cid.decode("latin-1")
        # ASCII: it is echoed in the response header, and bytes beyond ASCII would be stored
        # as latin-1 guesses of what the client meant
        why = (problem(text, CORRELATION_ID) or (None if text.isascii() else "not ASCII")
               if text else "empty")
        if why is None:
            cid = text
        elif refusal is None:
            refusal = Refusal(422, "header.x-correlation-id", why, "header")
    check = ScopeCheck(cid or str(uuid.uuid4()), refusal=refusal)
    if refusal is not None:
        return check
    path = scope["path"]
    if len(path) > URL_PATH.max_chars:
        check.refusal = Refusal(414, "path", f"longer than {URL_PATH.max_chars} characters",
                                "path")
        return check
    why = problem(path, URL_PATH)
    if why is not None:
        check.refusal = Refusal(422, "path", why, "path")
        return check
    query: bytes = scope.get("query_string", b"")
    if query:
        if len(query) > QUERY_STRING.max_chars:
            check.refusal = Refusal(414, "query", f"longer than {QUERY_STRING.max_chars} bytes",
                                    "query")
            return check
        why = bytes_problem(query, QUERY_STRING)
        if why is not None:
            check.refusal = Refusal(422, _query_field(query), why, "query")
            return check
    if length is not None:
        try:
            check.content_length = int(length)
        except ValueError:
            check.refusal = Refusal(400, "header.content-length", "not a number", "header")
    return check


def _query_field(query: bytes) -> str:
    """``query.<name>`` of the first parameter whose name or value cannot be kept."""
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if problem(name, QUERY_STRING) or problem(value, QUERY_STRING):
            return f"query.{sanitized(name, 100)}"
    return "query"


async def read_body(
    scope: Scope, receive: Receive, declared: int | None, limit: int
) -> tuple[Receive, Refusal | None]:
    """Read a request body of at most ``limit`` bytes (413 beyond: by its Content-Length
    before reading anything, else as soon as the stream passes it), refuse a JSON body that
    holds text the store cannot keep (422 naming the field), and return a ``receive`` that
    hands the endpoint the body already read."""
    if declared is not None and declared > limit:
        return receive, _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return _replay(b"", receive, message), None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return receive, _too_large(limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if body and _RISKY_ESCAPE.search(body):
        refusal = _json_refusal(body)
        if refusal is not None:
            return receive, refusal
    return _replay(body, receive), None


def _too_large(limit: int) -> Refusal:
    return Refusal(413, "body", f"larger than {limit} bytes", "body")


def _json_refusal(body: bytes) -> Refusal | None:
    try:
        # the stdlib parser, as FastAPI's: what it would hand the endpoint is what is walked
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: FastAPI answers that (422) itself
    found = json_problem(value, TEXT, "body")
    return Refusal(422, found[0], found[1], "body") if found else None


def _replay(body: bytes, receive: Receive, first: Message | None = None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return first or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def body_limit(app_state: Any) -> int:
    """The configured cap (``fgd.api.max_request_body_bytes``)."""
    container = getattr(app_state, "container", None)
    if container is None:
        return 1_048_576
    return int(container.settings.fgd.api.max_request_body_bytes)
