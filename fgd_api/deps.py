"""Request-scoped helpers: the container, the caller (token), permission checks that audit
their denials, and the audit record of every mutating request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from fgd_api.container import Container
from fgd_core.auth import Principal, authenticate, authorize, record_audit
from fgd_core.errors import FGDError

PERM = "netbox_hedgehog."
VIEW_SYNC = PERM + "view_fgd_sync"
VIEW_HISTORY = PERM + "view_fgd_history"
TRIGGER_SYNC = PERM + "trigger_fgd_sync"
CANCEL_SYNC = PERM + "cancel_fgd_sync"
CONFIGURE_SYNC = PERM + "configure_fgd_sync"
REPAIR_DIRECTORY = PERM + "repair_fgd_directory"
FORCE_SYNC = PERM + "force_fgd_sync"


def get_container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


@dataclass
class Caller:
    """Who asks, from where — and the two things every endpoint does with that."""

    request: Request
    container: Container
    principal: Principal | None

    @property
    def ip(self) -> str | None:
        return self.request.client.host if self.request.client else None

    @property
    def user_agent(self) -> str:
        return self.request.headers.get("user-agent", "")[:500]

    @property
    def correlation_id(self) -> str | None:
        return getattr(self.request.state, "correlation_id", None)

    def require(self, permission: str, fabric_id: int | None = None, action: str = "") -> None:
        """Authorize, or audit the denial and raise (401 without a token, 403 without the
        permission)."""
        try:
            authorize(self.principal, permission, fabric_id)
        except FGDError as exc:
            self.audit(action or permission.removeprefix(PERM), fabric_id, success=False,
                       error=exc.message, details={"permission": permission})
            raise

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
        return record_audit(
            self.container.app,
            user=self.principal,
            action=action,
            fabric_id=fabric_id,
            ip_address=self.ip,
            user_agent=self.user_agent,
            sync_id=sync_id,
            details={"method": self.request.method, "path": self.request.url.path,
                     **(details or {})},
            success=success,
            error_message=error,
            correlation_id=self.correlation_id,
        )


def get_caller(request: Request, container: Container = Depends(get_container)) -> Caller:
    header = request.headers.get("authorization")
    principal = authenticate(container.app, header) if header else None
    return Caller(request, container, principal)
