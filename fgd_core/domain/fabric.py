"""The Fabric aggregate (the spec's "Extended Fabric Model") and the registry of fabric ids.

A fabric holds the lock that makes "one running sync per fabric" true: ``start_sync`` is
saved in the same transaction as the new SyncOperation, so two concurrent starts conflict on
the fabric's version and exactly one wins (the loser reloads and gets FGD_3001).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid5

from eventsourcing.domain import event

from fgd_core.domain.base import ID_NAMESPACE, FGDAggregate, fabric_uuid
from fgd_core.domain.directory_state import initialized_by
from fgd_core.domain.repository import (
    DIRECTORY_PATTERN,
    LocationError,
    branch_problem,
    directory_problem,
    parse_location,
    shown,
)
from fgd_core.errors import (
    DuplicateError,
    IllegalTransitionError,
    SyncAlreadyInProgressError,
    ValidationError,
)
from fgd_core.ingestion.input_guard import storable

DIRECTORY_STATUSES = ("not_initialized", "initializing", "valid", "invalid", "repairing")
SETTINGS: dict[str, type] = {
    "name": str,
    "repository": str,
    "branch": str,
    "gitops_directory": str,
    "sync_enabled": bool,
    "auto_sync_on_change": bool,
    "sync_interval_minutes": int,
}
__all__ = ["DIRECTORY_PATTERN", "Fabric", "FabricRegistry", "check_settings"]


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Type and range checks for fabric settings (FGD_1003 naming the field)."""
    for key, value in settings.items():
        expected = SETTINGS.get(key)
        if expected is None:
            raise ValidationError(f"unknown fabric setting {key!r}", details={"field": key})
        # bool is an int subclass: a True interval is a mistake, not 1 minute.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValidationError(
                f"fabric setting {key!r} must be {expected.__name__}", details={"field": key}
            )
    for key, value in settings.items():
        if isinstance(value, str) and not storable(value):
            raise ValidationError(
                f"fabric setting {key!r} holds characters that cannot be stored "
                "(NUL, control characters or invalid unicode)",
                details={"field": key},
            )
    if "name" in settings and not settings["name"].strip():
        raise ValidationError("fabric name must not be empty", details={"field": "name"})
    if "repository" in settings and not settings["repository"].strip():
        raise ValidationError("repository must not be empty", details={"field": "repository"})
    if settings.get("sync_interval_minutes", 1) < 1:
        raise ValidationError(
            "sync_interval_minutes must be >= 1", details={"field": "sync_interval_minutes"}
        )
    if "repository" in settings:
        try:
            parse_location(settings["repository"])
        except LocationError as exc:
            raise ValidationError(
                f"repository {exc}", details={"field": "repository", "problem": str(exc)}
            ) from None
    if "branch" in settings and (problem := branch_problem(settings["branch"])):
        raise ValidationError(
            f"branch {shown(settings['branch'])} {problem}",
            details={"field": "branch", "problem": problem},
        )
    directory = settings.get("gitops_directory")
    if directory is not None and (problem := directory_problem(directory)):
        raise ValidationError(
            f"gitops_directory {shown(directory)} {problem}",
            details={"field": "gitops_directory", "problem": problem},
        )
    return settings


