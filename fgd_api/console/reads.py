"""The pages' reads from the projections, on the event loop with PostgreSQL (the read
model's ``afetchall``: no worker-thread hop per query), in one worker thread with SQLite.
The SQL and the row shapes are the read model's own (``projections.queries``)."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread

from fgd_api.projections import queries
from fgd_api.projections.dialects import as_uuid
from fgd_api.projections.tables import FABRIC, SYNC
from fgd_core.errors import NotFoundError

FABRIC_SQL = "SELECT * FROM {fabric} WHERE id = ?"
# The sync's row and its fabric's name (all a sync page shows of the fabric), in one read.
SYNC_SQL = (
    "SELECT s.*, f.name AS fabric_name FROM {sync} AS s"
    " LEFT JOIN {fabric} AS f ON f.id = s.fabric_id WHERE s.sync_id = ?"
)
FABRICS_SQL = "SELECT * FROM {fabric} ORDER BY id"

Fetch = Callable[..., Awaitable[list[Any]]]


def _fetcher(read_model: Any) -> Fetch:
    view = read_model.view
    if getattr(read_model, "is_postgres", False):
        return view.afetchall  # type: ignore[no-any-return]

    async def in_thread(template: str, *params: Any) -> list[Any]:
        return await anyio.to_thread.run_sync(view.fetchall, template, *params)

    return in_thread


async def fabric(read_model: Any, fabric_id: int) -> dict[str, Any]:
    """``queries.fabric`` (NotFoundError for an unknown fabric)."""
    rows = await _fetcher(read_model)(FABRIC_SQL, fabric_id)
    if not rows:
        raise NotFoundError(f"fabric {fabric_id} not found", details={"fabric_id": fabric_id})
    return queries.fabric_view(read_model.view.row(FABRIC, rows[0]))


# The fabric table's version: every write to a row sets its ``last_position`` (the
# notification applied), and fabrics are never deleted — so (highest position, count)
# changes whenever any row does.
FABRICS_VERSION_SQL = "SELECT MAX(last_position) AS v, COUNT(*) AS n FROM {fabric}"
# read model view → (version, fabrics): the list page reads one row, not every fabric,
# while nothing changed.
_fabrics_cache: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, Any], list[dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


async def fabrics(read_model: Any) -> list[dict[str, Any]]:
    """``queries.fabrics``."""
    fetch, view = _fetcher(read_model), read_model.view
    found = (await fetch(FABRICS_VERSION_SQL))[0]
    version = (found["v"], found["n"])
    cached = _fabrics_cache.get(view)
    if cached is not None and cached[0] == version:
        return cached[1]
    listing = [queries.fabric_view(view.row(FABRIC, r)) for r in await fetch(FABRICS_SQL)]
    _fabrics_cache[view] = (version, listing)
    return listing


async def sync_page(read_model: Any, sync_id: str) -> dict[str, Any]:
    """A sync's status (the API's shape), stage summaries, files, state transitions and
    fabric (id and name): three statements."""
    fetch, view = _fetcher(read_model), read_model.view
    uuid = as_uuid(sync_id)
    rows = await fetch(SYNC_SQL, uuid) if uuid else []
    if not rows:
        raise NotFoundError(f"sync {sync_id} not found", details={"sync_id": str(sync_id)})
    row = view.row(SYNC, rows[0])
    files = await fetch(queries.FILES_SQL, uuid)
    transitions = await fetch(queries.TRANSITIONS_SQL, uuid)
    return {
        "status": queries.status_view(row),
        "summaries": row["stages_data"]["summaries"],
        "files": [queries.file_record_view(view, r) for r in files],
        "transitions": [queries.transition_view(view, r, True) for r in transitions],
        "fabric": {"id": row["fabric_id"], "name": rows[0]["fabric_name"]},
    }


async def audit_log(
    read_model: Any, fabric_id: int | None, user: str | None, limit: int, offset: int
) -> dict[str, Any]:
    """``queries.audit_log``: ``{count, results}``."""
    fetch, view = _fetcher(read_model), read_model.view
    count_sql, page_sql, params = queries.audit_sql(fabric_id, user)
    count = (await fetch(count_sql, *params))[0]["n"]
    rows = await fetch(page_sql, *params, limit, offset)
    return {"count": int(count), "results": [queries.audit_view(view, r) for r in rows]}
