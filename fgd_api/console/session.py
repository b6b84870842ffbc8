"""The console's session: the API token in an HttpOnly cookie, CSRF tokens, and the caller.

- The cookie ``fgd_session`` holds the token's key (HttpOnly, SameSite=Strict, Secure over
  https, path ``/`` so the WebSocket handshake carries it too). Nothing is stored server-side:
  every request authenticates the key exactly as an ``Authorization: Token`` header would
  (the same principal cache), so a revoked token ends the session within the cache's TTL.
- CSRF: every form carries ``csrf_token`` = HMAC-SHA256(key, "fgd-console-csrf"). Only a
  holder of the key can compute it, it needs no server state, and every process of a
  deployment agrees on it. The sign-in form (no key yet) uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from fgd_api.container import Container
from fgd_api.deps import Caller, principal_for_key
from fgd_core.application.auth import Principal, key_digest

SESSION_COOKIE = "fgd_session"
LOGIN_CSRF_COOKIE = "fgd_login_csrf"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 64 * 1024  # the console's forms are a few hundred bytes
MAX_FORM_FIELDS = 50


class NotSignedIn(Exception):
    """No valid session: the page redirects to the sign-in form."""


class Refused(Exception):
    """A request the console refuses before doing anything (answered with ``status``)."""

    status = 400


class CSRFRefused(Refused):
    """A POST without the right CSRF token (or from another origin)."""

    status = 403


class FormTooLarge(Refused):
    status = 413


def session_key(request: Request | WebSocket) -> str | None:
    """The token key in the session cookie, if it looks like one."""
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and key_digest(value) is not None else None


def csrf_token(key: str) -> str:
    return hmac.new(key.encode("ascii"), b"fgd-console-csrf", hashlib.sha256).hexdigest()


def _set_cookie(request: Request, response: Response, name: str, value: str, path: str) -> None:
    """Every console cookie: HttpOnly, SameSite=Strict, Secure over https."""
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=path,
    )


def set_session(request: Request, response: Response, key: str) -> None:
    _set_cookie(request, response, SESSION_COOKIE, key, "/")


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def login_csrf(request: Request) -> str:
    """The sign-in form's CSRF value: the browser's cookie, or a new random one."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_hex(16)


def set_login_csrf(request: Request, response: Response, value: str) -> None:
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, value, "/ui/")


def same_origin(headers: Any) -> bool:
    """True unless an ``Origin`` header names another host than ``Host`` (browsers send
    Origin on every POST and WebSocket handshake; tools that send none are not browsers
    and carry no ambient cookie of a victim)."""
    origin = headers.get("origin")
    if not origin:
        return True
    host = headers.get("host", "")
    return bool(origin.split("://", 1)[-1] == host)


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, bounded (no multipart parser needed
    for forms of a few fields)."""
    if not request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
    pairs = parse_qsl(
        body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
    )
    return dict(pairs)


def check_csrf(request: Request, form: dict[str, str], expected: str) -> None:
    sent = form.get(CSRF_FIELD, "")
    if not same_origin(request.headers) or not hmac.compare_digest(sent, expected):
        raise CSRFRefused("missing or wrong CSRF token")


async def console_caller(request: Request) -> Caller:
    """The signed-in caller (the API's ``Caller``: same permission checks, same audit), or
    ``NotSignedIn``."""
    container: Container = request.app.state.container
    key = session_key(request)
    principal: Principal | None = (
        await principal_for_key(container.app, key) if key is not None else None
    )
    if principal is None:
        raise NotSignedIn()
    caller = Caller(request, container, principal)
    request.state.console_csrf = csrf_token(key)  # type: ignore[arg-type]
    request.state.console_caller = caller
    return caller


def websocket_session_credential(websocket: WebSocket) -> str | None:
    """The console's session key for the progress WebSocket: only from the same origin
    (a page of another site must not ride on the operator's cookie)."""
    key = session_key(websocket)
    if key is None or not websocket.headers.get("origin") or not same_origin(websocket.headers):
        return None
    return key
