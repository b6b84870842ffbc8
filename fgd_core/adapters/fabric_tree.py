"""The fabric index of a snapshot's ``managed/`` tree, kept up to date by comparing trees.

A sync needs the index of the managed fabric (10,000 objects or more) to check what it
ingests. Building it from scratch every sync would cost more than ingesting one file, so
one index per repository and managed prefix is kept in the process and moved to each new
snapshot: a kind directory whose git tree id is unchanged is skipped outright; in a changed
one, only files whose blob id changed are re-read (their facts are cached by blob id too).
Git's content addressing makes this exact — there is nothing to invalidate. The index is
lent out under a lock; ``fabric_verdict`` gives it back as it was, except for the objects
the sync is about to write.
"""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fgd_core.adapters import fabric_tree_store
from fgd_core.adapters.git_repo import Snapshot
from fgd_core.ingestion.hedgehog.fabric_check import DIRECTORY_KINDS, facts_for_blob
from fgd_core.ingestion.hedgehog.fabric_index import FabricIndex, FabricObject

_YAML = (b".yaml", b".yml")
_UNKNOWN_TREE = b"unknown"  # never a tree id


def _restore(tree_index: ManagedTreeIndex, saved: dict[str, Any], prefix: str) -> None:
    """Fill an empty index from what ``fabric_tree_store`` saved (shapes checked)."""
    for directory, item in saved.items():
        kind = DIRECTORY_KINDS.get(directory)
        if kind is None or not isinstance(item, list) or len(item) != 2:
            continue
        tree_hex, files = item
        if not isinstance(files, dict):
            continue
        entries: dict[bytes, tuple[bytes, FabricObject | None]] = {}
        for name, entry in files.items():
            if not isinstance(entry, list) or not entry or not isinstance(entry[0], str):
                continue
            obj = None
            if len(entry) == 5 and entry[1] == kind and isinstance(entry[4], dict):
                obj = FabricObject(kind, str(entry[2]), str(entry[3]), entry[4],
                                   f"{prefix.rstrip('/')}/{directory}/{name}", 0, 1)
                tree_index.index.add(obj)
            entries[name.encode()] = (entry[0].encode(), obj)
        tree_id = tree_hex.encode() if isinstance(tree_hex, str) else _UNKNOWN_TREE
        tree_index.dirs[directory] = (tree_id, entries)


