"""Request-scoped helpers: the container, the caller (token), permission checks that audit
their denials, and the audit record of every mutating request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import Depends, Path, Request
from pydantic import BeforeValidator, Strict

from fgd_api.container import Container
from fgd_core.auth import Principal, authenticate, authorize, record_audit
from fgd_core.errors import FGDError

# Fabric ids are positive integers (path parameter, documented in the OpenAPI document).
FabricId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _whole(value: Any) -> Any:
    # JSON Schema's "integer" includes 30.0; strict pydantic would refuse it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def whole_number(ge: int = 1, le: int = 2**31 - 1) -> Any:
    """An integer in a request body: 30 or 30.0, never "30" or true; bounds in the type so
    the OpenAPI document shows them (``Field(ge=…)`` on an optional one would not)."""
    return Annotated[int, Strict(), Ge(ge), Le(le), BeforeValidator(_whole)]
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
            self.audit(
                action or permission.removeprefix(PERM),
                fabric_id,
                success=False,
                error=exc.message,
                details={"permission": permission},
            )
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
            details={
                "method": self.request.method,
                "path": self.request.url.path,
                **(details or {}),
            },
            success=success,
            error_message=error,
            correlation_id=self.correlation_id,
        )


def get_caller(request: Request, container: Container = Depends(get_container)) -> Caller:
    header = request.headers.get("authorization")
    principal = authenticate(container.app, header) if header else None
    return Caller(request, container, principal)
