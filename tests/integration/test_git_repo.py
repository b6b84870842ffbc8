"""The git adapter against real repositories: local bare/non-bare, file:// and smart HTTP."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from fgd_core.adapters.git_repo import (
    MODE_EXECUTABLE,
    MODE_SYMLINK,
    GitRemote,
    PushRejectedError,
    RemoteMovedError,
)
from fgd_core.errors import (
    GitHubAuthenticationError,
    GitHubConnectionError,
    GitHubNotFoundError,
    GitHubRateLimitError,
)
from tests.gitserver import GitHTTPServer, git, git_http_server, init_bare, seed_repo  # noqa: F401

AUTHOR = "FGD Sync <fgd@example.com>"
TOKEN = "ghs_S3cretTok3nValue"
SEED = {
    "README.md": b"# fabric\n",
    "tools/check.sh": b"#!/bin/sh\nexit 0\n",
    "gitops/raw/vpc-a.yaml": b"kind: VPC\nmetadata:\n  name: vpc-a\n",
    "gitops/managed/vpcs/vpc-b.yaml": b"kind: VPC\nmetadata:\n  name: vpc-b\n",
}


@pytest.fixture
def server(git_http_server: GitHTTPServer) -> GitHTTPServer:  # noqa: F811
    return git_http_server


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    repo = init_bare(tmp_path / "srv" / "fabric.git")
    seed_repo(repo, SEED, executable=("tools/check.sh",))
    return repo


def tree_of(repo: Path, rev: str = "main") -> dict[str, tuple[str, str]]:
    """path -> (mode, blob id), read with the git CLI."""
    out = git("-C", repo, "ls-tree", "-r", rev)
    rows = (line.split(None, 3) for line in out.splitlines())
    return {path: (mode, sha) for mode, _type, sha, path in rows}


def other_push(repo: Path, path: str, data: bytes) -> str:
    """Someone else pushes a commit to main with the git CLI; returns its sha."""
    return seed_repo(repo, {path: data}, message="someone else")


# --- fetch, commit, push ------------------------------------------------------------


@pytest.mark.parametrize("transport", ["path", "file", "http"])
def test_fetch_commit_push_preserves_other_files(transport, bare, server):
    url = {"path": str(bare), "file": bare.as_uri(), "http": server.url("fabric.git")}[transport]
    before = tree_of(bare)
    remote = GitRemote(url)
    snap = remote.fetch("main")

    assert snap.head == git("-C", bare, "rev-parse", "main").strip()
    files = {f.path: f for f in snap.files("gitops/")}
    assert set(files) == {"gitops/raw/vpc-a.yaml", "gitops/managed/vpcs/vpc-b.yaml"}
    vpc_a = files["gitops/raw/vpc-a.yaml"]
    assert vpc_a.blob_id == before["gitops/raw/vpc-a.yaml"][1]
    assert vpc_a.size == len(SEED["gitops/raw/vpc-a.yaml"])
    assert snap.read(vpc_a) == SEED["gitops/raw/vpc-a.yaml"]
    assert snap.get("tools/check.sh").mode == MODE_EXECUTABLE

    sha = remote.commit(
        snap,
        {"gitops/managed/vpcs/vpc-a.yaml": b"managed: a\n", "tools/check.sh": b"#!/bin/sh\n"},
        "fgd: ingest vpc-a",
        AUTHOR,
        timestamp=1_700_000_000,
    )
    remote.push(sha, "main", snap.head)

    assert git("-C", bare, "rev-parse", "main").strip() == sha
    log = git("-C", bare, "log", "--format=%H %P|%an <%ae>|%at|%s", "main").splitlines()
    assert log[0] == f"{sha} {snap.head}|{AUTHOR}|1700000000|fgd: ingest vpc-a"
    assert len(log) == 2
    assert git("-C", bare, "show", "main:gitops/managed/vpcs/vpc-a.yaml") == "managed: a\n"
    after = tree_of(bare)
    for path in ("README.md", "gitops/raw/vpc-a.yaml", "gitops/managed/vpcs/vpc-b.yaml"):
        assert after[path] == before[path]
    assert after["tools/check.sh"][0] == "100755"  # the executable bit survives a rewrite
    git("-C", bare, "fsck", "--strict")


def test_cache_dir_makes_fetches_incremental(bare, server, tmp_path):
    remote = GitRemote(server.url("fabric.git"), cache_dir=tmp_path / "cache")
    first = remote.fetch("main")
    moved = other_push(bare, "gitops/raw/new.yaml", b"x: 1\n")
    second = GitRemote(server.url("fabric.git"), cache_dir=tmp_path / "cache").fetch("main")
    assert second.head == moved != first.head
    assert second.read("gitops/raw/new.yaml") == b"x: 1\n"
    assert (tmp_path / "cache" / "refs" / "remotes" / "origin" / "main").is_file()


def test_delete_and_rename(bare):
    remote = GitRemote(bare)
    snap = remote.fetch("main")
    sha = remote.commit(
        snap,
        {
            "gitops/raw/vpc-a.yaml": None,  # archived: delete + write
            "gitops/archive/vpc-a.yaml": snap.read("gitops/raw/vpc-a.yaml"),
            "README.md": None,
            "gitops/does-not-exist.yaml": None,  # deleting a missing path is a no-op
        },
        "fgd: archive",
        AUTHOR,
        timestamp=1_700_000_000,
    )
    remote.push(sha, "main", snap.head)
    changes = git("-C", bare, "show", "--format=", "--name-status", "-M", "main")
    assert sorted(changes.splitlines()) == sorted(
        ["D\tREADME.md", "R100\tgitops/raw/vpc-a.yaml\tgitops/archive/vpc-a.yaml"]
    )
    # An emptied directory disappears (git stores no empty trees).
    assert "gitops/raw" not in git("-C", bare, "ls-tree", "-r", "-t", "--name-only", "main")


def test_commit_is_deterministic_and_skips_no_op(bare):
    remote = GitRemote(bare)
    snap = remote.fetch("main")
    args = (snap, {"gitops/x.yaml": b"x\n"}, "msg", AUTHOR)
    assert remote.commit(*args, timestamp=1) == remote.commit(*args, timestamp=1)
    assert remote.commit(*args, timestamp=1) != remote.commit(*args, timestamp=2)
    same = {"README.md": SEED["README.md"], "gone.txt": None}
    assert remote.commit(snap, same, "nothing", AUTHOR) == snap.head


@pytest.mark.parametrize(
    "changes",
    [
        {"../escape": b""},
        {"/abs": b""},
        {"gitops//x": b""},
        {".git/config": b""},
        {"gitops": b"a directory"},
        {"README.md/inside": b"below a file"},
        {"gitops": None},
        {"a/b": b"", "a/b/c": b""},
    ],
)
def test_commit_rejects_bad_paths(bare, changes):
    remote = GitRemote(bare)
    with pytest.raises(ValueError):
        remote.commit(remote.fetch("main"), changes, "bad", AUTHOR)


def test_replace_file_by_directory_in_one_commit(bare):
    remote = GitRemote(bare)
    snap = remote.fetch("main")
    sha = remote.commit(snap, {"README.md": None, "README.md/x": b"x\n"}, "m", AUTHOR)
    remote.push(sha, "main", snap.head)
    assert git("-C", bare, "show", "main:README.md/x") == "x\n"


# --- compare-and-swap push ----------------------------------------------------------


@pytest.mark.parametrize("transport", ["path", "http"])
def test_remote_moved_between_fetch_and_push(transport, bare, server):
    remote = GitRemote(str(bare) if transport == "path" else server.url("fabric.git"))
    snap = remote.fetch("main")
    sha = remote.commit(snap, {"gitops/managed/x.yaml": b"ours\n"}, "ours", AUTHOR)
    theirs = other_push(bare, "gitops/raw/theirs.yaml", b"theirs\n")

    with pytest.raises(RemoteMovedError) as info:
        remote.push(sha, "main", snap.head)
    assert info.value.details["actual_sha"] == theirs
    assert info.value.details["expected_sha"] == snap.head
    assert git("-C", bare, "rev-parse", "main").strip() == theirs  # their push survives

    # The caller rebuilds on the new base and retries.
    fresh = remote.fetch("main")
    sha2 = remote.commit(fresh, {"gitops/managed/x.yaml": b"ours\n"}, "ours", AUTHOR)
    remote.push(sha2, "main", fresh.head)
    assert git("-C", bare, "log", "--format=%s", "main").splitlines() == [
        "ours",
        "someone else",
        "seed",
    ]


def test_http_push_loses_race_inside_receive_pack(bare, server):
    """The remote moves after the ref advertisement: git's own CAS rejects our update."""
    remote = GitRemote(server.url("fabric.git"))
    snap = remote.fetch("main")
    sha = remote.commit(snap, {"gitops/x.yaml": b"ours\n"}, "ours", AUTHOR)
    moved: list[str] = []

    def race(method: str, path: str) -> None:
        if method == "POST" and path.endswith("git-receive-pack") and not moved:
            moved.append(other_push(bare, "gitops/raw/race.yaml", b"race\n"))

    server.before_backend = race
    with pytest.raises(RemoteMovedError):
        remote.push(sha, "main", snap.head)
    assert git("-C", bare, "rev-parse", "main").strip() == moved[0]


