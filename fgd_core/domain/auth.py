"""API tokens, the registry that lists them, and audit entries — as aggregates.

A token's aggregate id is derived from the SHA-256 of its key, so authenticating is one
aggregate load. Only that hash is ever recorded; the key exists once, in the caller's hands.
Tokens are not about one fabric: their events carry envelope ``fabric_id`` 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import event

from fgd_core.domain.base import ID_NAMESPACE, FGDAggregate


class FGDPermissions:
    """The spec's permissions, exactly as listed."""

    # View permissions
    VIEW_SYNC_STATUS = "netbox_hedgehog.view_fgd_sync"
    VIEW_SYNC_HISTORY = "netbox_hedgehog.view_fgd_history"

    # Action permissions
    TRIGGER_SYNC = "netbox_hedgehog.trigger_fgd_sync"
    CANCEL_SYNC = "netbox_hedgehog.cancel_fgd_sync"
    CONFIGURE_SYNC = "netbox_hedgehog.configure_fgd_sync"

    # Admin permissions
    REPAIR_DIRECTORY = "netbox_hedgehog.repair_fgd_directory"
    FORCE_SYNC = "netbox_hedgehog.force_fgd_sync"


PERMISSIONS: tuple[str, ...] = tuple(v for k, v in vars(FGDPermissions).items() if k.isupper())

TOKEN_REGISTRY_ID = uuid5(ID_NAMESPACE, "token-registry")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def token_uuid(key_hash: str) -> UUID:
    return uuid5(ID_NAMESPACE, f"token:{key_hash}")


class Token(FGDAggregate):
    @staticmethod
    def create_id(key_hash: str, **_: Any) -> UUID:
        return token_uuid(key_hash)

    @event("Created")
    def __init__(
        self,
        key_hash: str,
        correlation_id: str,
        user: str,
        user_id: int,
        superuser: bool,
        permissions: list[str],
        fabrics: list[int],
        expires: str | None,
        fabric_id: int = 0,
    ) -> None:
        self.fabric_id = 0
        self.correlation_id = correlation_id
        self.key_hash = key_hash
        self.user = user
        self.user_id = user_id
        self.superuser = superuser
        self.permissions = list(permissions)
        self.fabrics = list(fabrics)
        self.expires = expires  # ISO 8601 in UTC, as recorded (a replay sees the same)
        self.revoked = False

    @property
    def token_id(self) -> str:
        return str(self.id)

    @property
    def created_at(self) -> datetime:
        return self.created_on

    @property
    def expires_at(self) -> datetime | None:
        return None if self.expires is None else datetime.fromisoformat(self.expires)

    @property
    def revoked_at(self) -> datetime | None:
        # Nothing happens to a token after its revocation: its last change is that.
        return self.modified_on if self.revoked else None

    def is_expired(self, now: datetime) -> bool:
        expires_at = self.expires_at
        return expires_at is not None and expires_at <= now

    def revoke(self, reason: str = "", correlation_id: str | None = None) -> None:
        if not self.revoked:  # revoking twice is a no-op, not a second event
            self._revoked(reason=reason, correlation_id=correlation_id or self.correlation_id)

    @event("Revoked")
    def _revoked(self, reason: str, correlation_id: str) -> None:
        self.revoked = True

    def as_dict(self) -> dict[str, Any]:
        """What may be shown about a token (never its key; not even its hash)."""
        return {
            "token_id": self.token_id,
            "user": self.user,
            "user_id": self.user_id,
            "superuser": self.superuser,
            "permissions": list(self.permissions),
            "fabrics": list(self.fabrics),
            "created_at": iso(self.created_at),
            "expires": self.expires,
            "revoked": self.revoked,
            "revoked_at": None if self.revoked_at is None else iso(self.revoked_at),
        }


class TokenRegistry(FGDAggregate):
    """Lists token ids and allocates integer user ids (one per user name). Saved with each
    new Token, so concurrent creations conflict here and retry instead of sharing an id."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return TOKEN_REGISTRY_ID

    @event("Opened")
    def __init__(self, fabric_id: int = 0, correlation_id: str = "token-registry") -> None:
        self.fabric_id = 0
        self.correlation_id = correlation_id
        self.token_ids: list[str] = []
        self.users: dict[str, int] = {}

    def user_id_for(self, user: str) -> int:
        return self.users.get(user) or max(self.users.values(), default=0) + 1

    @event("Added")
    def add(self, token_id: str, user: str, user_id: int, correlation_id: str) -> None:
        self.token_ids.append(token_id)
        self.users[user] = user_id


class AuditEntry(FGDAggregate):
    """One audited action (the spec's FGDAuditLog row): a single ``audit.recorded`` event."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return uuid4()

    @classmethod
    def at(cls, entry_id: UUID, **fields: Any) -> AuditEntry:
        """An entry with a given id instead of a random one: a bus command's receipt, whose
        id derives from its message_id so that it can be recorded only once."""
        return cls._create(cls.Recorded, id=entry_id, **fields)  # type: ignore[attr-defined]

    @event("Recorded")
    def __init__(
        self,
        fabric_id: int,
        correlation_id: str,
        user: str | None,
        action: str,
        ip_address: str | None,
        user_agent: str,
        sync_id: str | None,
        details: dict[str, Any],
        success: bool,
        error_message: str,
    ) -> None:
        self.fabric_id = fabric_id
        self.correlation_id = correlation_id
        self.user = user
        self.action = action
        self.ip_address = ip_address
        self.user_agent = user_agent
        self.sync_id = sync_id
        self.details = details
        self.success = success
        self.error_message = error_message
