"""The spec's error codes, an exception hierarchy that carries them, and the error body.

Every error FGD Sync reports to a caller — over HTTP, on the bus, or from the CLI — is an
``FGDError``: a code from ``FGDErrorCodes``, a human message and a ``details`` dict. The
spec's "Standard Error Response" is ``FGDError.to_body()``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4


class FGDErrorCodes:
    """The spec's error codes, exactly as listed."""

    # Validation Errors (1xxx)
    INVALID_YAML = "FGD_1001"
    UNSUPPORTED_RESOURCE = "FGD_1002"
    VALIDATION_FAILED = "FGD_1003"
    SCHEMA_MISMATCH = "FGD_1004"

    # Directory Errors (2xxx)
    DIRECTORY_NOT_FOUND = "FGD_2001"
    DIRECTORY_PERMISSION_DENIED = "FGD_2002"
    DIRECTORY_INITIALIZATION_FAILED = "FGD_2003"
    DIRECTORY_REPAIR_FAILED = "FGD_2004"

    # Sync Errors (3xxx)
    SYNC_ALREADY_IN_PROGRESS = "FGD_3001"
    SYNC_TIMEOUT = "FGD_3002"
    SYNC_CANCELLED = "FGD_3003"
    SYNC_FAILED = "FGD_3004"

    # GitHub Errors (4xxx)
    GITHUB_CONNECTION_FAILED = "FGD_4001"
    GITHUB_AUTHENTICATION_FAILED = "FGD_4002"
    GITHUB_RATE_LIMITED = "FGD_4003"
    GITHUB_NOT_FOUND = "FGD_4004"

    # System Errors (5xxx)
    INTERNAL_ERROR = "FGD_5001"
    DATABASE_ERROR = "FGD_5002"
    REDIS_CONNECTION_FAILED = "FGD_5003"
    WORKER_POOL_EXHAUSTED = "FGD_5004"

    @classmethod
    def all(cls) -> dict[str, str]:
        """Name → code for every code (used by schemas and docs)."""
        return {k: v for k, v in vars(cls).items() if k.isupper()}


class FGDError(Exception):
    """Base class: an error with a spec code, a message and JSON-safe details."""

    code: str = FGDErrorCodes.INTERNAL_ERROR

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_body(self, correlation_id: str | None = None) -> dict[str, Any]:
        """The spec's "Standard Error Response"."""
        return error_body(self.code, self.message, self.details, correlation_id)


def error_body(
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": dict(details or {}),
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "correlation_id": correlation_id or str(uuid4()),
        }
    }


# Validation (1xxx)
class ValidationError(FGDError):
    code = FGDErrorCodes.VALIDATION_FAILED


class InvalidYAMLError(ValidationError):
    code = FGDErrorCodes.INVALID_YAML


class UnsupportedResourceError(ValidationError):
    code = FGDErrorCodes.UNSUPPORTED_RESOURCE


class SchemaMismatchError(ValidationError):
    code = FGDErrorCodes.SCHEMA_MISMATCH


class DuplicateError(ValidationError):
    """The request names something that already exists (a fabric name or id): HTTP 409."""

    http_status = 409


# Directory (2xxx)
class DirectoryError(FGDError):
    code = FGDErrorCodes.DIRECTORY_NOT_FOUND


class DirectoryNotFoundError(DirectoryError):
    code = FGDErrorCodes.DIRECTORY_NOT_FOUND


class DirectoryPermissionError(DirectoryError):
    code = FGDErrorCodes.DIRECTORY_PERMISSION_DENIED


class DirectoryInitializationError(DirectoryError):
    code = FGDErrorCodes.DIRECTORY_INITIALIZATION_FAILED


class DirectoryRepairError(DirectoryError):
    code = FGDErrorCodes.DIRECTORY_REPAIR_FAILED


# Sync (3xxx)
class SyncError(FGDError):
    code = FGDErrorCodes.SYNC_FAILED


class SyncAlreadyInProgressError(SyncError):
    code = FGDErrorCodes.SYNC_ALREADY_IN_PROGRESS


class SyncTimeoutError(SyncError):
    code = FGDErrorCodes.SYNC_TIMEOUT


class SyncCancelledError(SyncError):
    code = FGDErrorCodes.SYNC_CANCELLED


class SyncFailedError(SyncError):
    code = FGDErrorCodes.SYNC_FAILED


class SyncsDisabledError(SyncError):
    """``fgd.enabled: false`` (``HEDGEHOG_FGD_ENABLED``): this installation starts no sync.
    The service is switched off, not the request wrong: 503 over HTTP (docs/decisions.md)."""

    code = FGDErrorCodes.SYNC_FAILED
    http_status = 503


class FabricSuspendedError(SyncError):
    """A sync of a suspended fabric (``sync_enabled`` false): nothing is started, whatever
    the trigger (docs/decisions.md, "Fabric lifecycle"). HTTP 409."""

    http_status = 409


class IllegalTransitionError(SyncError):
    """A command that the aggregate's current state does not allow (never recorded)."""

    code = FGDErrorCodes.SYNC_FAILED


class NotFoundError(FGDError):
    """An unknown fabric or sync. The spec has no code for it: the request names something
    that does not exist, so it is a failed validation of the request (FGD_1003); the HTTP
    layer answers 404 (docs/decisions.md)."""

    code = FGDErrorCodes.VALIDATION_FAILED


# GitHub (4xxx)
class GitHubError(FGDError):
    code = FGDErrorCodes.GITHUB_CONNECTION_FAILED


class GitHubConnectionError(GitHubError):
    code = FGDErrorCodes.GITHUB_CONNECTION_FAILED


class GitHubAuthenticationError(GitHubError):
    code = FGDErrorCodes.GITHUB_AUTHENTICATION_FAILED


class GitHubRateLimitError(GitHubError):
    code = FGDErrorCodes.GITHUB_RATE_LIMITED


class GitHubNotFoundError(GitHubError):
    code = FGDErrorCodes.GITHUB_NOT_FOUND


# System (5xxx)
class InternalError(FGDError):
    code = FGDErrorCodes.INTERNAL_ERROR


class DatabaseError(FGDError):
    code = FGDErrorCodes.DATABASE_ERROR


class BrokerConnectionError(FGDError):
    # The spec names it after Redis; we use RabbitMQ (docs/decisions.md) and keep the code.
    code = FGDErrorCodes.REDIS_CONNECTION_FAILED


class WorkerPoolExhaustedError(FGDError):
    code = FGDErrorCodes.WORKER_POOL_EXHAUSTED


class ConfigurationError(ValidationError):
    """A bad fgd_config.yaml or HEDGEHOG_FGD_* variable; details name the key."""

    code = FGDErrorCodes.VALIDATION_FAILED


def is_store_outage(exc: BaseException) -> bool:
    """True if ``exc`` says the event store could not be reached (connection refused or lost,
    no pooled connection in time) — not that the request was wrong. A consumer waits for the
    store then, instead of counting the failure against the message."""
    from eventsourcing.persistence import InterfaceError, OperationalError

    return isinstance(exc, DatabaseError | InterfaceError | OperationalError)