def test_push_refuses_to_force(bare):
    remote = GitRemote(bare)
    snap = remote.fetch("main")
    orphan = remote.commit(remote.fetch("nope"), {"a": b"a"}, "orphan", AUTHOR)
    with pytest.raises(ValueError, match="force"):
        remote.push(orphan, "main", snap.head)
    with pytest.raises(ValueError):
        remote.push("0" * 40, "main", snap.head)


def test_non_bare_remote_refuses_checked_out_branch(tmp_path):
    work = tmp_path / "work"
    git("init", "-q", "-b", "main", work)
    (work / "gitops").mkdir()
    (work / "gitops" / "a.yaml").write_bytes(b"a\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "seed", cwd=work)
    remote = GitRemote(work.as_uri())
    snap = remote.fetch("main")
    assert [f.path for f in snap.files("gitops")] == ["gitops/a.yaml"]
    sha = remote.commit(snap, {"gitops/b.yaml": b"b\n"}, "b", AUTHOR)
    with pytest.raises(PushRejectedError):
        remote.push(sha, "main", snap.head)
    remote.push(sha, "fgd-sync", None)  # a branch that is not checked out is fine
    assert git("-C", work, "show", "fgd-sync:gitops/b.yaml") == "b\n"


# --- empty repositories, missing branches, symlinks -------------------------------------


@pytest.mark.parametrize("transport", ["path", "http"])
def test_empty_repository_first_commit_creates_branch(transport, tmp_path, server):
    repo = init_bare(tmp_path / "srv" / "empty.git")
    remote = GitRemote(str(repo) if transport == "path" else server.url("empty.git"))
    snap = remote.fetch("main")
    assert (snap.head, snap.files(), snap.get("x")) == (None, (), None)
    sha = remote.commit(snap, {"gitops/raw/.gitkeep": b""}, "init", AUTHOR, timestamp=5)
    remote.push(sha, "main", None)
    assert git("-C", repo, "log", "--format=%H %P", "main").strip() == sha  # root commit
    with pytest.raises(RemoteMovedError):  # "must not exist" is checked too
        remote.push(remote.commit(snap, {"x": b""}, "again", AUTHOR), "main", None)


def test_missing_branch_is_empty_snapshot(bare):
    remote = GitRemote(bare)
    snap = remote.fetch("feature/fgd")
    assert snap.head is None and snap.files() == ()
    sha = remote.commit(snap, {"gitops/a.yaml": b"a\n"}, "first", AUTHOR)
    remote.push(sha, "feature/fgd", None)
    assert git("-C", bare, "ls-tree", "-r", "--name-only", "feature/fgd").split() == [
        "gitops/a.yaml"
    ]


def test_symlink_is_reported_not_followed(tmp_path):
    repo = init_bare(tmp_path / "sym.git")
    seed_repo(
        repo,
        {"secret.txt": b"do not read\n", "gitops/raw/ok.yaml": b"a: 1\n"},
        symlinks={"gitops/raw/link.yaml": "../../secret.txt"},
    )
    snap = GitRemote(repo).fetch("main")
    link = snap.get("gitops/raw/link.yaml")
    assert link.mode == MODE_SYMLINK and link.is_symlink and not link.is_regular
    assert snap.read(link) == b"../../secret.txt"
    assert [f.is_symlink for f in snap.files("gitops/raw/")] == [True, False]


# --- HTTP authentication and failures ----------------------------------------------------


def test_token_is_sent_as_basic_auth(bare, server, caplog):
    caplog.set_level(logging.DEBUG)
    server.token = TOKEN
    remote = GitRemote(server.url("fabric.git"), token=TOKEN)
    snap = remote.fetch("main")
    remote.push(remote.commit(snap, {"a": b"a"}, "a", AUTHOR), "main", snap.head)
    assert server.auth_headers and all(h and h.startswith("Basic ") for h in server.auth_headers)
    assert TOKEN not in repr(remote) and TOKEN not in repr(remote._client.__dict__)
    assert "fgd_core.adapters.git_repo" in caplog.text and TOKEN not in caplog.text


@pytest.mark.parametrize("given", [None, "wrong-token", "url"])
def test_missing_or_wrong_token_is_fgd_4002_and_never_leaks(given, bare, server, caplog):
    caplog.set_level(logging.DEBUG)
    server.token = TOKEN
    url = server.url("fabric.git")
    if given == "url":  # a token in the URL is honoured, and redacted everywhere
        server.token = "the-right-one"
        url = url.replace("http://", f"http://x-access-token:{TOKEN}@")
    remote = GitRemote(url, token=None if given == "url" else given)
    with pytest.raises(GitHubAuthenticationError) as info:
        remote.fetch("main")
    err = info.value
    assert err.code == "FGD_4002" and err.details["http_status"] == 401
    secrets = [TOKEN] + ([given] if given == "wrong-token" else [])
    for text in (str(err), repr(err), repr(err.details), caplog.text, repr(remote), remote.url):
        assert not any(secret in text for secret in secrets)


def test_403_is_auth_but_exhausted_rate_limit_is_4003(bare, server):
    remote = GitRemote(server.url("fabric.git"))
    server.fail_next(403)
    with pytest.raises(GitHubAuthenticationError):
        remote.fetch("main")
    reset = int(time.time()) + 120
    server.fail_next(403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    with pytest.raises(GitHubRateLimitError) as info:
        remote.fetch("main")
    assert info.value.code == "FGD_4003"
    assert 110 <= info.value.details["retry_after_seconds"] <= 120


def test_429_with_retry_after_is_4003(bare, server):
    remote = GitRemote(server.url("fabric.git"))
    server.fail_next(429, count=2, headers={"Retry-After": "7"})
    for _ in range(2):
        with pytest.raises(GitHubRateLimitError) as info:
            remote.fetch("main")
        assert info.value.details["retry_after_seconds"] == 7
    assert remote.fetch("main").head is not None  # the limit is over


def test_429_during_push_is_4003(bare, server):
    remote = GitRemote(server.url("fabric.git"))
    snap = remote.fetch("main")
    server.fail_next(429, headers={"Retry-After": "3"})
    with pytest.raises(GitHubRateLimitError):
        remote.push(remote.commit(snap, {"a": b"a"}, "a", AUTHOR), "main", snap.head)
    assert git("-C", bare, "rev-parse", "main").strip() == snap.head


def test_not_found_is_4004(bare, server, tmp_path):
    with pytest.raises(GitHubNotFoundError) as info:
        GitRemote(server.url("missing.git")).fetch("main")
    assert info.value.code == "FGD_4004"
    server.fail_next(404)
    with pytest.raises(GitHubNotFoundError):
        GitRemote(server.url("fabric.git")).fetch("main")
    with pytest.raises(GitHubNotFoundError):
        GitRemote(tmp_path / "nowhere").fetch("main")


def test_server_down_is_4001(tmp_path):
    with GitHTTPServer(tmp_path / "gone") as srv:
        url = srv.url("fabric.git")
    with pytest.raises(GitHubConnectionError) as info:
        GitRemote(url, connection_timeout=1).fetch("main")
    assert info.value.code == "FGD_4001"


def test_dropped_connection_is_4001(bare, server):
    server.drop_next()
    with pytest.raises(GitHubConnectionError):
        GitRemote(server.url("fabric.git")).fetch("main")
    assert GitRemote(server.url("fabric.git")).fetch("main").head is not None


def test_read_timeout_is_4001(bare, server):
    server.latency = 1.0
    started = time.monotonic()
    with pytest.raises(GitHubConnectionError):
        GitRemote(server.url("fabric.git"), read_timeout=0.2).fetch("main")
    assert time.monotonic() - started < 0.9


def test_server_error_is_4001(bare, server):
    server.fail_next(502)
    with pytest.raises(GitHubConnectionError) as info:
        GitRemote(server.url("fabric.git")).fetch("main")
    assert info.value.details["http_status"] == 502


def test_push_declined_by_hook_is_rejected_not_moved(bare, server):
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
    hook.chmod(0o755)
    remote = GitRemote(server.url("fabric.git"))
    snap = remote.fetch("main")
    with pytest.raises(PushRejectedError) as info:
        remote.push(remote.commit(snap, {"a": b"a"}, "a", AUTHOR), "main", snap.head)
    assert info.value.code == "FGD_4002"
    assert git("-C", bare, "rev-parse", "main").strip() == snap.head
