"""Authentication, authorization and API tokens, for the REST API and bus commands.

    key, token = create_token(app, "alice", permissions=["trigger_fgd_sync"], fabrics=[3])
    principal = authenticate(app, request.headers.get("Authorization"))  # None → 401
    authorize(principal, FGDPermissions.TRIGGER_SYNC, fabric_id=3)  # raises (401 / 403)

Keys are NetBox-style (``Authorization: Token <40 hex>``). Only the key's SHA-256 is recorded,
and the token's aggregate id is derived from it, so authenticating is one aggregate load.
The audit log is in ``audit_log``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from fgd_core.application.app import FGDApplication
from fgd_core.domain.auth import (
    PERMISSIONS,
    TOKEN_REGISTRY_ID,
    FGDPermissions,
    Token,
    TokenRegistry,
    iso,
    token_uuid,
)
from fgd_core.errors import FGDError, FGDErrorCodes, NotFoundError, ValidationError
from fgd_core.redact import REDACTED, SECRET_MARKERS, scrub, scrub_text  # noqa: F401 — re-exported

__all__ = [
    "PERMISSIONS",
    "AuthenticationError",
    "FGDPermissions",
    "PermissionDeniedError",
    "Principal",
    "authenticate",
    "authenticate_cached",
    "authorize",
    "create_token",
    "get_token",
    "list_tokens",
    "normalize_permission",
    "require_principal",
    "revoke_token",
    "scrub",
]

KEY_BYTES = 20  # 40 hex characters, 160 bits (NetBox's key length)
_KEY_RE = re.compile(r"[0-9a-fA-F]{40}")
_SHORT = {p.split(".", 1)[1]: p for p in PERMISSIONS}


# The spec has no authentication code: a refused request fails validation (FGD_1003); the
# HTTP layer answers with ``http_status``.
class AuthenticationError(FGDError):
    code = FGDErrorCodes.VALIDATION_FAILED
    http_status = 401


class PermissionDeniedError(FGDError):
    code = FGDErrorCodes.VALIDATION_FAILED
    http_status = 403


def _now() -> datetime:
    return datetime.now(UTC)


# -- permissions and principals -------------------------------------------------------------


def normalize_permission(name: str) -> str:
    """``trigger_fgd_sync`` or ``netbox_hedgehog.trigger_fgd_sync`` → the full name."""
    if isinstance(name, str) and name in PERMISSIONS:
        return name
    if isinstance(name, str) and name in _SHORT:
        return _SHORT[name]
    raise ValidationError(
        f"unknown permission {name!r}",
        details={"unknown_permissions": [str(name)], "allowed": list(PERMISSIONS)},
    )


def normalize_permissions(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    full, unknown = set(), []
    for name in names:
        try:
            full.add(normalize_permission(name))
        except ValidationError:
            unknown.append(str(name))
    if unknown:
        raise ValidationError(
            f"unknown permission(s): {', '.join(unknown)}",
            details={"unknown_permissions": unknown, "allowed": list(PERMISSIONS)},
        )
    return [p for p in PERMISSIONS if p in full]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user of an authenticated token."""

    user: str
    user_id: int
    superuser: bool
    permissions: frozenset[str]
    fabrics: frozenset[int]  # empty: the permissions hold on every fabric
    token_id: str

    @classmethod
    def of(cls, token: Token) -> Principal:
        return cls(
            user=token.user,
            user_id=token.user_id,
            superuser=token.superuser,
            permissions=frozenset(token.permissions),
            fabrics=frozenset(token.fabrics),
            token_id=token.token_id,
        )

    def has_perm(self, permission: str, fabric_id: int | None = None) -> bool:
        """A fabric-limited token holds no permission on "no fabric in particular" (e.g.
        registering a new fabric); lists filter with ``fabrics_with`` instead."""
        permission = normalize_permission(permission)
        if self.superuser:
            return True
        if permission not in self.permissions:
            return False
        return not self.fabrics or fabric_id in self.fabrics

    def fabrics_with(self, permission: str) -> frozenset[int] | None:
        """Fabric ids on which ``permission`` holds; None means every fabric."""
        permission = normalize_permission(permission)
        if self.superuser or (permission in self.permissions and not self.fabrics):
            return None
        return self.fabrics if permission in self.permissions else frozenset()


def authorize(principal: Principal | None, permission: str, fabric_id: int | None = None) -> None:
    """Return if ``principal`` holds ``permission`` (on ``fabric_id``); raise otherwise:
    AuthenticationError (401) without a principal, PermissionDeniedError (403)."""
    if principal is None:
        raise AuthenticationError("authentication required", details={})
    if not principal.has_perm(permission, fabric_id):
        raise PermissionDeniedError(
            "permission denied",
            details={"permission": normalize_permission(permission), "fabric_id": fabric_id},
        )


