"""Sign-in and sign-out, and the console's static files (vendored, served from memory)."""

from __future__ import annotations

import hmac
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from fgd_api.console.render import SECURITY_HEADERS, render
from fgd_api.console.routing import ConsoleRoute
from fgd_api.console.session import (
    LOGIN_CSRF_COOKIE,
    CSRFRefused,
    check_csrf,
    clear_session,
    console_caller,
    login_csrf,
    read_form,
    same_origin,
    set_login_csrf,
    set_session,
)
from fgd_api.deps import Caller, principal_for_key

router = APIRouter(prefix="/ui", route_class=ConsoleRoute, include_in_schema=False)

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {".css": "text/css", ".js": "text/javascript", ".txt": "text/plain"}
# Read once: a handful of small files, served with their names fixed (no path is joined).
STATIC_FILES = {
    p.name: (p.read_bytes(), MEDIA_TYPES.get(p.suffix, "application/octet-stream"))
    for p in STATIC.iterdir()
    if p.is_file()
}


def safe_next(target: str | None) -> str:
    """Only a console path (never another site: ``//host`` or a scheme)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


@router.get("/static/{name}")
async def static(name: str) -> Response:
    found = STATIC_FILES.get(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    content, media_type = found
    return Response(content, media_type=media_type,
                    headers={"Cache-Control": "public, max-age=3600",
                             "X-Content-Type-Options": "nosniff"})


@router.get("/login")
async def login_form(request: Request) -> Response:
    token = login_csrf(request)
    page = render(request, "login.html", next=safe_next(request.query_params.get("next")),
                  problem="", login_csrf=token)
    set_login_csrf(request, page, token)
    return page


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = form.get("csrf_token", "")
    if not expected or not same_origin(request.headers) or not hmac.compare_digest(sent, expected):
        raise CSRFRefused("missing or wrong CSRF token: reload the sign-in page")
    key = form.get("token", "").strip()
    container = request.app.state.container
    principal = await principal_for_key(container.app, key) if key else None
    caller = Caller(request, container, principal)
    if principal is None:
        await run_in_threadpool(
            lambda: caller.audit("console_sign_in", None, success=False,
                                 error="invalid, expired or revoked token")
        )
        return render(request, "login.html", status=401, next=safe_next(form.get("next")),
                      problem="That token is not valid (unknown, expired or revoked).",
                      login_csrf=expected)
    await run_in_threadpool(lambda: caller.audit("console_sign_in", None, success=True))
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    set_session(request, response, key)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/")
    return response


@router.post("/logout")
async def logout(request: Request, caller: Caller = Depends(console_caller)) -> Response:
    form = await read_form(request)
    check_csrf(request, form, request.state.console_csrf)
    response = RedirectResponse("/ui/login", status_code=303)
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    clear_session(response)
    return response
