"""The git adapter: fetch a branch, build one commit on top of it, push it with compare-and-swap.

``GitRemote`` speaks to a local repository (a path or ``file://`` URL, bare or not) or to a
smart-HTTP remote (``http(s)://``, token sent as basic auth ``x-access-token:<token>``, see
``git_http``). Fetched objects live in a local repository: a bare repository at ``cache_dir``
when given (so later fetches are incremental), otherwise an in-memory one owned by the
``GitRemote``. Not thread-safe: use one ``GitRemote`` per worker.

A push never forces: the remote branch is updated only if it still points at the expected
commit (the snapshot's head), otherwise ``RemoteMovedError`` tells the caller to fetch the
new base, rebuild its commit and retry. Paths are repository-relative, ``/``-separated;
non-UTF-8 names round-trip through ``surrogateescape``.
"""

from __future__ import annotations

import logging
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dulwich.client import LocalGitClient
from dulwich.errors import GitProtocolError, NotGitRepository, SendPackError
from dulwich.object_store import (
    BaseObjectStore,
    MissingObjectFinder,
    ObjectStoreGraphWalker,
    tree_lookup_path,
)
from dulwich.objects import ZERO_SHA, Blob, Commit, ObjectID, ShaFile, Tree
from dulwich.pack import UnpackedObject, full_unpacked_object
from dulwich.refs import Ref
from dulwich.repo import BaseRepo, MemoryRepo, Repo

from fgd_core.errors import (
    FGDErrorCodes,
    GitHubConnectionError,
    GitHubError,
    GitHubNotFoundError,
)
from fgd_core.gitops.git_http import DEFAULT_USERNAME, GitHttpClient, redact_url

logger = logging.getLogger(__name__)

MODE_FILE = 0o100644
MODE_EXECUTABLE = 0o100755
MODE_SYMLINK = 0o120000
MODE_SUBMODULE = 0o160000


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

    def blobs(self, prefix: str = "") -> Mapping[str, bytes]:
        """A read-only ``path → bytes`` view of the files under ``prefix``, read on lookup.

        What ``plan_sync`` wants as ``managed_files``: the planner looks up only the paths
        it writes, so a sync reads those blobs and no others. Each directory's tree is
        parsed once per view. Submodules are not files and are not keys.
        """
        return _SnapshotBlobs(self, prefix.strip("/"))

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


class _SnapshotBlobs(Mapping[str, bytes]):
    """``Snapshot.blobs``: keys from the trees, values read from the store on lookup."""

    def __init__(self, snapshot: Snapshot, prefix: str) -> None:
        self._snap = snapshot
        self._prefix = prefix
        self._dirs: dict[str, Tree | None] = {}

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
        try:
            found: tuple[int, bytes] = tree[_encode(name)]
        except KeyError:
            return None
        if stat.S_ISDIR(found[0]) or found[0] == MODE_SUBMODULE:
            return None
        return found

    def _tree(self, directory: str) -> Tree | None:
        # The parsed tree itself is the index (name → mode, sha): no per-entry copies.
        if directory not in self._dirs:
            store = self._snap._store
            tree: Tree | None = None
            try:
                tree_id = _oid(self._snap.tree_id or "")
                if directory:
                    mode, tree_id = tree_lookup_path(store.__getitem__, tree_id, _encode(directory))
                    if not stat.S_ISDIR(mode):
                        raise KeyError(directory)
                found = store[tree_id]
                tree = found if isinstance(found, Tree) else None
            except KeyError:
                pass
            self._dirs[directory] = tree
        return self._dirs[directory]

    def __getitem__(self, path: str) -> bytes:
        found = self._lookup(path)
        if found is None:
            raise KeyError(path)
        return self._snap.read_blob(found[1].decode())

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
        self._local = _open_cache(cache_dir)
        # Objects of the commits built since the last push, as built: push sends them
        # without reading them back from the store (parse, serialize) one by one.
        self._unpushed: dict[ObjectID, ShaFile] = {}

    def __repr__(self) -> str:
        return f"GitRemote({self.url!r})"

    @property
    def is_local(self) -> bool:
        return isinstance(self._client, LocalGitClient)

    def fetch(self, branch: str) -> Snapshot:
        ref = _branch_ref(branch)
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
        new: dict[ObjectID, Blob | Tree] = {}
        tree_id = _apply(store, _oid(snapshot.tree_id) if snapshot.tree_id else None, nested, new)
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
        # One pack for the whole commit: an on-disk cache would otherwise write (and push
        # would re-read) one loose object file per managed file.
        # (An object the store already has is written again rather than looked up: git
        # tolerates a copy in two packs, and 10,000 lookups cost more than the bytes.)
        objects: list[tuple[ShaFile, str | None]] = [(obj, None) for obj in new.values()]
        store.add_objects([*objects, (commit, None)])
        self._unpushed.update(new)
        self._unpushed[commit.id] = commit
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
        if self.is_local:
            self._refuse_checked_out_branch(ref)

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

    def _refuse_checked_out_branch(self, ref: bytes) -> None:
        # Like git's receive.denyCurrentBranch=refuse: updating a checked-out branch of a
        # non-bare repository would silently desynchronise its working tree.
        with self._translated("push"), Repo(self._path) as target:
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


def _apply(
    store: BaseObjectStore,
    tree_id: ObjectID | None,
    node: _Node,
    new: dict[ObjectID, Blob | Tree],
    where: bytes = b"",
) -> ObjectID:
    """The id of ``tree_id`` with ``node``'s changes; the objects it creates go to ``new``."""
    if tree_id is None:
        tree = Tree()
    else:
        # A private copy parsed from the raw object (never an object the store may share):
        # copying entry by entry costs more than the parse on a 10,000-entry directory.
        type_num, raw = store.get_raw(tree_id)
        if type_num != Tree.type_num:
            raise ValueError(f"{_decode(where) or '/'!r}: {tree_id.decode()} is not a tree")
        parsed = Tree.from_raw_string(type_num, raw)
        assert isinstance(parsed, Tree)
        tree = parsed
    for name, (leaf, children) in node.items():
        path = where + name
        try:
            existing: tuple[int, ObjectID] | None = tree[name]
        except KeyError:
            existing = None
        is_dir = existing is not None and stat.S_ISDIR(existing[0])
        if isinstance(leaf, bytes):
            if children:
                raise ValueError(f"{_decode(path)!r} written as a file and as a directory")
            if is_dir:
                raise ValueError(f"{_decode(path)!r} is a directory")
            blob = Blob.from_string(leaf)
            new[blob.id] = blob
            mode = MODE_EXECUTABLE if existing and existing[0] == MODE_EXECUTABLE else MODE_FILE
            tree.add(name, mode, blob.id)
            continue
        if leaf is None and existing is not None:
            if is_dir:
                raise ValueError(f"{_decode(path)!r} is a directory, not a file")
            del tree[name]
            existing, is_dir = None, False
        if not children:
            continue
        if existing is not None and not is_dir:
            raise ValueError(f"{_decode(path)!r} is a file, not a directory")
        sub = _apply(store, existing[1] if existing else None, children, new, path + b"/")
        if sub == _EMPTY_TREE_ID:
            if name in tree:
                del tree[name]
        else:
            tree.add(name, stat.S_IFDIR, sub)
    new[tree.id] = tree
    return tree.id


_EMPTY_TREE_ID = Tree().id


def _pack_data(
    store: BaseObjectStore, built: Mapping[ObjectID, ShaFile]
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
        records = (full_unpacked_object(built.get(oid) or store[oid]) for oid, _hint in object_ids)
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
