"""A correlation id names one request: what makes a repeated one start nothing new.

The spec makes ``FGDSyncOperation.correlation_id`` unique. A sync's aggregate id is derived
from its correlation id (``sync_uuid``), so a second ``sync.started`` with the same
correlation id would be version 1 of the same aggregate: the event store refuses it in the
same transaction that would have started it (no read, no extra event), whoever writes it —
the REST API, a bus command, a webhook, the scheduler. The caller then loads the sync the id
already names and answers with it, or refuses when it was another request
(``check_same_request``). So a duplicate never reaches the read model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from fgd_core.domain.base import ID_NAMESPACE
from fgd_core.errors import DuplicateError

SYNC_NAMESPACE = uuid5(ID_NAMESPACE, "sync-correlation")
SHOWN = 200  # characters of a client's correlation id an error echoes


@lru_cache(maxsize=4096)  # asked several times per start (a uuid5 is a SHA-1 each time)
def sync_uuid(correlation_id: str) -> UUID:
    """The aggregate id of the sync started by the request ``correlation_id`` names."""
    return uuid5(SYNC_NAMESPACE, correlation_id)


class CorrelationReusedError(DuplicateError):
    """The correlation id already names another request (a sync of another fabric, or with
    another trigger or other options): HTTP 409, FGD_1003."""


def check_same_request(
    earlier: Any, fabric_id: int, trigger: str, options: dict[str, Any]
) -> None:
    """``earlier`` (the sync a repeated correlation id names) was started by the same request:
    same fabric, trigger and (normalized) options — else ``CorrelationReusedError``. Which
    sync and fabric it names is not told: the caller may not be allowed to see them."""
    if (earlier.fabric_id, earlier.trigger, dict(earlier.options)) == (
        fabric_id, trigger, options
    ):
        return
    cid = str(earlier.correlation_id)
    raise CorrelationReusedError(
        f"correlation id {cid[:SHOWN]!r} already names another request (a sync of another "
        "fabric, or with another trigger or other options); a new request needs a new "
        "correlation id",
        details={"field": "correlation_id", "correlation_id": cid[:SHOWN]},
    )


def served_by(fabric: Any, correlation_id: str | None) -> str | None:
    """The id of ``fabric``'s sync (running or ended) that ``correlation_id`` names, if the
    fabric served that request — answered from the loaded fabric, without a read."""
    if not correlation_id:
        return None
    sync_id = str(sync_uuid(correlation_id))
    if sync_id == fabric.running_sync_id or sync_id in fabric.sync_ids:
        return sync_id
    return None
