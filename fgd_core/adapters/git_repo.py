"""The git adapter: fetch a branch, build one commit on top of it, push it with compare-and-swap.

``GitRemote`` speaks to a local repository (a path or ``file://`` URL, bare or not) or to a
smart-HTTP remote (``http(s)://``, token sent as basic auth ``x-access-token:<token>``, see
``git_http``). A local remote is read in place: a snapshot reads the remote repository's own
object store (nothing is copied), commits stay in memory until pushed, and a push writes
their objects as one pack into the remote's object store, then moves the branch with a
compare-and-swap on the ref. An HTTP remote's fetched objects live in a local repository: a
bare repository at ``cache_dir`` when given (so later fetches are incremental), otherwise an
in-memory one owned by the ``GitRemote`` (``cache_dir`` is not used for local remotes).
Not thread-safe: use one ``GitRemote`` per worker.

A push never forces: the remote branch is updated only if it still points at the expected
commit (the snapshot's head), otherwise ``RemoteMovedError`` tells the caller to fetch the
new base, rebuild its commit and retry. Paths are repository-relative, ``/``-separated;
non-UTF-8 names round-trip through ``surrogateescape``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dulwich.client import LocalGitClient
from dulwich.errors import GitProtocolError, NotGitRepository, SendPackError
from dulwich.file import GitFile
from dulwich.object_store import (
    PACK_MODE,
    BaseObjectStore,
    DiskObjectStore,
    MissingObjectFinder,
    ObjectStoreGraphWalker,
    tree_lookup_path,
)
from dulwich.objects import (
    ZERO_SHA,
    Blob,
    Commit,
    ObjectID,
    RawObjectID,
    ShaFile,
    Tree,
    hex_to_sha,
    sha_to_hex,
)
from dulwich.pack import (
    UnpackedObject,
    write_pack_data,
    write_pack_index,
)
from dulwich.refs import Ref
from dulwich.repo import BaseRepo, MemoryRepo, Repo

from fgd_core.adapters.git_http import DEFAULT_USERNAME, GitHttpClient, redact_url
from fgd_core.errors import (
    DirectoryPermissionError,
    FGDErrorCodes,
    GitHubConnectionError,
    GitHubError,
    GitHubNotFoundError,
)

logger = logging.getLogger(__name__)

MODE_FILE = 0o100644
MODE_EXECUTABLE = 0o100755
MODE_SYMLINK = 0o120000
MODE_SUBMODULE = 0o160000

_Raw = tuple[int, bytes]  # an object as (type number, raw bytes)


class RemoteMovedError(GitHubError):
    """The remote branch no longer points at the expected commit: rebuild on the new base."""

    code = FGDErrorCodes.SYNC_FAILED


class PushRejectedError(GitHubError):
    """The remote refused the update for another reason (protected branch, hook, checkout)."""

    code = FGDErrorCodes.GITHUB_AUTHENTICATION_FAILED


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
        root = _oid(self.tree_id)
        if prefix:
            try:
                mode, root = tree_lookup_path(self._store.__getitem__, root, _encode(prefix))
            except KeyError:
                return ()
            if not stat.S_ISDIR(mode):
                return ()
        entries = []
        for entry in self._store.iter_tree_contents(root):
            path = _decode(entry.path)
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
                self._store.__getitem__, _oid(self.tree_id), _encode(path.strip("/"))
            )
        except KeyError:
            return False
        return stat.S_ISDIR(mode)

    def get(self, path: str) -> FileEntry | None:
        if self.tree_id is None:
            return None
        try:
            mode, sha = tree_lookup_path(
                self._store.__getitem__, _oid(self.tree_id), _encode(path.strip("/"))
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
        type_num, data = self._store.get_raw(_oid(blob_id))
        if type_num != Blob.type_num:
            raise KeyError(blob_id)
        return data

    def has_object(self, object_id: str) -> bool:
        """Does this snapshot's object store hold ``object_id`` (say, a blob a sync
        discovered: then a snapshot fetched earlier is recent enough to read it)?"""
        try:
            return _oid(object_id) in self._store
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
        commit = self._store[_oid(self.head)]
        return commit.commit_time if isinstance(commit, Commit) else None

    def at(self, commit_id: str) -> Snapshot | None:
        """The same branch at another commit this snapshot's object store holds (an
        earlier head, say); None when the store does not have that commit."""
        try:
            commit = self._store[_oid(commit_id)]
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
            return _descends_from(self._store, _oid(self.head), _oid(commit_id))
        except (ValueError, UnicodeEncodeError):
            return False

    def subtree_id(self, directory: str) -> str | None:
        """The id of the tree at ``directory``; None when there is no such directory."""
        if self.tree_id is None:
            return None
        try:
            mode, sha = tree_lookup_path(self._store.__getitem__, _oid(self.tree_id),
                                         _encode(directory.strip("/")))
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
            tree_id = _oid(self.tree_id)
            if directory.strip("/"):
                try:
                    mode, tree_id = tree_lookup_path(
                        self._store.__getitem__, tree_id, _encode(directory.strip("/")))
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
            commit = self._store[_oid(sha)]
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
        pos = index.get(_encode(name))
        if pos is None:
            return None
        mode, sha, _end = _tree_entry(raw, pos)
        if stat.S_ISDIR(mode) or mode == MODE_SUBMODULE:
            return None
        return mode, sha

    def _tree(self, directory: str) -> tuple[bytes, dict[bytes, int]] | None:
        # The raw tree and an offset index: no parsed entries (see _tree_index).
        if directory not in self._dirs:
            store = self._snap._store
            tree: tuple[bytes, dict[bytes, int]] | None = None
            try:
                tree_id = _oid(self._snap.tree_id or "")
                if directory:
                    mode, tree_id = tree_lookup_path(store.__getitem__, tree_id, _encode(directory))
                    if not stat.S_ISDIR(mode):
                        raise KeyError(directory)
                type_num, raw = store.get_raw(tree_id)
                if type_num == Tree.type_num:
                    tree = raw, _tree_index(raw)
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


class GitRemote:
    """A git remote plus the local object store its snapshots and commits live in."""

    def __init__(
        self,
        url: str | Path,
        *,
        token: str | None = None,
        username: str = DEFAULT_USERNAME,
        connection_timeout: float = 30.0,
        read_timeout: float = 60.0,
        cache_dir: str | Path | None = None,
        rate_limit_buffer: int = 0,
    ) -> None:
        url = str(url)
        parts = urlsplit(url)
        self._client: LocalGitClient | GitHttpClient
        if parts.scheme in ("http", "https"):
            if parts.password and token is None:
                token = unquote(parts.password)
                username = unquote(parts.username or username)
            self.url = redact_url(url)
            self._client = GitHttpClient(
                self.url,
                token=token,
                username=username,
                connection_timeout=connection_timeout,
                read_timeout=read_timeout,
                rate_limit_buffer=rate_limit_buffer,
            )
            self._path = parts.path
        elif parts.scheme == "file":
            self.url = url
            self._client = LocalGitClient()
            self._path = unquote(parts.path)
        elif parts.scheme == "" or len(parts.scheme) == 1:  # a path (or a Windows drive)
            self.url = url
            self._client = LocalGitClient()
            self._path = url
        else:
            raise ValueError(f"unsupported git remote scheme {parts.scheme!r} in {redact_url(url)}")
        self._local: BaseRepo | _InPlace = (
            _InPlace(self._path) if self.is_local else _open_cache(cache_dir)
        )
        # Objects of the commits built since the last push, as built: push sends them
        # without reading them back from the store (parse, serialize) one by one.
        self._unpushed: dict[ObjectID, _Raw] = {}

    def __repr__(self) -> str:
        return f"GitRemote({self.url!r})"

    @property
    def is_local(self) -> bool:
        return isinstance(self._client, LocalGitClient)

    def fetch(self, branch: str) -> Snapshot:
        ref = _branch_ref(branch)
        if isinstance(self._local, _InPlace):
            return self._fetch_in_place(branch, ref, self._local)
        self._unpushed.clear()  # only a speed-up for push: a new base starts a new cycle
        with self._translated("fetch"):
            result = self._client.fetch(
                self._path,
                self._local,
                determine_wants=lambda refs, depth=None: [refs[ref]] if ref in refs else [],
                ref_prefix=[ref],
            )
        head = result.refs.get(ref)
        if head is None or head == ZERO_SHA:
            logger.info("fetched %s: branch %s does not exist yet", self.url, branch)
            return Snapshot(branch, None, None, self._local.object_store)
        # A local ref makes the next fetch negotiate from here (incremental fetch).
        self._local.refs[_tracking_ref(ref)] = head
        commit = self._local.object_store[head]
        assert isinstance(commit, Commit)
        logger.info("fetched %s: %s at %s", self.url, branch, head.decode())
        return Snapshot(branch, head.decode(), commit.tree.decode(), self._local.object_store)

    def close(self) -> None:
        """Close the repository files this remote holds open (a local remote's pack files,
        the cache's); the remote opens them again on its next use."""
        local = self._local
        if isinstance(local, _InPlace):
            if local._repo is not None:
                local._repo.close()
                local._repo = None
        elif isinstance(local, Repo):  # a disk cache (an in-memory one holds no files)
            local.close()

    def remote_head(self, branch: str) -> str | None:
        """The branch's head on the remote, nothing fetched (``git ls-remote``): one round
        trip over HTTP (the ref advertisement), one ref read for a local repository."""
        ref = _branch_ref(branch)
        with self._translated("ls-remote"):
            if isinstance(self._local, _InPlace):
                head = _read_ref(self._local.open(), ref)
            else:
                head = self._client.get_refs(self._path, ref_prefix=[ref]).refs.get(ref)
        return None if head is None or head == ZERO_SHA else head.decode()

    def _fetch_in_place(self, branch: str, ref: Ref, local: _InPlace) -> Snapshot:
        # Zero-copy: the snapshot reads the remote's object store itself. Objects are
        # immutable and the commit is reachable from the branch, so nothing needs copying.
        with self._translated("fetch"):
            repo = local.open()
            head = _read_ref(repo, ref)
            if head is None:
                logger.info("fetched %s: branch %s does not exist yet", self.url, branch)
                return Snapshot(branch, None, None, local.object_store)
            commit = local.object_store[head]
        assert isinstance(commit, Commit)
        logger.info("fetched %s: %s at %s", self.url, branch, head.decode())
        return Snapshot(branch, head.decode(), commit.tree.decode(), local.object_store)

    def commit(
        self,
        snapshot: Snapshot,
        changes: Mapping[str, bytes | None],
        message: str,
        author: str,
        *,
        committer: str | None = None,
        timestamp: int | None = None,
        timezone: int = 0,
    ) -> str:
        """Build one commit on top of ``snapshot.head`` writing (bytes) or deleting (None) paths.

        Every other path keeps its blob and mode; a written file keeps an executable bit it
        had. Returns the new commit id — or ``snapshot.head`` unchanged when the changes
        leave the tree as it was (no empty commits). Same inputs and timestamp, same id.
        """
        store = self._local.object_store
        if snapshot._store is not store:
            raise ValueError("snapshot was fetched by another GitRemote")
        for who in (author, committer or author):
            if "<" not in who or not who.rstrip().endswith(">"):
                raise ValueError(f"expected 'Name <email>', got {who!r}")
        nested = _nest({_validate_path(p): data for p, data in changes.items()})
        new: dict[ObjectID, _Raw] = {}
        present: set[ObjectID] = set()
        tree_id = _apply(
            store, _oid(snapshot.tree_id) if snapshot.tree_id else None, nested, new, present
        )
        if snapshot.head is not None and tree_id.decode() == snapshot.tree_id:
            return snapshot.head
        when = int(time.time()) if timestamp is None else int(timestamp)
        commit = Commit()
        commit.tree = tree_id
        commit.parents = [_oid(snapshot.head)] if snapshot.head else []
        commit.author = author.encode()
        commit.committer = (committer or author).encode()
        commit.author_time = commit.commit_time = when
        commit.author_timezone = commit.commit_timezone = timezone
        commit.message = message.rstrip("\n").encode() + b"\n"
        # A blob equal to one the base tree held (an archived raw file: same bytes under a
        # new name) is in the store already: neither stored nor sent again. Any other
        # object the store may already have is written again rather than looked up: git
        # tolerates a copy in two packs, and 10,000 lookups cost more than the bytes.
        for sha in present:
            new.pop(sha, None)
        if tree_id != _EMPTY_TREE_ID:
            new.pop(_EMPTY_TREE_ID, None)  # an emptied directory: dropped from its parent
        new[commit.id] = (Commit.type_num, commit.as_raw_string())
        if isinstance(store, _PendingStore):
            store.add_built(new, commit)  # in memory until pushed
            return commit.id.decode()
        if isinstance(store, DiskObjectStore):
            # One pack for the whole commit, indexed from what was written (dulwich's
            # add_objects re-reads and re-inflates the pack it has just written).
            _write_pack(store, new)
        else:
            store.add_objects(
                [(ShaFile.from_raw_string(t, raw, sha=oid), None) for oid, (t, raw) in new.items()]
            )
        self._unpushed.update(new)
        return commit.id.decode()

    def push(self, sha: str, branch: str, expected_old_sha: str | None) -> None:
        """Point the remote ``branch`` at ``sha`` if it still points at ``expected_old_sha``.

        ``expected_old_sha=None`` means the branch must not exist yet. ``sha`` must descend
        from ``expected_old_sha`` (never a force-push). Raises ``RemoteMovedError`` when the
        remote moved, ``PushRejectedError`` when it refused for another reason.
        """
        ref = _branch_ref(branch)
        new, old = _oid(sha), _oid(expected_old_sha) if expected_old_sha else None
        if new == old:
            return
        if not _descends_from(self._local.object_store, new, old):
            raise ValueError(f"{sha} does not descend from {expected_old_sha}; refusing to force")
        if isinstance(self._local, _InPlace):
            self._push_in_place(self._local, ref, new, old, branch, expected_old_sha)
            logger.info("pushed %s to %s %s", sha, self.url, branch)
            return

        def update_refs(refs: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
            current = refs.get(ref)
            current = None if current in (None, ZERO_SHA) else current
            if current != old:
                raise self._moved(branch, expected_old_sha, current)
            return {ref: new}

        store = self._local.object_store
        with self._translated("push"):
            try:
                result = self._client.send_pack(
                    self._path, update_refs, _pack_data(store, self._unpushed)
                )
            except SendPackError as exc:
                raise PushRejectedError(
                    f"push to {self.url} rejected: {exc}",
                    details={"url": self.url, "branch": branch},
                ) from exc
            status = (result.ref_status or {}).get(ref)
            if status is not None:
                # Rejected by the remote itself: find out whether it is because someone
                # else updated the branch after the ref advertisement (lost the race).
                current = self._client.get_refs(self._path).refs.get(ref)
                current = None if current in (None, ZERO_SHA) else current
                if current != old:
                    raise self._moved(branch, expected_old_sha, current)
                raise PushRejectedError(
                    f"push to {self.url} rejected: {status}",
                    details={"url": self.url, "branch": branch, "reason": str(status)},
                )
        # The remote has it now: the next fetch negotiates from here.
        self._local.refs[_tracking_ref(ref)] = new
        self._unpushed.clear()
        logger.info("pushed %s to %s %s", sha, self.url, branch)

    def _push_in_place(
        self,
        local: _InPlace,
        ref: Ref,
        new: ObjectID,
        old: ObjectID | None,
        branch: str,
        expected_old_sha: str | None,
    ) -> None:
        """Push to a local repository: one pack into its object store, then the ref's CAS.

        The same steps (and the same answers) as dulwich's local send-pack, without the
        pack protocol: refuse a checked-out branch, check the branch still points at
        ``old``, add the objects the remote lacks, ``set_if_equals`` the ref.
        """
        with self._translated("push"):
            repo = local.open()
            self._refuse_checked_out_branch(repo, ref)
            current = _read_ref(repo, ref)
            if current != old:
                raise self._moved(branch, expected_old_sha, current)
            objects = local.object_store.unpushed_from(new)
            if objects:
                _write_pack(repo.object_store, objects)
                local.object_store.forget(list(objects))  # the remote has them now
            if not repo.refs.set_if_equals(ref, old or ZERO_SHA, new):
                # Someone else updated the branch between our check and the CAS.
                current = _read_ref(repo, ref)
                if current != old:
                    raise self._moved(branch, expected_old_sha, current)
                status = f"unable to set {ref!r} to {new!r}"
                raise PushRejectedError(
                    f"push to {self.url} rejected: {status}",
                    details={"url": self.url, "branch": branch, "reason": status},
                )

    def _moved(self, branch: str, expected: str | None, actual: bytes | None) -> RemoteMovedError:
        return RemoteMovedError(
            f"{self.url} {branch} moved: expected {expected}, found "
            f"{actual.decode() if actual else None}",
            details={
                "url": self.url,
                "branch": branch,
                "expected_sha": expected,
                "actual_sha": actual.decode() if actual else None,
            },
        )

    def _refuse_checked_out_branch(self, target: Repo, ref: bytes) -> None:
        # Like git's receive.denyCurrentBranch=refuse: updating a checked-out branch of a
        # non-bare repository would silently desynchronise its working tree.
        if target.bare:
            return
        try:
            head_target = target.refs.follow(Ref(b"HEAD"))[0][-1]
        except (KeyError, IndexError):
            return
        try:
            policy = target.get_config().get(b"receive", b"denyCurrentBranch")
        except KeyError:
            policy = b"refuse"
        if head_target == ref and policy.lower() not in (b"ignore", b"warn", b"false"):
            raise PushRejectedError(
                f"{self.url}: {ref.decode()} is checked out in a non-bare repository",
                details={"url": self.url, "branch": ref.decode()},
            )

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except GitHubError:
            raise
        except NotGitRepository as exc:
            raise GitHubNotFoundError(
                f"{action}: no git repository at {self.url}", details={"url": self.url}
            ) from exc
        except PermissionError as exc:
            # A local repository whose files this process may not read or write: the
            # operator's to fix (FGD_2002), not an outage to retry like the others below.
            raise DirectoryPermissionError(
                f"{action} {self.url}: permission denied"
                + (f" on {exc.filename}" if exc.filename else ""),
                details={"url": self.url, "path": str(exc.filename or "")},
            ) from exc
        except (GitProtocolError, OSError) as exc:
            raise GitHubConnectionError(
                f"{action} {self.url} failed: {type(exc).__name__}: {exc}",
                details={"url": self.url, "reason": type(exc).__name__},
            ) from exc


_TRACKING = b"refs/remotes/origin/"


class _NegotiatesFromTracking(BaseRepo):
    """A fetch cache that tells the remote which commits it already has.

    dulwich offers only ``refs/heads/*`` as "haves", and a cache has none: every fetch
    would transfer the whole history again. The cache's remote-tracking refs (set on fetch
    and on push) are what it has.
    """

    def get_graph_walker(self, heads: list[ObjectID] | None = None) -> ObjectStoreGraphWalker:
        if heads is None:
            heads = [
                sha
                for name, sha in self.refs.as_dict().items()
                if name.startswith(_TRACKING) and sha in self.object_store
            ]
        return super().get_graph_walker(heads)


class _MemoryCache(_NegotiatesFromTracking, MemoryRepo):
    pass


class _DiskCache(_NegotiatesFromTracking, Repo):
    pass


def _open_cache(cache_dir: str | Path | None) -> BaseRepo:
    if cache_dir is None:
        return _MemoryCache()
    path = Path(cache_dir)
    if (path / "objects").is_dir():
        return _DiskCache(str(path))
    path.mkdir(parents=True, exist_ok=True)
    return _DiskCache.init_bare(str(path))


class _PendingStore(BaseObjectStore):
    """A local remote's object store seen through the commits built and not yet pushed.

    Reads go to the built objects first, then to the remote repository's own store (once
    a fetch has opened it). Nothing is written to the remote until ``GitRemote.push``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.base: BaseObjectStore | None = None
        # Built objects as (type number, raw bytes): no parsed trees kept alive.
        self._built: dict[ObjectID, _Raw] = {}
        # commit id -> ids of the objects that commit() built for it (all reachable from it)
        self._reaches: dict[ObjectID, list[ObjectID]] = {}

    def add_built(self, objects: Mapping[ObjectID, _Raw], commit: Commit) -> None:
        """Keep ``objects``; ``commit`` (one of them) reaches them all."""
        self._built.update(objects)
        self._reaches[commit.id] = list(objects)

    def add_objects(
        self,
        objects: Iterable[tuple[ShaFile, str | None]],
        progress: Callable[..., None] | None = None,
    ) -> None:
        for obj, _path in objects:
            self._built[obj.id] = (obj.type_num, obj.as_raw_string())

    def get_raw(self, name: ObjectID | bytes) -> tuple[int, bytes]:
        sha = ObjectID(name) if len(name) == 40 else sha_to_hex(name)  # type: ignore[arg-type]
        found = self._built.get(sha)
        if found is not None:
            return found
        if self.base is None:
            raise KeyError(sha)
        return self.base.get_raw(sha)

    def __contains__(self, sha: ObjectID) -> bool:  # type: ignore[override]
        if sha in self._built:
            return True
        return self.base is not None and sha in self.base

    def contains_loose(self, sha: ObjectID) -> bool:
        return sha in self

    def contains_packed(self, sha: ObjectID | bytes) -> bool:
        return False

    def unpushed_from(self, head: ObjectID) -> dict[ObjectID, _Raw]:
        """The built objects reachable from ``head``: what a push of it must send.

        Every object ``commit()`` builds is reachable from its commit, and everything else
        a commit reaches came from a snapshot of the remote, so the remote has it: the
        objects to send are those built for ``head`` and for its built ancestors. (No tree
        is walked: a managed directory has 10,000 entries.)
        """
        built, out = self._built, {}
        todo, seen = [head], set[ObjectID]()
        while todo:
            sha = todo.pop()
            if sha in seen:
                continue
            seen.add(sha)
            found = built.get(sha)
            if found is None or found[0] != Commit.type_num:
                continue
            commit = Commit.from_raw_string(*found, sha=sha)
            assert isinstance(commit, Commit)
            todo.extend(commit.parents)
            for oid in self._reaches.get(sha, (sha,)):
                if oid in built:
                    out[oid] = built[oid]
        return out

    def forget(self, objects: Iterable[ObjectID]) -> None:
        for oid in objects:
            self._built.pop(oid, None)
            self._reaches.pop(oid, None)


class _InPlace:
    """A local remote read in place: the repository opens on first use, then stays open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.object_store = _PendingStore()
        self._repo: Repo | None = None

    def open(self) -> Repo:
        if self._repo is None:
            self._repo = Repo(self.path)
            self.object_store.base = self._repo.object_store
        return self._repo


def _read_ref(repo: Repo, ref: Ref) -> ObjectID | None:
    """Where a branch points (symbolic refs followed), None when it does not exist."""
    try:
        sha = repo.refs[ref]
    except KeyError:
        return None
    return None if sha in (None, ZERO_SHA) else sha


def _unpacked(oid: ObjectID, raw: _Raw) -> UnpackedObject:
    # One chunk per object: the pack writer compresses chunk by chunk.
    return UnpackedObject(
        raw[0], delta_base=None, crc32=None, decomp_chunks=[raw[1]], sha=hex_to_sha(oid)
    )


def _write_pack(store: DiskObjectStore, objects: Mapping[ObjectID, _Raw]) -> None:
    """Add ``objects`` to an on-disk store as one pack, indexed from what was written.

    Like git's index-pack: the pack is moved in first, its index last (a pack is used
    only once its index is there). The index entries come from the writer itself,
    instead of re-reading and re-inflating the pack as dulwich's ``add_objects`` does.
    """
    fsync = store.fsync_object_files
    fd, tmp = tempfile.mkstemp(dir=store.pack_dir, prefix="tmp_pack_")
    try:
        with os.fdopen(fd, "wb") as f:
            entries, checksum = write_pack_data(
                f.write,
                (_unpacked(oid, raw) for oid, raw in objects.items()),
                object_format=store.object_format,
                num_records=len(objects),
                compression_level=store.pack_compression_level,
            )
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, PACK_MODE)
        base = os.path.join(store.pack_dir, "pack-" + checksum.hex())
        os.replace(tmp, base + ".pack")
    except BaseException:
        with suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    index = sorted((sha, offset, crc) for sha, (offset, crc) in entries.items())
    with GitFile(base + ".idx", "wb", mask=PACK_MODE, fsync=fsync) as f:
        write_pack_index(f, index, checksum, version=store.pack_index_version)


def _tracking_ref(ref: Ref) -> Ref:
    return Ref(_TRACKING + ref.removeprefix(b"refs/heads/"))


def _branch_ref(branch: str) -> Ref:
    name = branch.removeprefix("refs/heads/")
    if not name or name.startswith("/") or ".." in name or name.endswith((".lock", "/")):
        raise ValueError(f"invalid branch name {branch!r}")
    return Ref(b"refs/heads/" + name.encode())


def _oid(sha: str) -> ObjectID:
    return ObjectID(sha.encode("ascii"))


def _encode(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def _decode(path: bytes) -> str:
    return path.decode("utf-8", "surrogateescape")


def _validate_path(path: str) -> bytes:
    parts = path.split("/")
    if (
        not path
        or "\0" in path
        or any(p in ("", ".", "..") for p in parts)
        or any(p.lower() == ".git" for p in parts)
    ):
        raise ValueError(f"invalid repository path {path!r}")
    return _encode(path)


# A change tree: name -> (leaf, children). leaf: bytes = write, None = delete, _KEEP = only
# children below change.
_KEEP = object()
_Node = dict[bytes, list]


def _nest(changes: Mapping[bytes, bytes | None]) -> _Node:
    root: _Node = {}
    for path, data in changes.items():
        *dirs, name = path.split(b"/")
        node = root
        for d in dirs:
            node = node.setdefault(d, [_KEEP, {}])[1]
        node.setdefault(name, [_KEEP, {}])[0] = data
    return root


def _object_id(type_name: bytes, raw: bytes) -> ObjectID:
    header = type_name + b" %d\x00" % len(raw)
    return ObjectID(hashlib.sha1(header + raw, usedforsecurity=False).hexdigest().encode())


def _tree_index(raw: bytes) -> dict[bytes, int]:
    """name -> offset of its entry in a raw tree (entries: ``<mode> <name>\\0<20-byte id>``).

    An index of plain bytes and ints: parsing a 10,000-entry directory into tuples would
    hand the garbage collector 20,000 long-lived objects to scan again and again.
    """
    index: dict[bytes, int] = {}
    find, pos, end = raw.find, 0, len(raw)
    while pos < end:
        space = find(b" ", pos)
        nul = find(b"\x00", space)
        if space < 0 or nul < 0 or nul + 21 > end:
            raise ValueError("malformed tree object")
        index[raw[space + 1 : nul]] = pos
        pos = nul + 21
    return index


def _tree_entry(raw: bytes, pos: int) -> tuple[int, ObjectID, int]:
    """(mode, id, end offset) of the entry of a raw tree that starts at ``pos``."""
    space = raw.index(b" ", pos)
    nul = raw.index(b"\x00", space)
    return int(raw[pos:space], 8), sha_to_hex(RawObjectID(raw[nul + 1 : nul + 21])), nul + 21


def _sort_key(name: bytes, mode: int) -> bytes:
    return name + b"/" if stat.S_ISDIR(mode) else name  # git's tree order


def _apply(
    store: BaseObjectStore,
    tree_id: ObjectID | None,
    node: _Node,
    new: dict[ObjectID, _Raw],
    present: set[ObjectID],
    where: bytes = b"",
) -> ObjectID:
    """The id of ``tree_id`` with ``node``'s changes; the objects it creates go to ``new``.

    ``present`` collects the blobs the changes overwrite or delete: the store has them.
    The tree is edited as raw bytes: untouched entries are copied as they are, the
    changed ones are dropped and their new versions spliced in at their sorted places.
    """
    if tree_id is None:
        raw = b""
    else:
        type_num, raw = store.get_raw(tree_id)
        if type_num != Tree.type_num:
            raise ValueError(f"{_decode(where) or '/'!r}: {tree_id.decode()} is not a tree")
    index = _tree_index(raw)
    drop: list[tuple[int, int]] = []  # (start, end) of replaced or deleted entries
    add: list[tuple[bytes, int, bytes, ObjectID]] = []  # (sort key, mode, name, id)
    for name, (leaf, children) in node.items():
        path = where + name
        existing: tuple[int, ObjectID] | None = None
        if name in index:
            start = index[name]
            mode_, sha_, end = _tree_entry(raw, start)
            existing = (mode_, sha_)
            span = (start, end)
        is_dir = existing is not None and stat.S_ISDIR(existing[0])
        if isinstance(leaf, bytes):
            if children:
                raise ValueError(f"{_decode(path)!r} written as a file and as a directory")
            if is_dir:
                raise ValueError(f"{_decode(path)!r} is a directory")
            if existing is not None:
                if existing[0] != MODE_SUBMODULE:
                    present.add(existing[1])
                drop.append(span)
            blob_id = _object_id(b"blob", leaf)
            new[blob_id] = (Blob.type_num, leaf)
            mode = MODE_EXECUTABLE if existing and existing[0] == MODE_EXECUTABLE else MODE_FILE
            add.append((_sort_key(name, mode), mode, name, blob_id))
            continue
        if leaf is None and existing is not None:
            if is_dir:
                raise ValueError(f"{_decode(path)!r} is a directory, not a file")
            if existing[0] != MODE_SUBMODULE:
                present.add(existing[1])
            drop.append(span)
            existing, is_dir = None, False
        if not children:
            continue
        if existing is not None and not is_dir:
            raise ValueError(f"{_decode(path)!r} is a file, not a directory")
        sub = _apply(store, existing[1] if existing else None, children, new, present, path + b"/")
        if existing is not None:
            drop.append(span)
        if sub != _EMPTY_TREE_ID:
            add.append((name + b"/", stat.S_IFDIR, name, sub))
    if drop or add:
        raw = _splice(raw, index, drop, add)
    tree_id = _object_id(b"tree", raw)
    new[tree_id] = (Tree.type_num, raw)
    return tree_id


def _entry_key(raw: bytes, pos: int) -> bytes:
    space = raw.index(b" ", pos)
    name = raw[space + 1 : raw.index(b"\x00", space)]
    return _sort_key(name, int(raw[pos:space], 8))


def _splice(
    raw: bytes,
    index: dict[bytes, int],
    drop: list[tuple[int, int]],
    add: list[tuple[bytes, int, bytes, ObjectID]],
) -> bytes:
    """``raw`` without the ``drop`` spans and with the ``add`` entries at their places."""
    starts = list(index.values())  # entry offsets, in the tree's (git's) order
    # (offset, 0 = insert / 1 = drop, sort key, entry / end of the dropped entry): inserts
    # at one offset go in key order, before a drop there.
    edits: list[tuple[int, int, bytes, bytes | int]] = [(a, 1, b"", b) for a, b in drop]
    for key, mode, name, sha in add:
        i = bisect_left(starts, key, key=lambda pos: _entry_key(raw, pos))
        at = starts[i] if i < len(starts) else len(raw)
        edits.append((at, 0, key, b"%04o %s\x00%s" % (mode, name, hex_to_sha(sha))))
    edits.sort(key=lambda e: e[:3])
    out, cur = [], 0
    for at, kind, _key, payload in edits:
        if at > cur:
            out.append(raw[cur:at])
            cur = at
        if kind == 0:
            out.append(payload)  # type: ignore[arg-type]
        else:
            cur = payload  # type: ignore[assignment]
    out.append(raw[cur:])
    return b"".join(out)


_EMPTY_TREE_ID = Tree().id


def _pack_data(
    store: BaseObjectStore, built: Mapping[ObjectID, _Raw]
) -> Callable[..., tuple[int, Iterator[UnpackedObject]]]:
    """``store.generate_pack_data`` without dulwich's delta reuse.

    Delta reuse scans every object of every local pack to find the few being sent; the
    objects a sync commits are fresh, undeltified blobs and trees, so there is nothing
    to reuse and the scan cost grew with the repository instead of with the change.
    """

    def generate(
        have: Iterable[ObjectID],
        want: Iterable[ObjectID],
        *,
        shallow: AbstractSet[ObjectID] | None = None,
        progress: Callable[..., None] | None = None,
        ofs_delta: bool = True,
    ) -> tuple[int, Iterator[UnpackedObject]]:
        missing = MissingObjectFinder(
            store, haves=have, wants=want, shallow=shallow, progress=progress
        )
        object_ids = list(missing)
        records = (
            _unpacked(oid, built.get(oid) or store.get_raw(oid)) for oid, _hint in object_ids
        )
        return len(object_ids), records

    return generate


def _descends_from(store: BaseObjectStore, sha: ObjectID, ancestor: ObjectID | None) -> bool:
    if sha not in store:
        raise ValueError(f"unknown commit {sha.decode()}: build it with commit() first")
    if ancestor is None:
        return True
    todo, seen = [sha], set[ObjectID]()
    while todo:
        current = todo.pop()
        if current == ancestor:
            return True
        if current in seen or current not in store:
            continue
        seen.add(current)
        commit = store[current]
        if isinstance(commit, Commit):
            todo.extend(commit.parents)
    return False