class Fabric(FGDAggregate):
    @staticmethod
    def create_id(fabric_id: int, **_: Any) -> Any:
        return fabric_uuid(fabric_id)

    @event("Registered")
    def __init__(
        self,
        fabric_id: int,
        correlation_id: str,
        name: str,
        repository: str,
        branch: str,
        gitops_directory: str,
        sync_enabled: bool,
        auto_sync_on_change: bool,
        sync_interval_minutes: int,
    ) -> None:
        self.fabric_id = fabric_id
        self.correlation_id = correlation_id
        self.name = name
        self.repository = repository
        self.branch = branch
        self.gitops_directory = gitops_directory
        self.sync_enabled = sync_enabled
        self.auto_sync_on_change = auto_sync_on_change
        self.sync_interval_minutes = sync_interval_minutes
        self.gitops_initialized = False
        self.gitops_directory_status = "not_initialized"
        self.running_sync_id: str | None = None
        self.sync_ids: list[str] = []
        self.last_sync_id: str | None = None
        self.last_sync_at: datetime | None = None
        self.last_sync_status = ""
        self.total_sync_count = 0
        self.successful_sync_count = 0
        self.failed_sync_count = 0
        self.last_directory_report: dict[str, Any] = {}

    @property
    def is_deleted(self) -> bool:
        # ``__dict__``: a fabric restored from a snapshot taken before deletion existed
        # has no such attribute.
        return self.__dict__.get("deleted_at") is not None

    @property
    def raw_directory_path(self) -> str:
        return f"/{self.gitops_directory}/raw"

    @property
    def managed_directory_path(self) -> str:
        return f"/{self.gitops_directory}/managed"

    def update_settings(self, correlation_id: str, **changes: Any) -> None:
        check_settings(changes)
        changed = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if changed:
            self._updated(correlation_id=correlation_id, changes=changed)

    @event("Updated")
    def _updated(self, correlation_id: str, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def delete(self, correlation_id: str, cancelled_sync_id: str | None = None) -> None:
        """Retire the fabric: its events stay in the log, its repository is not touched.
        The caller ends a running sync first (``cancelled_sync_id`` names it)."""
        if self.is_deleted:
            raise IllegalTransitionError(
                f"fabric {self.fabric_id} is already deleted",
                details={"fabric_id": self.fabric_id},
            )
        self.check_idle()
        self._deleted(
            correlation_id=correlation_id, name=self.name, cancelled_sync_id=cancelled_sync_id
        )

    @event("Deleted")
    def _deleted(self, correlation_id: str, name: str, cancelled_sync_id: str | None) -> None:
        self.deleted_at = self.event_time
        self.cancelled_sync_id = cancelled_sync_id

    # -- the sync lock ----------------------------------------------------------------------

    def check_idle(self) -> None:
        """FGD_3001 naming the running sync, if there is one."""
        if self.running_sync_id is not None:
            raise SyncAlreadyInProgressError(
                f"fabric {self.fabric_id} is already syncing ({self.running_sync_id})",
                details={"fabric_id": self.fabric_id, "sync_id": self.running_sync_id},
            )

    def start_sync(self, sync_id: str, correlation_id: str) -> None:
        self.check_idle()
        self._sync_started(sync_id=sync_id, correlation_id=correlation_id)

    @event("SyncStarted")
    def _sync_started(self, sync_id: str, correlation_id: str) -> None:
        self.running_sync_id = sync_id
        self.sync_ids.append(sync_id)

    def finish_sync(self, sync_id: str, status: str, correlation_id: str) -> None:
        if self.running_sync_id != sync_id:
            raise IllegalTransitionError(
                f"sync {sync_id} is not the running sync of fabric {self.fabric_id}",
                details={"fabric_id": self.fabric_id, "running_sync_id": self.running_sync_id},
            )
        self._sync_finished(sync_id=sync_id, status=status, correlation_id=correlation_id)

    @event("SyncFinished")
    def _sync_finished(self, sync_id: str, status: str, correlation_id: str) -> None:
        self.running_sync_id = None
        self.last_sync_id = sync_id
        self.last_sync_at = self.event_time
        self.last_sync_status = status
        self.total_sync_count += 1
        if status == "completed":
            self.successful_sync_count += 1
        elif status in ("failed", "timed_out"):
            self.failed_sync_count += 1

    # -- GitOps directory -------------------------------------------------------------------

    @event("DirectoryValidated")
    def record_directory_validated(
        self,
        correlation_id: str,
        valid: bool,
        issues: list[dict[str, Any]],
        repairs_needed: list[str],
        directory_stats: dict[str, Any],
    ) -> None:
        self.gitops_directory_status = "valid" if valid else "invalid"
        self.gitops_initialized = initialized_by(issues)  # as the validation found it
        self.last_directory_report = {"valid": valid, "issues": issues}

    @event("DirectoryInitialized")
    def record_directory_initialized(
        self,
        correlation_id: str,
        directories_created: list[str],
        files_created: list[str],
        commit: str | None,
    ) -> None:
        self.gitops_initialized = True
        self.gitops_directory_status = "valid"

    @event("DirectoryRepaired")
    def record_directory_repaired(
        self,
        correlation_id: str,
        repairs_made: list[dict[str, Any]],
        remaining_issues: list[dict[str, Any]],
        commit: str | None,
    ) -> None:
        self.gitops_initialized = True
        errors = [i for i in remaining_issues if i.get("severity", "error") == "error"]
        self.gitops_directory_status = "invalid" if errors else "valid"


REGISTRY_ID = uuid5(ID_NAMESPACE, "fabric-registry")


Place = tuple[str, str, str]  # (repository identity, branch, gitops directory)


class FabricRegistry(FGDAggregate):
    """Allocates integer fabric ids and keeps names unique — and places: no two fabrics own
    the same repository + branch + GitOps directory. It is saved together with each new
    Fabric and each move of one, so concurrent registrations (or moves) conflict here rather
    than duplicating an id, a name or a place."""

    @staticmethod
    def create_id(*_: Any, **__: Any) -> Any:
        return REGISTRY_ID

    @event("Opened")
    def __init__(self, fabric_id: int = 0, correlation_id: str = "registry") -> None:
        self.fabric_id = 0
        self.correlation_id = correlation_id
        self.names: dict[str, int] = {}
        self.places: dict[int, Place] = {}  # fabric id → the place it claimed
        self.retired: list[int] = []  # ids of deleted fabrics: never given out again

    @property
    def retired_ids(self) -> list[int]:
        # ``__dict__``: a registry restored from an older snapshot has no such attribute.
        return list(self.__dict__.get("retired", []))

    @property
    def next_id(self) -> int:
        return max([*self.names.values(), *self.retired_ids], default=0) + 1

    def add(self, fabric_id: int, name: str, correlation_id: str) -> None:
        if name in self.names:
            raise DuplicateError(
                f"a fabric named {name!r} already exists (id {self.names[name]})",
                details={"field": "name", "fabric_id": self.names[name]},
            )
        if fabric_id in self.names.values():
            raise DuplicateError(
                f"fabric id {fabric_id} is taken", details={"field": "fabric_id"}
            )
        if fabric_id in self.retired_ids:
            # Its events (and its aggregate id) stay in the log: a new fabric gets a new id.
            raise DuplicateError(
                f"fabric id {fabric_id} belonged to a deleted fabric and is not reused",
                details={"field": "fabric_id"},
            )
        self._added(fabric_id=fabric_id, name=name, correlation_id=correlation_id)

    @event("Added")
    def _added(self, fabric_id: int, name: str, correlation_id: str) -> None:
        self.names[name] = fabric_id

    def rename(self, fabric_id: int, old: str, new: str, correlation_id: str) -> None:
        if new in self.names:
            raise DuplicateError(
                f"a fabric named {new!r} already exists", details={"field": "name"}
            )
        self._renamed(fabric_id=fabric_id, old=old, new=new, correlation_id=correlation_id)

    @event("Renamed")
    def _renamed(self, fabric_id: int, old: str, new: str, correlation_id: str) -> None:
        self.names.pop(old, None)
        self.names[new] = fabric_id

    def remove(self, fabric_id: int, name: str, correlation_id: str) -> None:
        """Forget a deleted fabric's name and place (both free for a new fabric); its id
        stays retired."""
        self._removed(fabric_id=fabric_id, name=name, correlation_id=correlation_id)

    @event("Removed")
    def _removed(self, fabric_id: int, name: str, correlation_id: str) -> None:
        if self.names.get(name) == fabric_id:
            del self.names[name]
        self.places.pop(fabric_id, None)
        self.retired = [*self.retired_ids, fabric_id]

    def owner_of(self, place: Place) -> int | None:
        return next((fid for fid, held in self.places.items() if held == place), None)

    def claim(self, fabric_id: int, place: Place, correlation_id: str) -> None:
        """``fabric_id`` owns ``place`` from now on (releasing the one it held); a
        ``DuplicateError`` naming the repository if another fabric owns it."""
        owner = self.owner_of(place)
        if owner is not None and owner != fabric_id:
            raise DuplicateError(
                f"fabric {owner} already syncs this repository, branch and gitops_directory",
                details={"field": "repository", "fabric_id": owner},
            )
        if owner != fabric_id:
            repository, branch, directory = place
            self._claimed(
                fabric_id=fabric_id,
                repository=repository,
                branch=branch,
                gitops_directory=directory,
                correlation_id=correlation_id,
            )

    @event("Claimed")
    def _claimed(
        self,
        fabric_id: int,
        repository: str,
        branch: str,
        gitops_directory: str,
        correlation_id: str,
    ) -> None:
        self.places[fabric_id] = (repository, branch, gitops_directory)
