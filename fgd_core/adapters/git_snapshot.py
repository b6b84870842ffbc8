"""Reading one fetched commit: ``Snapshot`` (files, blobs, subtrees, history) and ``FileEntry``.

A snapshot reads the object store it was fetched into (see ``git_repo.GitRemote.fetch``);
listing a tree never reads blobs (sizes are read on first use).
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from dulwich.object_store import (
    BaseObjectStore,
    tree_lookup_path,
)
from dulwich.objects import (
    Blob,
    Commit,
    ObjectID,
    Tree,
)

from fgd_core.adapters.git_objects import (
    MODE_EXECUTABLE,
    MODE_FILE,
    MODE_SUBMODULE,
    decode_path,
    descends_from,
    encode_path,
    to_object_id,
    tree_entry,
    tree_index,
)


class _LazySize:
    """``FileEntry.size`` as a data descriptor that may hold a zero-argument callable.

    Listing a tree must not inflate every blob just to learn sizes nobody asks for (a sync
    that adds one raw file to a repository of 10,000 managed files reads one blob, not
    10,001), so a listed entry computes its size on first use and keeps it. ``FileEntry``
    stays a plain frozen dataclass: ``FileEntry(path, blob_id, size, mode)`` with an int.
    """

    def __get__(self, obj: object, owner: type | None = None) -> int:
        if obj is None:
            raise AttributeError("size")  # no class-level default: size stays required
        size = obj.__dict__["_size"]
        if callable(size):
            size = obj.__dict__["_size"] = size()
        return int(size)

    def __set__(self, obj: object, value: int | Callable[[], int]) -> None:
        obj.__dict__["_size"] = value


@dataclass(frozen=True)
class FileEntry:
    path: str
    blob_id: str
    size: int = _LazySize()  # type: ignore[assignment]
    mode: int  # type: ignore[misc]  # (size has no real default: see _LazySize)

    # Equal entries have equal (path, blob_id, mode); hashing must not read the blob.
    def __hash__(self) -> int:
        return hash((self.path, self.blob_id, self.mode))

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_regular(self) -> bool:
        return self.mode in (MODE_FILE, MODE_EXECUTABLE)


@dataclass(frozen=True)
class Snapshot:
    """One fetched commit of one branch; ``head`` is None for a missing branch."""

    branch: str
    head: str | None
    tree_id: str | None
    _store: BaseObjectStore = field(repr=False, compare=False)

    def files(self, prefix: str = "") -> tuple[FileEntry, ...]:
        """Every file under ``prefix`` (a directory such as ``gitops/``), sorted by path.

        Symlinks are listed with mode 0o120000 (their blob is the link target); submodules
        with mode 0o160000 and size 0 (there is no blob to read). Listing reads trees only:
        an entry's ``size`` is read from its blob when first asked for.
        """
        if self.tree_id is None:
            return ()
        prefix = prefix.strip("/")
        root = to_object_id(self.tree_id)
        if prefix:
            try:
                mode, root = tree_lookup_path(self._store.__getitem__, root, encode_path(prefix))
            except KeyError:
                return ()
            if not stat.S_ISDIR(mode):
                return ()
        entries = []
        for entry in self._store.iter_tree_contents(root):
            path = decode_path(entry.path)
            full = f"{prefix}/{path}" if prefix else path
            entries.append(self._entry(full, entry.sha, entry.mode))
        return tuple(sorted(entries, key=lambda e: e.path))

    def is_dir(self, path: str) -> bool:
        """Does ``path`` name a directory (git keeps only non-empty ones)? Reads one path of
        trees, not the listing under it."""
        if self.tree_id is None:
            return False
        if not path.strip("/"):
            return True
        try:
            mode, _ = tree_lookup_path(
                self._store.__getitem__, to_object_id(self.tree_id), encode_path(path.strip("/"))
            )
        except KeyError:
            return False
        return stat.S_ISDIR(mode)

    def get(self, path: str) -> FileEntry | None:
        if self.tree_id is None:
            return None
        try:
            mode, sha = tree_lookup_path(
                self._store.__getitem__, to_object_id(self.tree_id), encode_path(path.strip("/"))
            )
        except KeyError:
            return None
        if stat.S_ISDIR(mode):
            return None
        return self._entry(path.strip("/"), sha, mode)

    def blobs(self, prefix: str = "") -> SnapshotBlobs:
        """A read-only ``path → bytes`` view of the files under ``prefix``, read on lookup.

        What ``plan_sync`` wants as ``managed_files``: the planner looks up only the paths
        it writes, so a sync reads those blobs and no others. Each directory's tree is
        parsed once per view. Submodules are not files and are not keys.
        """
        return SnapshotBlobs(self, prefix.strip("/"))

    def _entry(self, path: str, sha: ObjectID, mode: int) -> FileEntry:
        if mode == MODE_SUBMODULE:
            return FileEntry(path, sha.decode(), 0, mode)
        store = self._store
        size = lambda: len(store.get_raw(sha)[1])  # noqa: E731 — read on first use only
        return FileEntry(path, sha.decode(), size, mode)  # type: ignore[arg-type]

    def read(self, entry: FileEntry | str) -> bytes:
        """A file's bytes (a symlink's target, never the file it points to)."""
        if isinstance(entry, str):
            found = self.get(entry)
            if found is None:
                raise KeyError(entry)
            entry = found
        return self.read_blob(entry.blob_id)

    def read_blob(self, blob_id: str) -> bytes:
        type_num, data = self._store.get_raw(to_object_id(blob_id))
        if type_num != Blob.type_num:
            raise KeyError(blob_id)
        return data

    def has_object(self, object_id: str) -> bool:
        """Does this snapshot's object store hold ``object_id`` (say, a blob a sync
        discovered: then a snapshot fetched earlier is recent enough to read it)?"""
        try:
            return to_object_id(object_id) in self._store
        except Exception:  # noqa: BLE001 — a store that cannot answer: treat as absent
            return False

    @property
    def store_key(self) -> str:
        """Names the object store the snapshot reads (the local repository or cache path;
        empty for one in memory): snapshots of one repository share it."""
        return str(getattr(self._store, "path", ""))

    def commit_time(self) -> int | None:
        """The head commit's time (seconds since the epoch); None without a head."""
        if self.head is None:
            return None
        commit = self._store[to_object_id(self.head)]
        return commit.commit_time if isinstance(commit, Commit) else None

    def at(self, commit_id: str) -> Snapshot | None:
        """The same branch at another commit this snapshot's object store holds (an
        earlier head, say); None when the store does not have that commit."""
        try:
            commit = self._store[to_object_id(commit_id)]
        except (KeyError, ValueError, UnicodeEncodeError):
            return None
        if not isinstance(commit, Commit):
            return None
        return Snapshot(self.branch, commit_id, commit.tree.decode(), self._store)

    def contains(self, commit_id: str) -> bool:
        """Is ``commit_id`` the head or one of its ancestors (the branch holds that commit)?
        False without a head, or when the store does not know ``commit_id``."""
        if self.head is None:
            return False
        try:
            return descends_from(self._store, to_object_id(self.head), to_object_id(commit_id))
        except (ValueError, UnicodeEncodeError):
            return False

    def subtree_id(self, directory: str) -> str | None:
        """The id of the tree at ``directory``; None when there is no such directory."""
        if self.tree_id is None:
            return None
        try:
            mode, sha = tree_lookup_path(
                self._store.__getitem__,
                to_object_id(self.tree_id),
                encode_path(directory.strip("/")),
            )
        except (KeyError, NotADirectoryError):
            return None
        return sha.decode() if stat.S_ISDIR(mode) else None

    def subtree_items(self, directory: str | bytes) -> dict[bytes, tuple[int, bytes]] | None:
        """Name → (mode, object id) of the tree at ``directory`` (a path, or a tree's id
        as bytes); None when there is no such directory."""
        if isinstance(directory, bytes):
            tree = self._store[ObjectID(directory)]
        else:
            if self.tree_id is None:
                return None
            tree_id = to_object_id(self.tree_id)
            if directory.strip("/"):
                try:
                    mode, tree_id = tree_lookup_path(
                        self._store.__getitem__, tree_id, encode_path(directory.strip("/"))
                    )
                except KeyError:
                    return None
                if not stat.S_ISDIR(mode):
                    return None
            tree = self._store[tree_id]
        if not isinstance(tree, Tree):
            return None
        return {item.path: (item.mode, item.sha) for item in tree.iteritems()}

    def first_parent_log(self, limit: int) -> Iterator[tuple[str, bytes]]:
        """``(commit id, message)`` of the head and its first parents, newest first, at
        most ``limit`` of them."""
        sha = self.head
        for _ in range(limit):
            if sha is None:
                return
            commit = self._store[to_object_id(sha)]
            if not isinstance(commit, Commit):
                return
            yield sha, commit.message
            sha = commit.parents[0].decode() if commit.parents else None


