"""Ports: what the application needs from the adapters and from the process around it, as
``typing.Protocol`` classes. Signatures between layers name these instead of ``Any``; the
adapters (``GitRemote``, ``BlobStore``, kombu producers …) satisfy them structurally, so a
test may pass any object with the same methods.

Kept to the methods callers use: a port grows when a caller needs more, not before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fgd_core.adapters.git_repo import Snapshot
    from fgd_core.domain.fabric import Fabric


@runtime_checkable
class GitRemotePort(Protocol):
    """A fabric's git repository: fetch a branch, learn its head, push compare-and-swap."""

    @property
    def is_local(self) -> bool: ...

    def fetch(self, branch: str) -> Snapshot: ...

    def remote_head(self, branch: str) -> str | None: ...

    def push(self, sha: str, branch: str, expected_old_sha: str | None) -> None: ...

    def close(self) -> None: ...


# A fabric → its git remote (token, timeouts and cache already decided by the factory).
GitRemoteFactory = Callable[["Fabric"], GitRemotePort]


class BlobStorePort(Protocol):
    """Content-addressed file contents kept beside the event store."""

    def put(self, contents: Iterable[bytes]) -> list[str]: ...

    def put_many(self, blobs: Mapping[str, bytes]) -> None: ...

    def get_many(self, blob_ids: Iterable[str]) -> dict[str, bytes]: ...


class SyncDriverPort(Protocol):
    """Carries one recorded sync to its end in this process (the in-process driver)."""

    def execute(self, sync_id: str, only_paths: list[str] | None = None) -> Any: ...


class SyncExecutor(Protocol):
    """Where a sync the API or an intake recorded goes next: a thread of this process
    (embedded) or nowhere in-process, because the bus workers pick ``sync.started`` up."""

    @property
    def active(self) -> int: ...

    def submit(self, sync_id: str, only_paths: list[str] | None = None) -> Future[Any] | None:
        ...

    def wait(self, sync_id: str, timeout: float | None = None) -> Any: ...

    def shutdown(self, wait: bool = True) -> None: ...


class EventPublisher(Protocol):
    """Publishes a message on the bus (a kombu ``Producer`` satisfies it)."""

    def publish(self, body: Any, **options: Any) -> Any: ...


# Opens a fresh broker connection each call (the bus adapter's connection factory).
BrokerConnectionFactory = Callable[[], Any]
