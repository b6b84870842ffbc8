"""Rendering: the Jinja2 environment (autoescaped), the filters the templates use, and the
headers every console page carries."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse

from fgd_api.deps import PERM
from fgd_core.domain.sync_operation import STAGES

HERE = Path(__file__).parent

# A page loads only its own script and style; nothing is framed; the WebSocket is
# same-origin ('self' covers ws:/wss: of this host in CSP level 3).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=4096)  # a page of 100 fabrics or syncs: the same few hundred times
def when(value: str | None) -> Markup:
    """A time in UTC as text (what a page without JavaScript shows), the exact ISO value in
    ``datetime`` for the script that rewrites it in the viewer's time zone, UTC on hover."""
    if not value:
        return Markup("—")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return Markup(escape(value))
    text = dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup(f'<time datetime="{escape(value)}" title="{text}">{text}</time>')


def state(value: str | None) -> Markup:
    text = (value or "never synced").replace("_", " ")
    return Markup(f'<span class="state state-{escape(value or "none")}">{escape(text)}</span>')


def duration(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def query(base: dict[str, Any], **changes: Any) -> str:
    """A query string: ``base`` with ``changes``, empty values left out."""
    merged = {**base, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def short(sha: str | None, n: int = 10) -> str:
    return sha[:n] if sha else "—"


environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the package: no stat() of each file per render
)
environment.filters.update(when=when, duration=duration, short=short, state=state)
environment.globals.update(query=query, STAGES=STAGES)
# Compiled now, at import: before the app freezes what lives as long as it (gc.freeze in
# its lifespan) and before the first request would pay for it.
for _name in environment.list_templates(extensions=["html"]):
    environment.get_template(_name)


def render(
    request: Request, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    caller = context.get("caller")
    principal = caller.principal if caller is not None else None
    html = environment.get_template(template).render(
        request=request,
        principal=principal,
        csrf=getattr(request.state, "console_csrf", ""),
        PERM=PERM,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
