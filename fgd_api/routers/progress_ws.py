"""``WS /ws/plugins/hedgehog/sync-progress/{sync_id}/``: a sync's progress, live.

Every subscriber gets the same messages, whenever it joins: the sync's stored events from
its first one (``sync.started``) in order — replayed from the event store — then, polled,
those that follow, until the final event; then the stream closes (1000). The replay and the
live part are one walk over the sync aggregate's versions (each poll asks for the versions
after the last one sent), so the seam between them repeats nothing and skips nothing, and
it works the same whether the sync runs in this process or on workers elsewhere. Every
message is the spec's ``{type, sync_id, data}``; ``data`` carries the sync's state right
after the event (state, stage, progress, current_file, files_processed, total_files …) and
the event itself under ``event``. Paths are the API's (``/gitops/raw/x.yaml``).

Persisted types that are not among the spec's eight are folded in: ``stage.started`` and
``file.discovered`` become ``sync.progress``; ``file.failed`` / ``file.skipped`` become
``sync.file_processed`` (``event.status``: success, failed or skipped); a cancelled or
timed-out sync ends with ``sync.failed`` whose ``data.state`` is ``cancelled`` /
``timed_out``. A run of ``file.discovered`` (one per raw file, all saved at once) is sent
as its last message: each holds the whole state, and the rule depends on the events only,
never on when a poll happened, so every subscriber still gets the same sequence.

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
from fgd_core.application.api_paths import spec_path, with_spec_paths
from fgd_core.application.audit_log import record_audit
from fgd_core.application.auth import Principal, authenticate
from fgd_core.domain.sync_operation import FINAL_STATES, SyncOperation
from fgd_core.errors import NotFoundError
from fgd_core.events.envelope import decode_envelope
from fgd_core.events.types import WEBSOCKET_TYPES
from fgd_core.ingestion.input_guard import sanitized

log = logging.getLogger("fgd_api.progress_ws")
router = APIRouter(tags=["sync-progress"])

POLL_INTERVAL = 0.1
REPLAY_PAGE = 500  # events read per query while catching up
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
        "current_file": spec_path(sync.current_file),
        "files_processed": sync.files_processed,
        "total_files": sync.total_files,
        "stages_completed": list(sync.stages_completed),
        "stages_pending": sync.stages_pending,
        "errors": len(sync.errors),
        "warnings": len(sync.warnings),
        "version": sync.version,
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
        **with_spec_paths(payload),
    }
    return {
        "type": kind,
        "sync_id": sync.sync_id,
        "data": {**state_data(sync), "event": event},
    }


class SyncFollower:
    """Folds the sync's stored events, from its first, into its aggregate: one message per
    event. ``version`` is the last version folded; each ``poll`` reads the versions after it,
    so replay and live are one walk and the seam repeats or skips nothing."""

    def __init__(self, container: Container, sync_id: UUID) -> None:
        self.app = container.app
        self.sync_uuid = sync_id
        self.sync: SyncOperation | None = None
        self.version = 0
        # A file.discovered message waits for the next message: a run of them is sent as
        # its last one (decided by the events alone, so every subscriber gets the same).
        self._held: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.sync is not None and self.sync.state in FINAL_STATES

    def _fold(self, stored: Any) -> tuple[str, dict[str, Any] | None]:
        envelope = decode_envelope(stored.state)
        domain_event: Any = self.app.mapper.to_domain_event(stored)
        self.sync = domain_event.mutate(self.sync)  # as the repository replays it
        self.version = stored.originator_version
        assert self.sync is not None
        return envelope["event_type"], event_message(self.sync, envelope)

    def poll(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while not self.finished:
            page = self.app.recorder.select_events(
                self.sync_uuid, gt=self.version or None, limit=REPLAY_PAGE
            )
            for stored in page:
                event_type, message = self._fold(stored)
                if message is None:
                    continue
                if self._held is not None and event_type != "file.discovered":
                    out.append(self._held)
                self._held = None
                if event_type == "file.discovered":
                    self._held = message
                else:
                    out.append(message)
            if len(page) < REPLAY_PAGE:
                break
        return out


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
    follower = SyncFollower(container, sync.id)
    gone = asyncio.create_task(_watch_disconnect(websocket))
    try:
        while True:
            for message in await run_in_threadpool(follower.poll):
                await _send(websocket, message)
            if follower.finished:
                break
            done, _ = await asyncio.wait({gone}, timeout=POLL_INTERVAL)
            if done:
                return  # the client left: nothing to close
        await websocket.close(code=CLOSE_NORMAL)
    except (WebSocketDisconnect, RuntimeError):
        return  # the client left while we were sending
    except Exception:
        log.exception("sync progress stream of %s failed", sync_id)
        with contextlib.suppress(Exception):
            await websocket.close(code=CLOSE_ERROR, reason="internal error")
    finally:
        gone.cancel()