class ManagedTreeIndex:
    def __init__(self) -> None:
        # Objects a fresh process would have to read from managed/ with the saved copy it
        # would find: saving is worth it only once there are enough of them.
        self.unsaved = 0
        self.index = FabricIndex()
        # kind directory → (its tree id, file name → (blob id, object or None))
        self.dirs: dict[str, tuple[bytes | None, dict[bytes, tuple[bytes, FabricObject | None]]]]
        self.dirs = {}
        self.lock = threading.Lock()
        self.index.landing = self._landing

    def _landing(self, obj: FabricObject) -> None:
        """A sync will write ``obj`` (at ``obj.landing_at``): it stays indexed. If the
        commit never lands, the next ``move_to`` sees another blob (or none) there and
        corrects the index."""
        if obj.landing_at is None:
            return
        path, blob_id = obj.landing_at
        parent, _, name = path.rpartition("/")
        directory = parent.rpartition("/")[2]
        if directory not in self.dirs:
            self.index.remove(obj)
            return
        entries = self.dirs[directory][1]
        old = entries.get(name.encode())
        if old is not None and old[1] is not None and old[1] is not obj:
            self.index.remove(old[1])
        entries[name.encode()] = (blob_id.encode(), obj)
        # The directory's tree is no longer known: the next move_to compares its entries
        # (cheap: unchanged blobs are kept) instead of trusting an unchanged tree id.
        self.dirs[directory] = (_UNKNOWN_TREE, entries)
        self.unsaved += 1
        if self.index.objects.get(obj.key) is not obj:
            self.index.add(obj)

    def move_to(self, snapshot: Snapshot, managed_prefix: str) -> None:
        managed = snapshot.subtree_items(managed_prefix)
        subtrees: dict[str, bytes] = {}
        for raw_name, (mode, sha) in (managed or {}).items():
            name = raw_name.decode("utf-8", "replace")
            if name in DIRECTORY_KINDS and stat.S_ISDIR(mode):
                subtrees[name] = sha
        for directory in DIRECTORY_KINDS:
            self._move_dir(snapshot, managed_prefix, directory, subtrees.get(directory))

    def _move_dir(self, snapshot: Snapshot, prefix: str, directory: str,
                  tree_id: bytes | None) -> None:
        known_id, known = self.dirs.get(directory, (None, {}))
        if known_id == tree_id and directory in self.dirs:
            return
        current: dict[bytes, bytes] = {}
        if tree_id is not None:
            items = snapshot.subtree_items(tree_id)  # a tree id from a tree
            assert items is not None
            current = {
                name: sha
                for name, (mode, sha) in items.items()
                if stat.S_ISREG(mode) and name.endswith(_YAML)
            }
        entries = dict(known)
        for name, (blob, obj) in known.items():
            if current.get(name) != blob:
                del entries[name]
                if obj is not None:
                    self.index.remove(obj)
        base = f"{prefix.rstrip('/')}/{directory}/"
        for name, blob in current.items():
            if name in entries:
                continue
            path = base + name.decode("utf-8", "replace")
            hit = facts_for_blob(blob.decode(), snapshot.read_blob)
            obj = None
            if hit is not None and hit[0] == DIRECTORY_KINDS[directory]:
                kind, obj_name, namespace, facts = hit
                obj = FabricObject(kind, obj_name, namespace, facts, path, 0, 1)
                self.index.add(obj)
            entries[name] = (blob, obj)
            self.unsaved += 1
        self.dirs[directory] = (tree_id, entries)


_TREES: dict[str, ManagedTreeIndex] = {}
SAVE_AFTER = 200  # objects not in the saved copy (or 2 % of the index, if more)
_MAX_TREES = 16
_TREES_LOCK = threading.Lock()


@contextmanager
def managed_index(snapshot: Snapshot, managed_prefix: str,
                  keep_in: Path | None = None) -> Iterator[FabricIndex]:
    """The index of the snapshot's managed/ tree, for the duration of the ``with``;
    ``keep_in``: a directory of the fabric's own where it is kept between processes."""
    # One index per repository (its object store's path: the fabric's local repository or
    # cache) and prefix, so that fabrics synced by one process do not evict each other.
    key = f"{snapshot.store_key}\0{managed_prefix}"
    with _TREES_LOCK:
        if key not in _TREES and len(_TREES) >= _MAX_TREES:
            _TREES.pop(next(iter(_TREES)))  # the oldest
        tree_index = _TREES.get(key)
        if tree_index is None:
            tree_index = _TREES[key] = ManagedTreeIndex()
            saved = fabric_tree_store.load(keep_in, managed_prefix) if keep_in else None
            if saved is not None:
                _restore(tree_index, saved, managed_prefix)
    with tree_index.lock:
        try:
            tree_index.move_to(snapshot, managed_prefix)
            yield tree_index.index
        except BaseException:
            # Whatever went wrong, the index may no longer match any tree: start afresh.
            _TREES[key] = ManagedTreeIndex()
            raise
        if keep_in is not None and tree_index.unsaved >= max(
            SAVE_AFTER, len(tree_index.index) // 50
        ):
            # An older copy is still good: a fresh process compares every tree id and reads
            # only what changed since, so small changes are not worth a rewrite each.
            try:
                fabric_tree_store.save(tree_index, keep_in, managed_prefix)
                tree_index.unsaved = 0
            except OSError:
                pass  # only a cache: the next fresh process reads managed/ instead
