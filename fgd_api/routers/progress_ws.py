"""``WS /ws/plugins/hedgehog/sync-progress/{sync_id}/``: a sync's progress, live.

The stream starts with a ``sync.progress`` snapshot of the sync as it is now (so a late
subscriber misses nothing), then follows THIS sync's events in the event store — polled, so it
works the same whether the sync runs in this process or on workers elsewhere — and closes
(1000) after the final event. Every message is the spec's ``{type, sync_id, data}``; ``data``
always carries the sync's state after the event (state, stage, progress, current_file,
files_processed, total_files …) and, except in the snapshot, the event itself under ``event``.

Persisted types that are not among the spec's eight are folded in: ``stage.started`` and
``file.discovered`` become ``sync.progress``; ``file.failed`` / ``file.skipped`` become
``sync.file_processed`` (``event.status``: success, failed or skipped); a cancelled or
timed-out sync ends with ``sync.failed`` whose ``data.state`` is ``cancelled`` /
``timed_out``. ``sync.started`` is never sent: the sync has started before anyone can name
it, and the opening snapshot carries what it said (state, trigger).

Authentication is the REST API's: ``Authorization: Token <key>`` or ``?token=<key>`` (browsers
cannot set headers on a WebSocket; the JSON log formatter redacts it from access log lines),
or the console's session cookie when the handshake's ``Origin`` is this host (the console's
script cannot read its HttpOnly cookie), and ``netbox_hedgehog.view_fgd_sync`` on the sync's
fabric.
The connection is accepted first so the refusal reaches the client as a close code: 4401 no
valid token, 4404 unknown sync, 4403 no permission.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from fgd_api.anonymous_audit import throttle_of
from fgd_api.console.session import websocket_session_credential
from fgd_api.container import Container
from fgd_api.deps import VIEW_SYNC
from fgd_core.auth import Principal, authenticate, record_audit
from fgd_core.domain.sync_operation import FINAL_STATES, SyncOperation
from fgd_core.errors import NotFoundError
from fgd_core.events.envelope import decode_envelope
from fgd_core.events.types import WEBSOCKET_TYPES
from fgd_core.input_guard import sanitized

log = logging.getLogger("fgd_api.progress_ws")
router = APIRouter(tags=["sync-progress"])

POLL_INTERVAL = 0.1
CLOSE_NORMAL, CLOSE_ERROR = 1000, 1011
CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND = 4401, 4403, 4404
# Persisted types outside the spec's eight, and the message type each is shown as.
FOLDED_TYPES = {
    "stage.started": "sync.progress",
    "file.discovered": "sync.progress",
    "file.failed": "sync.file_processed",
    "file.skipped": "sync.file_processed",
    "sync.cancelled": "sync.failed",
    "sync.timeout": "sync.failed",
}
FILE_STATUS = {"file.failed": "failed", "file.skipped": "skipped"}


def message_type(event_type: str) -> str | None:
    return WEBSOCKET_TYPES.get(event_type) or FOLDED_TYPES.get(event_type)


def state_data(sync: SyncOperation) -> dict[str, Any]:
    return {
        "state": sync.state,
        "stage": sync.current_stage or "",
        "progress": sync.percent_complete,
        "current_file": sync.current_file,
        "files_processed": sync.files_processed,
        "total_files": sync.total_files,
        "stages_completed": list(sync.stages_completed),
        "stages_pending": sync.stages_pending,
        "errors": len(sync.errors),
        "warnings": len(sync.warnings),
        "version": sync.version,
    }


def snapshot_message(sync: SyncOperation) -> dict[str, Any]:
    return {
        "type": "sync.progress",
        "sync_id": sync.sync_id,
        "data": {**state_data(sync), "snapshot": True, "trigger": sync.trigger},
    }


def event_message(sync: SyncOperation, envelope: dict[str, Any]) -> dict[str, Any] | None:
    kind = message_type(envelope["event_type"])
    if kind is None:
        return None
    payload = {k: v for k, v in envelope["payload"].items() if k != "sync_id"}
    if kind == "sync.file_processed":
        payload.setdefault("status", FILE_STATUS.get(envelope["event_type"], "success"))
    event = {
        "event_type": envelope["event_type"],
        "event_id": envelope["event_id"],
        "timestamp": envelope["timestamp"],
        **payload,
    }
    return {
        "type": kind,
        "sync_id": sync.sync_id,
        "data": {**state_data(sync), "snapshot": False, "event": event},
    }


class SyncFollower:
    """Folds the sync's new stored events into its aggregate, one message per event."""

    def __init__(self, container: Container, sync: SyncOperation) -> None:
        self.app = container.app
        self.sync = sync

    @property
    def finished(self) -> bool:
        return self.sync.state in FINAL_STATES

    def _fold(self, stored: Any) -> dict[str, Any] | None:
        envelope = decode_envelope(stored.state)
        domain_event: Any = self.app.mapper.to_domain_event(stored)
        self.sync = domain_event.mutate(self.sync)  # as the repository replays it
        return event_message(self.sync, envelope)

    def poll(self) -> list[dict[str, Any]]:
        stored = self.app.recorder.select_events(self.sync.id, gt=self.sync.version)
        messages = [m for m in map(self._fold, stored) if m is not None]
        # Each message holds the whole state: a run of progress messages (one per file
        # discovered, say) says no more than its last one.
        return [
            m
            for i, m in enumerate(messages)
            if not (
                m["type"] == "sync.progress"
                and i + 1 < len(messages)
                and messages[i + 1]["type"] == "sync.progress"
            )
        ]

    def final_message(self) -> dict[str, Any] | None:
        """For a subscriber that arrives after the end: the ending event again."""
        last = self.app.recorder.select_events(self.sync.id, desc=True, limit=1)
        return event_message(self.sync, decode_envelope(last[0].state)) if last else None