# -- tokens ---------------------------------------------------------------------------------


def hash_key(key: str) -> str:
    return hashlib.sha256(key.lower().encode("ascii")).hexdigest()


def _parse_key(header_or_key: Any) -> str | None:
    """``Token <key>`` or a bare key → the key (lower case); anything else → None."""
    if isinstance(header_or_key, bytes):
        header_or_key = header_or_key.decode("latin-1")
    if not isinstance(header_or_key, str):
        return None
    parts = header_or_key.split()
    if len(parts) == 2 and parts[0].lower() == "token":
        candidate = parts[1]
    elif len(parts) == 1:
        candidate = parts[0]
    else:
        return None
    return candidate.lower() if _KEY_RE.fullmatch(candidate) else None


def authenticate(app: FGDApplication, header_or_key: Any) -> Principal | None:
    """The principal of a valid token; None for a missing, malformed, unknown, revoked or
    expired one (a database failure raises)."""
    key = _parse_key(header_or_key)
    if key is None:
        return None
    return _authenticate_digest(app, hash_key(key))[0]


def _authenticate_digest(
    app: FGDApplication, digest: str
) -> tuple[Principal | None, datetime | None]:
    """(the principal of the token with this key hash, or None; its expiry)."""
    try:
        token: Any = app.repository.get(token_uuid(digest))
    except AggregateNotFoundError:
        return None, None
    if not isinstance(token, Token) or not hmac.compare_digest(token.key_hash, digest):
        return None, None
    if token.revoked or token.is_expired(_now()):
        return None, None
    return Principal.of(token), token.expires_at


# -- the API's principal cache --------------------------------------------------------------

PRINCIPAL_CACHE_TTL = 2.0  # seconds
PRINCIPAL_CACHE_SIZE = 4096


class PrincipalCache:
    """Principals of recently authenticated tokens, for one event store, so a busy client
    is not one aggregate load per request.

    - Keyed by the key's SHA-256 (what the store records); the key itself is never kept.
    - Only successes are cached; a refused key is looked up again on every request.
    - An entry lives ``ttl`` seconds at most (``PRINCIPAL_CACHE_TTL``, 2 s), and never past
      the token's own expiry (checked on every hit).
    - ``revoke_token`` through the same application object drops the entry at once. A
      revocation made elsewhere (another process, e.g. ``fgd token revoke``) takes effect
      here within ``ttl`` seconds.
    """

    def __init__(self, ttl: float = PRINCIPAL_CACHE_TTL, size: int = PRINCIPAL_CACHE_SIZE):
        self.ttl, self.size = ttl, size
        self._entries: dict[str, tuple[Principal, float, datetime | None]] = {}

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, deadline, expires_at = entry
        if time.monotonic() >= deadline or (expires_at is not None and expires_at <= _now()):
            self._entries.pop(digest, None)
            return None
        return principal

    def put(self, digest: str, principal: Principal, expires_at: datetime | None) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = (principal, time.monotonic() + self.ttl, expires_at)

    def discard(self, digest: str) -> None:
        self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()


_CACHES: weakref.WeakKeyDictionary[Any, PrincipalCache] = weakref.WeakKeyDictionary()


def principal_cache(app: FGDApplication) -> PrincipalCache:
    """The principal cache of ``app`` (one per application object)."""
    cache = _CACHES.get(app)
    if cache is None:
        cache = _CACHES.setdefault(app, PrincipalCache())
    return cache


def key_digest(header_or_key: Any) -> str | None:
    """The SHA-256 of the key in ``Token <key>`` (or a bare key); None if malformed."""
    key = _parse_key(header_or_key)
    return None if key is None else hash_key(key)


def cached_principal(app: FGDApplication, header_or_key: Any) -> Principal | None:
    """The cached principal for this key, without touching the store; None if there is
    none (which says nothing about the key: ask ``authenticate_cached``)."""
    key = _parse_key(header_or_key)
    return None if key is None else principal_cache(app).get(hash_key(key))


def authenticate_cached(app: FGDApplication, header_or_key: Any) -> Principal | None:
    """``authenticate`` through the application's ``PrincipalCache``: a valid token is
    loaded at most once per ``PRINCIPAL_CACHE_TTL`` seconds; see the cache for when a
    revocation takes effect."""
    key = _parse_key(header_or_key)
    if key is None:
        return None
    digest = hash_key(key)
    cache = principal_cache(app)
    principal = cache.get(digest)
    if principal is None:
        principal, expires_at = _authenticate_digest(app, digest)
        if principal is not None:
            cache.put(digest, principal, expires_at)
    return principal