class SnapshotBlobs(Mapping[str, bytes]):
    """``Snapshot.blobs``: keys from the trees, values read from the store on lookup."""

    def __init__(self, snapshot: Snapshot, prefix: str) -> None:
        self._snap = snapshot
        self._prefix = prefix
        # directory -> (raw tree, name -> entry offset), None when there is no such tree
        self._dirs: dict[str, tuple[bytes, dict[bytes, int]] | None] = {}

    def __repr__(self) -> str:
        return f"<blobs of {self._snap.head} under {self._prefix or '/'!r}>"

    def _lookup(self, path: object) -> tuple[int, bytes] | None:
        if not isinstance(path, str) or self._snap.tree_id is None:
            return None
        if self._prefix and not path.startswith(self._prefix + "/"):
            return None
        directory, _, name = path.rpartition("/")
        tree = self._tree(directory)
        if tree is None:
            return None
        raw, index = tree
        pos = index.get(encode_path(name))
        if pos is None:
            return None
        mode, sha, _end = tree_entry(raw, pos)
        if stat.S_ISDIR(mode) or mode == MODE_SUBMODULE:
            return None
        return mode, sha

    def _tree(self, directory: str) -> tuple[bytes, dict[bytes, int]] | None:
        # The raw tree and an offset index: no parsed entries (see tree_index).
        if directory not in self._dirs:
            store = self._snap._store
            tree: tuple[bytes, dict[bytes, int]] | None = None
            try:
                tree_id = to_object_id(self._snap.tree_id or "")
                if directory:
                    mode, tree_id = tree_lookup_path(
                        store.__getitem__, tree_id, encode_path(directory)
                    )
                    if not stat.S_ISDIR(mode):
                        raise KeyError(directory)
                type_num, raw = store.get_raw(tree_id)
                if type_num == Tree.type_num:
                    tree = raw, tree_index(raw)
            except KeyError:
                pass
            self._dirs[directory] = tree
        return self._dirs[directory]

    def __getitem__(self, path: str) -> bytes:
        found = self._lookup(path)
        if found is None:
            raise KeyError(path)
        return self._snap.read_blob(found[1].decode())

    def blob_id(self, path: str) -> str | None:
        """The object id of the file at ``path`` (None: no such file), its blob unread."""
        found = self._lookup(path)
        return None if found is None else found[1].decode()

    def __contains__(self, path: object) -> bool:
        return self._lookup(path) is not None

    def __iter__(self) -> Iterator[str]:
        for entry in self._snap.files(self._prefix):
            if entry.mode != MODE_SUBMODULE:
                yield entry.path

    def __len__(self) -> int:
        return sum(1 for _ in self)
