"""GitHub webhooks: a signed ``push`` starts a ``webhook`` sync of every fabric it concerns
(the spec's ``process_github_webhook``).

The request does no git I/O: it checks the signature, matches fabrics from the payload,
records the delivery and the syncs in one transaction and hands the syncs to the executor,
so GitHub gets its answer in milliseconds whatever the repository's size.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from fgd_api.container import Container
from fgd_api.deps import Caller, get_container
from fgd_api.errors import correlation_id
from fgd_core.application import FGDApplication
from fgd_core.domain.webhook import (
    WebhookDelivery,
    branch_of,
    delivery_uuid,
    fabric_matches,
    push_repository_keys,
    touched_paths,
    touches_directory,
)
from fgd_core.errors import (
    DatabaseError,
    FGDErrorCodes,
    SyncAlreadyInProgressError,
    error_body,
)

router = APIRouter(prefix="/api/plugins/hedgehog/webhooks", tags=["webhooks"])

MAX_BODY_BYTES = 5 * 1024 * 1024
ACTION = "github_webhook"
RETRIES = 20
_DELIVERY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class WebhookRejected(Exception):
    def __init__(self, status: int, message: str, code: str = FGDErrorCodes.VALIDATION_FAILED):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Outcome:
    triggered: list[dict[str, Any]] = field(default_factory=list)
    coalesced: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    ignored: str | None = None
    duplicate: bool = False


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
    secret = container.settings.fgd.github.webhook_secret
    if secret is None or not secret.get_secret_value():
        raise WebhookRejected(401, "webhook secret not configured: deliveries cannot be verified")
    if not header:
        raise WebhookRejected(401, "missing X-Hub-Signature-256")
    expected = (
        "sha256="
        + hmac.new(secret.get_secret_value().encode("utf-8"), body, hashlib.sha256).hexdigest()
    )
    if not hmac.compare_digest(expected.encode("ascii"), header.strip().encode("latin-1")):
        raise WebhookRejected(401, "invalid X-Hub-Signature-256")


def parse_payload(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected(400, "payload is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "payload is not a JSON object")
    return payload


# -- push → syncs --------------------------------------------------------------------------


def candidates(fabrics: list[Any], payload: dict[str, Any]) -> tuple[list[int], Outcome]:
    """Fabrics the push concerns (repository, branch, GitOps directory, settings), among
    ``fabrics`` (objects with the Fabric's setting attributes and ``fabric_id``)."""
    outcome = Outcome()
    branch = branch_of(payload.get("ref"))
    repository = payload.get("repository")
    if branch is None:
        outcome.ignored = "not a branch push"
        return [], outcome
    if payload.get("deleted"):
        outcome.ignored = "branch deleted"
        return [], outcome
    if not isinstance(repository, dict):
        outcome.ignored = "payload names no repository"
        return [], outcome
    keys = push_repository_keys(repository)
    paths, complete = touched_paths(payload)
    matching = [f for f in fabrics if fabric_matches(f, keys, branch)]
    if not matching:
        outcome.ignored = "no fabric tracks this repository and branch"
        return [], outcome
    chosen = []
    for fabric in matching:
        # A truncated commit list may hide GitOps changes: sync rather than miss them.
        if complete and not touches_directory(paths, fabric.gitops_directory):
            outcome.skipped.append(
                {
                    "fabric_id": fabric.fabric_id,
                    "reason": "push does not touch the GitOps directory",
                }
            )
        elif not fabric.sync_enabled:
            outcome.skipped.append({"fabric_id": fabric.fabric_id, "reason": "sync disabled"})
        elif not fabric.auto_sync_on_change:
            outcome.skipped.append(
                {"fabric_id": fabric.fabric_id, "reason": "auto_sync_on_change is off"}
            )
        else:
            chosen.append(fabric.fabric_id)
    if not chosen:
        outcome.ignored = "no matching fabric is due a sync (see skipped)"
    return chosen, outcome


def fabric_settings(read_model: Any) -> list[Any]:
    """Every fabric's settings from the read model: one query, where loading each Fabric
    aggregate would replay its history (this runs for every delivery)."""
    return [
        SimpleNamespace(fabric_id=row["id"], **{k: row[k] for k in SETTINGS_USED})
        for row in read_model.fabrics()
    ]


SETTINGS_USED = ("repository", "branch", "gitops_directory", "sync_enabled", "auto_sync_on_change")


def record_delivery(
    app: FGDApplication,
    delivery_id: str,
    payload: dict[str, Any],
    cid: str,
    fabrics: Callable[[], list[Any]],
) -> Outcome:
    """Record the delivery and start its syncs in ONE save: either all of it happened once,
    or (a redelivery, a lost race) none of it. Mirrors FGDApplication.start_sync per fabric."""
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    for _ in range(RETRIES):
        try:
            app.repository.get(delivery_uuid(delivery_id))
            return Outcome(duplicate=True)
        except AggregateNotFoundError:
            pass
        fabric_ids, outcome = candidates(fabrics(), payload)
        to_save: list[Any] = []
        for fabric_id in fabric_ids:
            try:
                sync, fabric = app.prepare_sync(
                    fabric_id, "webhook", None, f"github-{delivery_id}-fabric-{fabric_id}"
                )
            except SyncAlreadyInProgressError:
                outcome.coalesced.append(fabric_id)  # the running sync's fetch may miss it
                continue
            outcome.triggered.append({"fabric_id": fabric_id, "sync_id": sync.sync_id})
            to_save += [sync, fabric]
        delivery = WebhookDelivery(
            delivery_id=delivery_id,
            correlation_id=cid,
            github_event="push",
            repository=str(full_name or "")[:500],
            ref=str(payload.get("ref") or "")[:500],
            after=str(payload.get("after") or "")[:100],
            triggered=outcome.triggered,
            coalesced=outcome.coalesced,
            ignored=outcome.ignored,
        )
        try:
            app.save(delivery, *to_save)
        except IntegrityError:
            continue  # a redelivery or a sync started meanwhile: look again
        return outcome
    raise DatabaseError("too much contention: webhook delivery not recorded", details={})


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

    try:
        body = await read_body(request)
        check_signature(container, body, request.headers.get("x-hub-signature-256"))
        if not _DELIVERY_RE.match(delivery_id):
            raise WebhookRejected(400, "missing or malformed X-GitHub-Delivery")
        payload = parse_payload(body)
    except WebhookRejected as exc:
        await run_in_threadpool(audit, False, exc.message)
        body_json = error_body(exc.code, exc.message, {}, correlation_id(request))
        headers = {"WWW-Authenticate": 'HMAC realm="github"'} if exc.status == 401 else {}
        return JSONResponse(body_json, status_code=exc.status, headers=headers)

    if github_event == "ping":
        await run_in_threadpool(audit, True, status="pong")
        return JSONResponse(
            {"msg": "pong", "delivery": delivery_id, "hook_id": payload.get("hook_id")},
            status_code=200,
        )
    if github_event != "push":
        await run_in_threadpool(audit, True, status="ignored")
        return JSONResponse(
            {"status": "ignored", "delivery": delivery_id, "event": github_event},
            status_code=202,
        )

    cid = correlation_id(request) or f"github-{delivery_id}"
    try:
        outcome = await run_in_threadpool(
            record_delivery,
            container.app,
            delivery_id,
            payload,
            cid,
            lambda: fabric_settings(container.read_model),
        )
    except Exception as exc:
        with contextlib.suppress(Exception):  # the store may be what failed: keep the cause
            await run_in_threadpool(audit, False, f"delivery not processed: {type(exc).__name__}")
        raise
    if outcome.duplicate:
        await run_in_threadpool(audit, True, status="duplicate")
        return JSONResponse({"status": "duplicate", "delivery": delivery_id}, status_code=200)
    for item in outcome.triggered:
        container.executor.submit(item["sync_id"])
    result = {
        "status": "accepted",
        "delivery": delivery_id,
        "triggered": outcome.triggered,
        "coalesced": outcome.coalesced,
        "ignored": outcome.ignored,
        "skipped": outcome.skipped,
    }
    repository = payload.get("repository")
    await run_in_threadpool(
        audit,
        True,
        status="accepted",
        ref=payload.get("ref"),
        repository=repository.get("full_name") if isinstance(repository, dict) else None,
        triggered=outcome.triggered,
        coalesced=outcome.coalesced,
        ignored=outcome.ignored,
    )
    return JSONResponse(result, status_code=202)