def require_principal(app: FGDApplication, header_or_key: Any) -> Principal:
    """``authenticate``, raising AuthenticationError (401) instead of returning None."""
    principal = authenticate(app, header_or_key)
    if principal is None:
        raise AuthenticationError("invalid, expired or missing token", details={})
    return principal


def _check_user(user: Any) -> str:
    if not isinstance(user, str) or not user.strip() or len(user.strip()) > 150:
        raise ValidationError(
            "user must be a name of 1 to 150 characters", details={"field": "user"}
        )
    return user.strip()


def _check_fabrics(fabrics: Iterable[int]) -> list[int]:
    ids = list(fabrics)
    for fabric_id in ids:
        if not isinstance(fabric_id, int) or isinstance(fabric_id, bool) or fabric_id < 1:
            raise ValidationError(
                f"fabric id {fabric_id!r} must be a positive integer", details={"field": "fabrics"}
            )
    return sorted(set(ids))


def _check_expires(expires: datetime | str | None) -> str | None:
    if expires is None:
        return None
    try:
        when = expires if isinstance(expires, datetime) else datetime.fromisoformat(expires)
    except (TypeError, ValueError):
        raise ValidationError(
            f"expires {expires!r} is not an ISO 8601 date-time", details={"field": "expires"}
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # a naive time is taken as UTC
    if when <= _now():
        raise ValidationError("expires must be in the future", details={"field": "expires"})
    return iso(when)


def _token_registry(app: FGDApplication) -> TokenRegistry:
    try:
        return app.repository.get(TOKEN_REGISTRY_ID)
    except AggregateNotFoundError:
        return TokenRegistry()


def create_token(
    app: FGDApplication,
    user: str,
    *,
    superuser: bool = False,
    permissions: Iterable[str] = (),
    fabrics: Iterable[int] = (),
    expires: datetime | str | None = None,
    correlation_id: str | None = None,
) -> tuple[str, Token]:
    """A new token for ``user``: (its key — shown once, recorded nowhere — and the token).
    A user keeps one ``user_id`` across all their tokens."""
    user = _check_user(user)
    if not isinstance(superuser, bool):
        raise ValidationError("superuser must be a boolean", details={"field": "superuser"})
    perms = normalize_permissions(permissions)
    fabric_ids = _check_fabrics(fabrics)
    expires_iso = _check_expires(expires)
    key = secrets.token_hex(KEY_BYTES)
    digest = hash_key(key)
    cid = correlation_id or str(uuid4())

    def create() -> Token:
        registry = _token_registry(app)
        user_id = registry.user_id_for(user)
        token = Token(
            key_hash=digest,
            correlation_id=cid,
            user=user,
            user_id=user_id,
            superuser=superuser,
            permissions=perms,
            fabrics=fabric_ids,
            expires=expires_iso,
        )
        registry.add(token_id=token.token_id, user=user, user_id=user_id, correlation_id=cid)
        app.save(registry, token)
        return token

    return key, app._retry(create)


def _token_uuid(key_or_token_id: Any) -> UUID:
    key = _parse_key(key_or_token_id)
    if key is not None:
        return token_uuid(hash_key(key))
    try:
        return UUID(str(key_or_token_id).strip())
    except ValueError:
        raise NotFoundError("token not found", details={}) from None


def get_token(app: FGDApplication, key_or_token_id: Any) -> Token:
    """A token by its id or its key (NotFoundError, FGD_1003, if there is none)."""
    token_id = _token_uuid(key_or_token_id)
    try:
        token: Any = app.repository.get(token_id)
    except AggregateNotFoundError:
        token = None
    if not isinstance(token, Token):
        raise NotFoundError("token not found", details={"token_id": str(token_id)})
    return token


def revoke_token(
    app: FGDApplication,
    key_or_token_id: Any,
    *,
    reason: str = "",
    correlation_id: str | None = None,
) -> Token:
    """Revoke a token (by key or id); revoking a revoked token changes nothing."""

    def revoke() -> Token:
        token = get_token(app, key_or_token_id)
        token.revoke(reason=str(reason)[:500], correlation_id=correlation_id)
        app.save(token)
        return token

    token = app._retry(revoke)
    principal_cache(app).discard(token.key_hash)  # effective at once in this process
    return token


def list_tokens(app: FGDApplication) -> list[Token]:
    """Every token ever created (revoked ones too), oldest first."""
    return [get_token(app, token_id) for token_id in _token_registry(app).token_ids]
