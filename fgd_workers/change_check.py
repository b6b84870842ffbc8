"""The change check before a scheduled (or webhook follow-up) sync: is there anything to do?

A sync that finds nothing new still records 16 events; across a fleet on a 5-minute
interval that is millions of "nothing changed" a day. So the scheduler first asks the
remote, and starts a sync only when one is owed:

* **the branch head** is asked with an ls-remote (``GitRemote.remote_head``: one round trip
  over HTTP — the ref advertisement, nothing fetched; one ref read for a local repository).
  Equal to the head the fabric's last completed sync left behind → nothing changed.
* **the raw/ tree id** is looked at only when the head moved (someone committed outside
  ``raw/``, or FGD's own push was followed by another commit): one fetch of the new head into
  the fabric's local object cache (incremental: the cache negotiates from what it has; a
  local repository is read in place), then the ``<gitops>/raw`` tree id of both commits.
  Equal → nothing for a sync to take. The verdict for that head is remembered, so later
  checks of the same head cost the ls-remote only.
* **owed regardless of the remote**: a fabric that never completed a sync, whose last sync
  ended other than ``completed`` (failed, timed out, cancelled — it may have been transient),
  whose last sync did not push (``validate_only`` / ``include_github_sync: false``) or ran
  on another branch, or whose last sync has a file that failed only with FGD_5001 (an
  internal, transient error: the next sync does not skip it, so it is owed a retry). A file
  that failed for a reason inside the file and is unchanged is not owed anything: the next
  sync would skip it with a warning.
* **a check that cannot tell** (remote unreachable, refused, baseline commit not in the
  cache after a force-push) starts the sync, so the reason is recorded on a sync as before.

Checks of one tick run concurrently (``CHECK_CONCURRENCY`` threads): a check against a real
git host is a network round trip (50-150 ms to GitHub), so one after another a scheduler
would fall behind at a few thousand remote fabrics; ``docs/scaling.md`` has the figures.

A no-op check writes nothing to the event log. Its trace is in memory and in metrics:
``fgd_fabric_last_checked_timestamp_seconds{fabric_id}`` and
``fgd_change_checks_total{result}`` (``unchanged`` | ``changed`` | ``owed`` | ``unknown``).
Manual triggers (REST, bus, CLI) never pass through here: they always sync, with or without
``force_refresh``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from fgd_core.adapters.git_repo import GitRemote
from fgd_core.application.app import FGDApplication
from fgd_core.application.ports import GitRemoteFactory, GitRemotePort
from fgd_core.config import runtime_settings
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.sync_operation import COMPLETED
from fgd_core.errors import FGDError, InternalError

log = logging.getLogger("fgd_workers.change_check")

RemoteFactory = GitRemoteFactory  # the port: a fabric → its remote (remote_head, fetch)
# Remotes kept open at once: a local remote holds its pack files open, and a fleet of
# thousands of fabrics must not run the scheduler out of file descriptors.
OPEN_REMOTES = 128
# Checks in flight at once (I/O bound: waiting for the git host, not CPU).
CHECK_CONCURRENCY = 8

fgd_change_checks_total = Counter(
    "fgd_change_checks_total",
    "Change checks before a scheduled or follow-up sync, by result",
    ["result"],
)
fgd_change_check_seconds = Histogram(
    "fgd_change_check_seconds", "Duration of one change check",
    buckets=[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
)
fgd_fabric_last_checked = Gauge(
    "fgd_fabric_last_checked_timestamp_seconds",
    "When the scheduler last checked the fabric's remote for changes (Unix time)",
    ["fabric_id"],
)


@dataclass(frozen=True)
class Verdict:
    """``changed``: start the sync. ``result`` is the metric label, ``reason`` the why."""

    changed: bool
    result: str
    reason: str
    head: str | None = None


@dataclass(frozen=True)
class _Baseline:
    head: str | None  # the branch head the sync left behind
    branch: str | None
    owed: str | None  # why a sync is owed whatever the remote says (None: nothing)


def default_remote_factory(fabric: Fabric) -> GitRemote:
    """An in-memory cache per fabric and the default timeouts (library and embedded use);
    the token is HEDGEHOG_FGD_GITHUB_TOKEN (Settings.runtime.github_token)."""
    token = runtime_settings().github_token
    return GitRemote(fabric.repository, token=token.get_secret_value() if token else None)


class ChangeCheck:
    """``verdict(fabric)``: is a sync owed? ``verdicts(fabrics)``: the same for many fabrics,
    checked concurrently (one fabric is never checked by two threads at once)."""

    def __init__(self, app: FGDApplication,
                 remote_factory: RemoteFactory = default_remote_factory) -> None:
        self.app = app
        self.remote_factory = remote_factory
        self._remotes: OrderedDict[int, tuple[str, GitRemotePort]] = OrderedDict()
        # A completed sync never changes: its baseline is read once.
        self._baselines: dict[str, _Baseline] = {}
        # fabric id → (last sync id, head) whose raw/ tree was found unchanged.
        self._same_raw: dict[int, tuple[str, str]] = {}
        self.last_checked: dict[int, float] = {}  # fabric id → Unix time of its last check
        self._lock = threading.Lock()  # the remotes' LRU
        self._in_use: set[int] = set()  # fabrics being checked: their remotes stay open

    def verdicts(self, fabrics: Iterable[Fabric]) -> dict[int, Verdict]:
        todo = list({f.fabric_id: f for f in fabrics}.values())
        if len(todo) <= 1:
            return {f.fabric_id: self.verdict(f) for f in todo}
        with ThreadPoolExecutor(max_workers=min(CHECK_CONCURRENCY, len(todo)),
                                thread_name_prefix="change-check") as pool:
            return dict(zip([f.fabric_id for f in todo], pool.map(self.verdict, todo),
                            strict=True))

    def verdict(self, fabric: Fabric) -> Verdict:
        started = time.monotonic()
        with self._lock:
            self._in_use.add(fabric.fabric_id)
        try:
            verdict = self._verdict(fabric)
        except Exception:  # noqa: BLE001 — a check must never stop the tick: sync instead
            log.exception("change check of fabric %s failed", fabric.fabric_id)
            verdict = Verdict(True, "unknown", "the check failed")
        finally:
            with self._lock:
                self._in_use.discard(fabric.fabric_id)
        fgd_change_check_seconds.observe(time.monotonic() - started)
        fgd_change_checks_total.labels(verdict.result).inc()
        now = time.time()
        self.last_checked[fabric.fabric_id] = now
        fgd_fabric_last_checked.labels(str(fabric.fabric_id)).set(now)
        return verdict

    def forget(self, fabrics: list[Fabric]) -> None:
        """Drop what is held for fabrics no longer registered, and old syncs' baselines."""
        keep = {f.fabric_id for f in fabrics}
        for fabric_id in [f for f in self.last_checked if f not in keep]:
            self.last_checked.pop(fabric_id, None)
            self._same_raw.pop(fabric_id, None)
            entry = self._remotes.pop(fabric_id, None)
            if entry is not None:
                entry[1].close()
            fgd_fabric_last_checked.remove(str(fabric_id))
        if len(self._baselines) > 2 * len(fabrics) + 64:
            live = {f.last_sync_id for f in fabrics}
            self._baselines = {k: v for k, v in self._baselines.items() if k in live}

    # -- the decision -----------------------------------------------------------------------

    def _verdict(self, fabric: Fabric) -> Verdict:
        if fabric.last_sync_id is None:
            return Verdict(True, "owed", "never synced")
        base = self._baseline(fabric.last_sync_id)
        if base.owed is not None:
            return Verdict(True, "owed", base.owed)
        if base.branch is not None and base.branch != fabric.branch:
            return Verdict(True, "owed", "the last sync ran on another branch")
        remote = self._remote(fabric)
        try:
            head = remote.remote_head(fabric.branch)
        except FGDError as exc:
            return Verdict(True, "unknown", f"ls-remote failed: {exc.code}")
        if head == base.head:
            return Verdict(False, "unchanged", "head unchanged", head)
        if head is None:
            return Verdict(True, "changed", "branch deleted")
        if self._same_raw.get(fabric.fabric_id) == (fabric.last_sync_id, head):
            return Verdict(False, "unchanged", "raw/ unchanged at this head", head)
        try:
            snapshot = remote.fetch(fabric.branch)
        except FGDError as exc:
            return Verdict(True, "unknown", f"fetch failed: {exc.code}", head)
        raw_dir = f"{fabric.gitops_directory.strip('/')}/raw"
        then = snapshot.at(base.head) if base.head else None
        if then is None:
            return Verdict(True, "unknown", "the last sync's commit is not in the cache", head)
        if snapshot.subtree_id(raw_dir) != then.subtree_id(raw_dir):
            return Verdict(True, "changed", "raw/ changed", head)
        self._same_raw[fabric.fabric_id] = (fabric.last_sync_id, head)
        return Verdict(False, "unchanged", "head moved, raw/ unchanged", head)

    def _baseline(self, sync_id: str) -> _Baseline:
        known = self._baselines.get(sync_id)
        if known is not None:
            return known
        sync = self.app.get_sync(sync_id)
        summaries = sync.stage_summaries
        pushed = summaries.get("github_sync") or {}
        validation = summaries.get("validation") or {}
        head = pushed.get("commit") if pushed.get("pushed") else validation.get("head")
        owed: str | None = None
        if sync.state != COMPLETED:
            owed = f"the last sync ended {sync.state}"
        elif sync.options.get("validate_only") or not sync.options.get(
            "include_github_sync", True
        ):
            owed = "the last sync did not push"
        elif _retry_owed(sync.files):
            owed = "a file is owed a retry (transient failure)"
        baseline = _Baseline(head=head, branch=validation.get("branch"), owed=owed)
        self._baselines[sync_id] = baseline
        return baseline

    def _remote(self, fabric: Fabric) -> GitRemotePort:
        with self._lock:
            entry = self._remotes.get(fabric.fabric_id)
            if entry is not None and entry[0] == fabric.repository:
                self._remotes.move_to_end(fabric.fabric_id)
                return entry[1]
            if entry is not None:  # the repository was changed: a new remote, a new verdict
                entry[1].close()
                self._same_raw.pop(fabric.fabric_id, None)
            remote = self.remote_factory(fabric)
            self._remotes[fabric.fabric_id] = (fabric.repository, remote)
            idle = [k for k in self._remotes if k not in self._in_use]
            for key in idle[: max(0, len(self._remotes) - OPEN_REMOTES)]:
                self._remotes.pop(key)[1].close()  # least recently used first
            return remote


def _retry_owed(files: dict[str, dict[str, Any]]) -> bool:
    """A file that failed only with internal (transient) errors: the next sync retries it
    rather than skipping it (see ``ingestion_summary``'s ``failed_files``)."""
    return any(
        rec["status"] == "failed" and rec["validation_errors"]
        and all(e.get("code") == InternalError.code for e in rec["validation_errors"])
        for rec in files.values()
    )


__all__ = ["ChangeCheck", "Verdict", "default_remote_factory", "fgd_change_checks_total",
           "fgd_fabric_last_checked"]
