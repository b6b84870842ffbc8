"""Where a ``GitRemote``'s objects live locally: the fetch cache or the remote read in place.

An HTTP remote fetches into a cache (in memory, or a bare repository on disk) whose
remote-tracking refs make later fetches incremental. A local remote is read in place;
the commits built and not yet pushed stay in a ``PendingStore`` layered over it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from dulwich.object_store import (
    BaseObjectStore,
    ObjectStoreGraphWalker,
)
from dulwich.objects import (
    ZERO_SHA,
    Commit,
    ObjectID,
    ShaFile,
    sha_to_hex,
)
from dulwich.refs import Ref
from dulwich.repo import BaseRepo, MemoryRepo, Repo

from fgd_core.adapters.git_objects import (
    RawObject,
)

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


def open_cache(cache_dir: str | Path | None) -> BaseRepo:
    if cache_dir is None:
        return _MemoryCache()
    path = Path(cache_dir)
    if (path / "objects").is_dir():
        return _DiskCache(str(path))
    path.mkdir(parents=True, exist_ok=True)
    return _DiskCache.init_bare(str(path))


class PendingStore(BaseObjectStore):
    """A local remote's object store seen through the commits built and not yet pushed.

    Reads go to the built objects first, then to the remote repository's own store (once
    a fetch has opened it). Nothing is written to the remote until ``GitRemote.push``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.base: BaseObjectStore | None = None
        # Built objects as (type number, raw bytes): no parsed trees kept alive.
        self._built: dict[ObjectID, RawObject] = {}
        # commit id -> ids of the objects that commit() built for it (all reachable from it)
        self._reaches: dict[ObjectID, list[ObjectID]] = {}

    def add_built(self, objects: Mapping[ObjectID, RawObject], commit: Commit) -> None:
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

    def unpushed_from(self, head: ObjectID) -> dict[ObjectID, RawObject]:
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


class InPlaceRepo:
    """A local remote read in place: the repository opens on first use, then stays open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.object_store = PendingStore()
        self._repo: Repo | None = None

    def open(self) -> Repo:
        if self._repo is None:
            self._repo = Repo(self.path)
            self.object_store.base = self._repo.object_store
        return self._repo


def read_ref(repo: Repo, ref: Ref) -> ObjectID | None:
    """Where a branch points (symbolic refs followed), None when it does not exist."""
    try:
        sha = repo.refs[ref]
    except KeyError:
        return None
    return None if sha in (None, ZERO_SHA) else sha


def tracking_ref(ref: Ref) -> Ref:
    return Ref(_TRACKING + ref.removeprefix(b"refs/heads/"))
