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

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dulwich.client import LocalGitClient
from dulwich.errors import GitProtocolError, NotGitRepository, SendPackError
from dulwich.object_store import DiskObjectStore
from dulwich.objects import (
    ZERO_SHA,
    Commit,
    ObjectID,
    ShaFile,
)
from dulwich.refs import Ref
from dulwich.repo import BaseRepo, Repo

from fgd_core.adapters.git_http import DEFAULT_USERNAME, GitHttpClient, redact_url
from fgd_core.adapters.git_local_store import (
    InPlaceRepo,
    PendingStore,
    open_cache,
    read_ref,
    tracking_ref,
)
from fgd_core.adapters.git_objects import (
    EMPTY_TREE_ID,
    MODE_EXECUTABLE,
    MODE_FILE,
    MODE_SUBMODULE,
    MODE_SYMLINK,
    RawObject,
    descends_from,
    pack_data,
    to_object_id,
    write_pack,
)
from fgd_core.adapters.git_snapshot import FileEntry, Snapshot, SnapshotBlobs
from fgd_core.adapters.git_tree_edit import apply_changes, nest_changes, validate_path
from fgd_core.errors import (
    DirectoryPermissionError,
    FGDErrorCodes,
    GitHubConnectionError,
    GitHubError,
    GitHubNotFoundError,
)

# The adapter's public face: callers import the git types from here; the snapshot reader,
# tree editor, object helpers and local stores are split out by job (git_snapshot,
# git_tree_edit, git_objects, git_local_store).
__all__ = [
    "MODE_EXECUTABLE",
    "MODE_FILE",
    "MODE_SUBMODULE",
    "MODE_SYMLINK",
    "FileEntry",
    "GitRemote",
    "PushRejectedError",
    "RemoteMovedError",
    "Snapshot",
    "SnapshotBlobs",
]

logger = logging.getLogger(__name__)


class RemoteMovedError(GitHubError):
    """The remote branch no longer points at the expected commit: rebuild on the new base."""

    code = FGDErrorCodes.SYNC_FAILED


class PushRejectedError(GitHubError):
    """The remote refused the update for another reason (protected branch, hook, checkout)."""

    code = FGDErrorCodes.GITHUB_AUTHENTICATION_FAILED


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
        self._local: BaseRepo | InPlaceRepo = (
            InPlaceRepo(self._path) if self.is_local else open_cache(cache_dir)
        )
        # Objects of the commits built since the last push, as built: push sends them
        # without reading them back from the store (parse, serialize) one by one.
        self._unpushed: dict[ObjectID, RawObject] = {}

    def __repr__(self) -> str:
        return f"GitRemote({self.url!r})"

    @property
    def is_local(self) -> bool:
        return isinstance(self._client, LocalGitClient)

    def fetch(self, branch: str) -> Snapshot:
        ref = _branch_ref(branch)
        if isinstance(self._local, InPlaceRepo):
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
        self._local.refs[tracking_ref(ref)] = head
        commit = self._local.object_store[head]
        assert isinstance(commit, Commit)
        logger.info("fetched %s: %s at %s", self.url, branch, head.decode())
        return Snapshot(branch, head.decode(), commit.tree.decode(), self._local.object_store)

    def close(self) -> None:
        """Close the repository files this remote holds open (a local remote's pack files,
        the cache's); the remote opens them again on its next use."""
        local = self._local
        if isinstance(local, InPlaceRepo):
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
            if isinstance(self._local, InPlaceRepo):
                head = read_ref(self._local.open(), ref)
            else:
                head = self._client.get_refs(self._path, ref_prefix=[ref]).refs.get(ref)
        return None if head is None or head == ZERO_SHA else head.decode()

    def _fetch_in_place(self, branch: str, ref: Ref, local: InPlaceRepo) -> Snapshot:
        # Zero-copy: the snapshot reads the remote's object store itself. Objects are
        # immutable and the commit is reachable from the branch, so nothing needs copying.
        with self._translated("fetch"):
            repo = local.open()
            head = read_ref(repo, ref)
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
        nested = nest_changes({validate_path(p): data for p, data in changes.items()})
        new: dict[ObjectID, RawObject] = {}
        present: set[ObjectID] = set()
        base_tree = to_object_id(snapshot.tree_id) if snapshot.tree_id else None
        tree_id = apply_changes(store, base_tree, nested, new, present)
        if snapshot.head is not None and tree_id.decode() == snapshot.tree_id:
            return snapshot.head
        when = int(time.time()) if timestamp is None else int(timestamp)
        commit = Commit()
        commit.tree = tree_id
        commit.parents = [to_object_id(snapshot.head)] if snapshot.head else []
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
        if tree_id != EMPTY_TREE_ID:
            new.pop(EMPTY_TREE_ID, None)  # an emptied directory: dropped from its parent
        new[commit.id] = (Commit.type_num, commit.as_raw_string())
        if isinstance(store, PendingStore):
            store.add_built(new, commit)  # in memory until pushed
            return commit.id.decode()
        if isinstance(store, DiskObjectStore):
            # One pack for the whole commit, indexed from what was written (dulwich's
            # add_objects re-reads and re-inflates the pack it has just written).
            write_pack(store, new)
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
        new, old = to_object_id(sha), to_object_id(expected_old_sha) if expected_old_sha else None
        if new == old:
            return
        if not descends_from(self._local.object_store, new, old):
            raise ValueError(f"{sha} does not descend from {expected_old_sha}; refusing to force")
        if isinstance(self._local, InPlaceRepo):
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
                    self._path, update_refs, pack_data(store, self._unpushed)
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
        self._local.refs[tracking_ref(ref)] = new
        self._unpushed.clear()
        logger.info("pushed %s to %s %s", sha, self.url, branch)

    def _push_in_place(
        self,
        local: InPlaceRepo,
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
            current = read_ref(repo, ref)
            if current != old:
                raise self._moved(branch, expected_old_sha, current)
            objects = local.object_store.unpushed_from(new)
            if objects:
                write_pack(repo.object_store, objects)
                local.object_store.forget(list(objects))  # the remote has them now
            if not repo.refs.set_if_equals(ref, old or ZERO_SHA, new):
                # Someone else updated the branch between our check and the CAS.
                current = read_ref(repo, ref)
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


def _branch_ref(branch: str) -> Ref:
    name = branch.removeprefix("refs/heads/")
    if not name or name.startswith("/") or ".." in name or name.endswith((".lock", "/")):
        raise ValueError(f"invalid branch name {branch!r}")
    return Ref(b"refs/heads/" + name.encode())

