"""GitHub webhooks: a signed ``push`` starts a ``webhook`` sync of every fabric it concerns
(the spec's ``process_github_webhook``).

The request does no git I/O: it checks the signature, matches fabrics from the payload,
records the delivery and the syncs in one transaction and hands the syncs to the executor,
so GitHub gets its answer in milliseconds whatever the repository's size. The processing is
``fgd_core.application.webhook_intake``'s, shared with the ``webhook.github`` bus command, so a
delivery id counts once whichever way it came.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fgd_api.anonymous_audit import throttle_of
from fgd_api.container import Container
from fgd_api.deps import Caller, get_container
from fgd_api.errors import correlation_id
from fgd_core.application import webhook_intake as intake
from fgd_core.application.webhook_intake import (  # noqa: F401 — re-exported (tests, callers)
    DELIVERY_RE as _DELIVERY_RE,
)
from fgd_core.application.webhook_intake import (
    MAX_BODY_BYTES,
    RETRIES,
    SETTINGS_USED,
    Outcome,
    WebhookRejected,
    candidates,
    fabric_settings,
    parse_payload,
    record_delivery,
)
from fgd_core.errors import error_body

__all__ = [
    "MAX_BODY_BYTES",
    "RETRIES",
    "SETTINGS_USED",
    "Outcome",
    "WebhookRejected",
    "candidates",
    "check_signature",
    "fabric_settings",
    "parse_payload",
    "read_body",
    "record_delivery",
    "router",
]

router = APIRouter(prefix="/api/plugins/hedgehog/webhooks", tags=["webhooks"])

ACTION = "github_webhook"


async def read_body(request: Request) -> bytes:
    """The raw body, refusing more than MAX_BODY_BYTES before reading it all (413)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > MAX_BODY_BYTES
        except ValueError:
            raise WebhookRejected(400, "invalid Content-Length") from None
        if too_big:
            raise WebhookRejected(413, f"payload larger than {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise WebhookRejected(413, f"payload larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_signature(container: Container, body: bytes, header: str | None) -> None:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`` (constant time)."""
    intake.check_signature(container.settings.fgd.github.webhook_secret, body, header)


# -- the endpoint ---------------------------------------------------------------------------


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "ping answered (`{msg: pong}`) or a redelivery (`{status: duplicate}`)"},
    202: {
        "description": "push accepted (`triggered`, `coalesced`, `ignored`, `skipped`) or "
        "another event ignored (`{status: ignored}`)"
    },
    400: {"description": "missing X-GitHub-Delivery or a body that is not a JSON object"},
    401: {"description": "missing or invalid X-Hub-Signature-256, or no secret configured"},
    413: {"description": f"body larger than {MAX_BODY_BYTES} bytes"},
}


def recent_fabrics(container: Container) -> intake.RecentFabrics:
    """One fabric list per container, re-read at most once a second."""
    cached = container.extras.get("recent_fabrics")
    if cached is None:
        cached = intake.RecentFabrics(lambda: fabric_settings(container.read_model))
        container.extras["recent_fabrics"] = cached
    return cached  # type: ignore[no-any-return]


@router.post("/github/", status_code=202, responses=RESPONSES)
async def github_webhook(
    request: Request, container: Container = Depends(get_container)
) -> JSONResponse:
    caller = Caller(request, container, None)
    github_event = request.headers.get("x-github-event", "")[:100]
    delivery_id = request.headers.get("x-github-delivery", "")
    details: dict[str, Any] = {"event": github_event, "delivery": delivery_id[:100]}

    def audit(success: bool, error: str = "", **more: Any) -> None:
        caller.audit(ACTION, None, success=success, error=error, details={**details, **more})

    def audit_with_delivery(result: intake.WebhookResult) -> Any:
        # Saved in the delivery's own transaction: one commit per accepted delivery.
        return caller.audit_entry(
            ACTION, None, success=True, details={**details, **result.audit_details()}
        )

    try:
        body = await read_body(request)
        payload = intake.verify_delivery(
            container.settings.fgd.github.webhook_secret,
            body,
            request.headers.get("x-hub-signature-256"),
            delivery_id,
        )
    except WebhookRejected as exc:
        # unsigned requests are anonymous: one audit entry per address and reason per second
        suppressed = throttle_of(container).admit(caller.ip, exc.message)
        if suppressed is not None:
            await run_in_threadpool(audit, False, exc.message, suppressed=suppressed)
        body_json = error_body(exc.code, exc.message, {}, correlation_id(request))
        headers = {"WWW-Authenticate": 'HMAC realm="github"'} if exc.status == 401 else {}
        return JSONResponse(body_json, status_code=exc.status, headers=headers)

    cid = correlation_id(request) or f"github-{delivery_id}"
    try:
        result = await run_in_threadpool(
            intake.handle_delivery,
            container.app,
            github_event,
            delivery_id,
            payload,
            cid,
            recent_fabrics(container),
            audit_with_delivery,
        )
    except Exception as exc:
        with contextlib.suppress(Exception):  # the store may be what failed: keep the cause
            await run_in_threadpool(audit, False, f"delivery not processed: {type(exc).__name__}")
        raise
    if result.outcome is not None:
        for item in result.outcome.triggered:
            container.executor.submit(item["sync_id"])
    if result.outcome is None or not result.outcome.audited:
        await run_in_threadpool(audit, True, **result.audit_details())
    return JSONResponse(result.body(), status_code=result.http_status)
