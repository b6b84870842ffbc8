"""Request-scoped helpers: the container, the caller (token), permission checks that audit
their denials, and the audit record of every mutating request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from annotated_types import Ge, Le
from fastapi import Depends, Path, Request
from pydantic import AfterValidator, BeforeValidator, Field, Strict

from fgd_api.anonymous_audit import throttle_of
from fgd_api.container import Container
from fgd_core.application.audit_log import audit_entry
from fgd_core.application.auth import (
    Principal,
    authenticate_cached,
    authorize,
    cached_principal,
    key_digest,
)
from fgd_core.domain.actor import ACTING_USER
from fgd_core.errors import FGDError
from fgd_core.ingestion.input_guard import Face, problem, sanitized

# Fabric ids are positive integers (path parameter, documented in the OpenAPI document).
FabricId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _whole(value: Any) -> Any:
    # JSON Schema's "integer" includes 30.0; strict pydantic would refuse it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def whole_number(ge: int = 1, le: int = 2**31 - 1) -> Any:
    """An integer in a request body: 30 or 30.0, never "30" or true; bounds in the type so
    the OpenAPI document shows them (``Field(ge=…)`` on an optional one would not)."""
    return Annotated[int, Strict(), Ge(ge), Le(le), BeforeValidator(_whole)]
def _guard(face: Face, value: str) -> str:
    why = problem(value, face)
    if why is not None:
        raise ValueError(why)  # pydantic: a 422 naming the field
    return value


def guarded_text(face: Face) -> Any:
    """A string in a request body that must pass ``face`` (``fgd_core.ingestion.input_guard``): no
    control character, no lone surrogate, at most ``face.max_chars`` characters (the pattern
    and the length show it in the OpenAPI document)."""
    pattern = FREE_TEXT_PATTERN if face.line_breaks else PRINTABLE_PATTERN
    return Annotated[str, Field(max_length=face.max_chars, pattern=pattern),
                     AfterValidator(partial(_guard, face))]


# What the edge guard lets through, for the OpenAPI document (path and query parameters).
PRINTABLE_PATTERN = r"^[^\x00-\x1f]*$"
FREE_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"
# A sync id in a path: what the edge lets through (the id itself is a UUID; anything else is
# simply not found).
SyncId = Annotated[str, Path(min_length=1, max_length=1900, pattern=PRINTABLE_PATTERN)]


# Text the store can keep: no control characters (lone surrogates are refused by the domain).
TEXT_PATTERN = r"^[^\x00-\x1f]+$"
# A name: the same, and no leading or trailing whitespace.
NAME_PATTERN = r"^[^\s\x00-\x1f](?:[^\x00-\x1f]*[^\s\x00-\x1f])?$"

PERM = "netbox_hedgehog."
VIEW_SYNC = PERM + "view_fgd_sync"
VIEW_HISTORY = PERM + "view_fgd_history"
TRIGGER_SYNC = PERM + "trigger_fgd_sync"
CANCEL_SYNC = PERM + "cancel_fgd_sync"
CONFIGURE_SYNC = PERM + "configure_fgd_sync"
REPAIR_DIRECTORY = PERM + "repair_fgd_directory"
FORCE_SYNC = PERM + "force_fgd_sync"


async def get_container(request: Request) -> Container:
    # async: a plain function dependency would cost every request a worker-thread hop
    return request.app.state.container  # type: ignore[no-any-return]


@dataclass
class Caller:
    """Who asks, from where — and the two things every endpoint does with that."""

    request: Request
    container: Container
    principal: Principal | None

    def __post_init__(self) -> None:
        # The events this request creates are on behalf of its user (metadata.user_id).
        # Callers are made on the request's task (async dependencies): the variable holds
        # for the rest of the request, worker threads included (they copy the context).
        if self.principal is not None:
            ACTING_USER.set(self.principal.user_id)

    @property
    def ip(self) -> str | None:
        return self.request.client.host if self.request.client else None

    @property
    def user_agent(self) -> str:
        return sanitized(self.request.headers.get("user-agent", ""))

    @property
    def correlation_id(self) -> str | None:
        return getattr(self.request.state, "correlation_id", None)

    def require(self, permission: str, fabric_id: int | None = None, action: str = "") -> None:
        """Authorize, or audit the denial and raise (401 without a token, 403 without the
        permission)."""
        try:
            authorize(self.principal, permission, fabric_id)
        except FGDError as exc:
            details = self._denial_details(permission)
            if details is not None:
                self._audit_denial(exc, permission, fabric_id, action, details)
            raise

    async def require_async(
        self, permission: str, fabric_id: int | None = None, action: str = ""
    ) -> None:
        """``require`` for async endpoints: granted on the event loop (no I/O); a denial is
        audited in a worker thread (a save), then raised."""
        try:
            authorize(self.principal, permission, fabric_id)
        except FGDError as exc:
            details = self._denial_details(permission)
            if details is not None:
                await anyio.to_thread.run_sync(
                    self._audit_denial, exc, permission, fabric_id, action, details
                )
            raise

    def _denial_details(self, permission: str) -> dict[str, Any] | None:
        """The audit details of a denial; None when it is left out of the audit log: anyone
        can send anonymous requests, so those are throttled (``fgd_api.anonymous_audit``)."""
        details: dict[str, Any] = {"permission": permission}
        if self.principal is None:
            reason = "invalid token" if self.request.headers.get("authorization") else "no token"
            suppressed = throttle_of(self.container).admit(self.ip, reason)
            if suppressed is None:
                return None
            details.update(reason=reason, suppressed=suppressed)
        return details

    def _audit_denial(
        self, exc: FGDError, permission: str, fabric_id: int | None, action: str,
        details: dict[str, Any],
    ) -> None:
        self.audit(action or permission.removeprefix(PERM), fabric_id, success=False,
                   error=exc.message, details=details)

    def audit(
        self,
        action: str,
        fabric_id: int | None,
        *,
        success: bool,
        sync_id: str | None = None,
        details: dict[str, Any] | None = None,
        error: str = "",
    ) -> int:
        entry = self.audit_entry(
            action, fabric_id, success=success, sync_id=sync_id, details=details, error=error
        )
        recordings = self.container.app.save(entry)
        return int(recordings[-1].notification.id)

    def audit_entry(
        self,
        action: str,
        fabric_id: int | None,
        *,
        success: bool,
        sync_id: str | None = None,
        details: dict[str, Any] | None = None,
        error: str = "",
    ) -> Any:
        """The audit entry of this request, for saving with what it audits."""
        return audit_entry(
            user=self.principal,
            action=action,
            fabric_id=fabric_id,
            ip_address=self.ip,
            user_agent=self.user_agent,
            sync_id=sync_id,
            details={
                "method": self.request.method,
                "path": sanitized(self.request.url.path),  # client input: cut to 200
                **(details or {}),
            },
            success=success,
            error_message=error,
            correlation_id=self.correlation_id,
        )


async def get_caller(
    request: Request, container: Container = Depends(get_container)
) -> Caller:
    """The caller; the token's principal from the process's short-lived principal cache
    (``fgd_core.application.auth.PrincipalCache``: a revocation made elsewhere takes effect within
    its
    TTL), else loaded in a worker thread."""
    header = request.headers.get("authorization")
    principal = await principal_for_key(container.app, header) if header else None
    return Caller(request, container, principal)


# Loads in progress, per (event loop, application, key hash): when a cached principal
# expires under load, the requests that find it missing wait for one load, not one each.
_LOADING: dict[tuple[int, int, str], asyncio.Future[Principal | None]] = {}


async def principal_for_key(app: Any, header: str) -> Principal | None:
    principal = cached_principal(app, header)
    if principal is not None:
        return principal
    digest = key_digest(header)
    if digest is None:
        return None  # malformed: refused without a lookup (as ``authenticate`` does)
    loop = asyncio.get_running_loop()
    key = (id(loop), id(app), digest)
    loading = _LOADING.get(key)
    if loading is None:
        loading = asyncio.ensure_future(
            anyio.to_thread.run_sync(authenticate_cached, app, header)
        )
        _LOADING[key] = loading
        loading.add_done_callback(lambda _: _LOADING.pop(key, None))
    return await asyncio.shield(loading)
