"""Group commit for one process's threads: the files several threads planned for the same
sync are recorded in ONE save instead of one save each.

An ingestion worker process runs ``ingestion.worker_pool_size`` consumers (threads). Planning
a file is CPU-bound, so the threads take turns anyway; what they used to do at the end —
each load the sync, add its files, save — made them race for the same aggregate version,
and every lost race re-loaded the sync (its events since, decoded) and tried again. Here the
first thread to reach a sync's save takes every file queued for it by then and records them
together; the others wait for that save's outcome, which is theirs too (the same result or
the same exception, so a message is acked only when its file is recorded)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_KEYS = 64  # syncs whose lock is kept; beyond that the map is cleared (locks are cheap)


class GroupSave(Generic[T]):
    """``save(key, items, record)``: ``record(all items queued for key)`` runs once per group,
    in the thread that got there first; every caller returns (or raises) with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[str, list[tuple[list[T], Future[None]]]] = {}
        self._key_locks: dict[str, threading.Lock] = {}

    def save(self, key: str, items: list[T], record: Callable[[list[T]], None]) -> None:
        mine: Future[None] = Future()
        with self._lock:
            self._queued.setdefault(key, []).append((items, mine))
            if len(self._key_locks) > MAX_KEYS and key not in self._key_locks:
                self._key_locks.clear()
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                group = self._queued.pop(key, [])
            if group:  # empty: an earlier holder of the lock recorded ours with its own
                try:
                    record([item for queued, _ in group for item in queued])
                except BaseException as exc:
                    for _, future in group:
                        future.set_exception(exc)
                else:
                    for _, future in group:
                        future.set_result(None)
        mine.result()


__all__ = ["GroupSave"]
