"""The plan of a validate-only sync, as the sync saw it: what would be created, updated and
archived, with a diff of each changed managed file.

A validate-only sync stores its outcome per file, not the managed files it would write. The
planner is pure, so the plan is computed again from what the sync recorded: the commit it
fetched (the validation stage's ``head``) and the files it processed — the same inputs, the
same writes. Nothing is written; the answer is kept per sync (it cannot change).
"""

from __future__ import annotations

import difflib
import threading
from collections import OrderedDict
from typing import Any

from fgd_api.container import Container
from fgd_core.application.pipeline_common import LazyBlobs, rules_for
from fgd_core.ingestion.plan import RawFile, plan_sync

MAX_DIFF_LINES = 400  # per file: a page stays readable, the rest is summarized
CACHE_SIZE = 32

_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def _diff(path: str, old: bytes | None, new: bytes) -> tuple[list[str], int]:
    before = old.decode("utf-8", "replace").splitlines() if old is not None else []
    lines = list(
        difflib.unified_diff(
            before,
            new.decode("utf-8", "replace").splitlines(),
            fromfile=f"a/{path}" if old is not None else "/dev/null",
            tofile=f"b/{path}",
            lineterm="",
        )
    )
    return lines[:MAX_DIFF_LINES], max(0, len(lines) - MAX_DIFF_LINES)


def validate_only_plan(
    container: Container, status: dict[str, Any], summaries: dict[str, Any],
    files: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """``{created, updated, archived}`` (each write with its diff), ``{"unavailable": why}``
    when the fetched commit is gone, or None when this is not a finished validate-only sync."""
    if not status["options"].get("validate_only") or status["state"] != "completed":
        return None
    sync_id = status["sync_id"]
    with _lock:
        if sync_id in _cache:
            _cache.move_to_end(sync_id)
            return _cache[sync_id]
    head = (summaries.get("validation") or {}).get("head")
    if not head:
        return {"unavailable": "the branch had no commit when the sync ran"}
    fabric = container.app.get_fabric(status["fabric_id"])
    current = container.runner.remote_factory(fabric).fetch(fabric.branch)
    snapshot = current.at(head)
    if snapshot is None:
        return {"unavailable": f"commit {head[:10]} is no longer in the repository"}
    rules = rules_for(container.runner.config, fabric)
    raw: dict[str, RawFile] = {}
    for record in files:
        path = record["file_path"].lstrip("/")
        entry = snapshot.get(path)
        if record["status"] == "processed" and entry is not None:
            raw[path] = RawFile(snapshot.read(entry))
    existing = [e.path for e in snapshot.files(rules.raw_prefix)]
    managed = LazyBlobs(snapshot, rules.managed_prefix)
    plan = plan_sync(raw, managed, existing, {}, sync_id, rules)
    answer: dict[str, Any] = {"created": [], "updated": [], "archived": [], "unchanged": 0}
    for write in plan.writes:
        if write.action == "unchanged":
            answer["unchanged"] += 1
            continue
        old = managed.get(write.path) if write.action == "update" else None
        diff, cut = _diff(write.path, old, write.content)
        item = {"path": write.path, "kind": write.kind, "name": write.name, "diff": diff,
                "more_lines": cut}
        answer["created" if write.action == "create" else "updated"].append(item)
    answer["archived"] = [
        {"raw_path": a.raw_path, "archived_to": a.archived_path} for a in plan.archives
    ]
    with _lock:
        _cache[sync_id] = answer
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return answer