def _authorize(
    container: Container, websocket: WebSocket, sync_id: str
) -> tuple[int, str, SyncOperation | None]:
    """(close code or 0, reason, sync) — denials are audited like the REST API's."""
    app = container.app
    credential = (
        websocket.headers.get("authorization")
        or websocket.query_params.get("token")
        or websocket_session_credential(websocket)  # the console's cookie, same origin only
    )
    principal = authenticate(app, credential) if credential else None
    if principal is None:
        # anyone can knock: one entry per address and reason per second (anonymous_audit)
        reason = "invalid token" if credential else "no token"
        address = websocket.client.host if websocket.client else None
        suppressed = throttle_of(container).admit(address, reason)
        if suppressed is not None:
            _audit_denial(container, websocket, None, None, sync_id, "authentication required",
                          reason=reason, suppressed=suppressed)
        return CLOSE_UNAUTHENTICATED, "authentication required", None
    try:
        sync = app.get_sync(sync_id)
    except NotFoundError:
        return CLOSE_NOT_FOUND, "sync not found", None
    if not principal.has_perm(VIEW_SYNC, sync.fabric_id):
        _audit_denial(
            container, websocket, principal, sync.fabric_id, sync.sync_id, "permission denied"
        )
        return CLOSE_FORBIDDEN, "permission denied", None
    return 0, "", sync


def _audit_denial(
    container: Container,
    websocket: WebSocket,
    principal: Principal | None,
    fabric_id: int | None,
    sync_id: str,
    error: str,
    **more: Any,
) -> None:
    try:
        valid_sync_id: str | None = str(UUID(sync_id))
    except ValueError:
        valid_sync_id = None  # the path's id may be anything; the audit field is a UUID
    record_audit(
        container.app,
        user=principal,
        action="view_sync",
        fabric_id=fabric_id,
        ip_address=websocket.client.host if websocket.client else None,
        user_agent=websocket.headers.get("user-agent", ""),
        sync_id=valid_sync_id,
        details={"method": "WEBSOCKET", "path": sanitized(websocket.url.path),
                 "permission": VIEW_SYNC, **more},
        success=False,
        error_message=error,
    )


async def _watch_disconnect(websocket: WebSocket) -> None:
    """Returns when the client goes away (what it sends is ignored)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass


async def _send(websocket: WebSocket, message: dict[str, Any]) -> None:
    await websocket.send_text(orjson.dumps(message).decode())


@router.websocket("/ws/plugins/hedgehog/sync-progress/{sync_id}/")
async def sync_progress(websocket: WebSocket, sync_id: str) -> None:
    container: Container = websocket.app.state.container
    await websocket.accept()
    try:
        code, reason, sync = await run_in_threadpool(_authorize, container, websocket, sync_id)
    except Exception:  # e.g. the database is down: say so instead of hanging up silently
        log.exception("sync progress: cannot authorize a subscriber of %s", sync_id)
        code, reason, sync = CLOSE_ERROR, "service unavailable", None
    if sync is None:
        await websocket.close(code=code, reason=reason)
        return
    follower = SyncFollower(container, sync)
    gone = asyncio.create_task(_watch_disconnect(websocket))
    try:
        await _send(websocket, snapshot_message(follower.sync))
        if follower.finished:
            final = await run_in_threadpool(follower.final_message)
            if final is not None:
                await _send(websocket, final)
        while not follower.finished:
            done, _ = await asyncio.wait({gone}, timeout=POLL_INTERVAL)
            if done:
                return  # the client left: nothing to close
            for message in await run_in_threadpool(follower.poll):
                await _send(websocket, message)
        await websocket.close(code=CLOSE_NORMAL)
    except (WebSocketDisconnect, RuntimeError):
        return  # the client left while we were sending
    except Exception:
        log.exception("sync progress stream of %s failed", sync_id)
        with contextlib.suppress(Exception):
            await websocket.close(code=CLOSE_ERROR, reason="internal error")
    finally:
        gone.cancel()
