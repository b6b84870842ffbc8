"""The pure repository rules: locations and their normalization, prefixes, branch names
(checked against the real ``git check-ref-format --branch``) and GitOps directories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fgd_core.application.repository_policy import RepositoryPolicy, place_of, token_allowed
from fgd_core.domain.repository import (
    Location,
    LocationError,
    branch_problem,
    directory_problem,
    parse_location,
    parse_prefix,
    within,
)


@pytest.mark.parametrize(("given_", "text"), [
    ("https://GitHub.COM:443/acme//r.git/", "https://github.com/acme/r.git"),
    ("HTTPS://github.com./acme/./x/../r", "https://github.com/acme/r"),
    ("https://github.com/acme/%2e%2e/evil", "https://github.com/evil"),
    ("http://127.0.0.1:80/x", "http://127.0.0.1/x"),
    ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
    ("https://[::1]:8443/x", "https://[::1]:8443/x"),
    ("https://github.com", "https://github.com"),
    ("file:///srv/git/../git/lab.git/", "/srv/git/lab.git"),
    ("file://localhost/srv/a%20b", "/srv/a b"),
    ("/srv//git/./lab.git/", "/srv/git/lab.git"),
    ("//srv/git", "/srv/git"),
    ("repo.git", "repo.git"),
])
def test_locations_are_normalized(given_: str, text: str) -> None:
    assert parse_location(given_).text() == text


@pytest.mark.parametrize("value", [
    "ssh://git@github.com/acme/r.git", "git://github.com/r", "ext::sh -c id", "fd::3",
    "git@github.com:acme/r.git", "github.com:acme/r", "ftp://h/r", "c:/x",
    "https://user:pw@github.com/r", "https://user@github.com/r", "https://h/r?token=x",
    "https://h/r#frag", "https://h/r?", "https:///r", "https://h:0/r", "https://h:99999/r",
    "https://[::1/r", "https://exa mple.com/r", "https://bücher.de/r", "https://h\\r",
    "file://otherhost/srv/r", "file:relative", " /srv/r", "/srv/r ", "", "https://h/%00",
])
def test_unusable_repositories_are_refused(value: str) -> None:
    with pytest.raises(LocationError):
        parse_location(value)


def test_identity_ignores_what_git_servers_ignore() -> None:
    same = {parse_location(u).identity() for u in (
        "https://github.com/acme/r.git", "http://github.com/acme/r", "https://GITHUB.com/acme/r/")}
    assert len(same) == 1
    assert parse_location("/srv/r.git").identity() != parse_location("/srv/r").identity()
    assert parse_location("https://h/Acme/r").identity() != parse_location("https://h/acme/r").identity()


@pytest.mark.parametrize(("prefix", "value", "inside"), [
    ("https://", "https://anything.example/x", True),
    ("https://", "http://anything.example/x", False),
    ("https://github.com/acme/", "https://github.com/acme/r.git", True),
    ("https://github.com/acme", "https://github.com/acme/r.git", True),
    ("https://github.com/acme/", "https://github.com/acme", True),
    ("https://github.com/acme/", "https://github.com/acme-evil/r", False),
    ("https://github.com/acme/", "https://github.com.evil/acme/r", False),
    ("https://github.com/acme/", "https://github.com:8443/acme/r", False),
    ("https://github.com", "https://GitHub.com:443/x", True),
    ("/srv/git/", "/srv/git/lab.git", True),
    ("/srv/git/", "/srv/gitx/lab.git", False),
    ("/srv/git/", "/srv/git/../etc", False),
    ("file:///srv/git", "/srv/git/a", True),
    ("/", "/anything", True),
    ("/srv/git/", "https://srv/git/x", False),
])
def test_prefixes_match_whole_hosts_and_path_components(
    prefix: str, value: str, inside: bool
) -> None:
    assert within(parse_location(value), parse_prefix(prefix)) is inside


@pytest.mark.parametrize("prefix", ["ssh://h/", "relative/dir", "https://u:p@h/", "ext::x"])
def test_prefixes_the_policy_cannot_use_are_refused(prefix: str) -> None:
    with pytest.raises(LocationError):
        parse_prefix(prefix)


def test_symlinks_are_resolved_on_both_sides(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "real" / "escape").symlink_to(tmp_path / "outside")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    policy = RepositoryPolicy([str(tmp_path / "alias")])  # a prefix through a symlink
    policy.check(str(tmp_path / "real" / "lab.git"))
    with pytest.raises(Exception) as info:
        policy.check(str(tmp_path / "real" / "escape" / "lab.git"))
    assert info.value.details["field"] == "repository"  # type: ignore[attr-defined]
    assert place_of(str(tmp_path / "alias" / "x.git"), "refs/heads/main", "gitops") == (
        str(tmp_path / "real" / "x.git"), "main", "gitops")


@pytest.mark.parametrize(("url", "hosts", "sent"), [
    ("https://github.com/acme/r.git", ["github.com"], True),
    ("https://GitHub.com:443/acme/r.git", ["github.com"], True),
    ("https://github.com:8443/acme/r.git", ["github.com"], False),
    ("https://ghe.local:8443/r", ["ghe.local:8443"], True),
    ("https://github.com/r", ["github.com:443"], True),
    ("http://github.com/acme/r.git", ["github.com"], False),
    ("https://github.com.evil/r", ["github.com"], False),
    ("http://127.0.0.1:9/x.git", ["127.0.0.1:9"], False),
    ("/srv/git/r", ["github.com"], False),
    ("https://x-access-token:t@github.com/r", ["github.com"], False),
])
def test_the_token_goes_only_over_https_to_its_hosts(url: str, hosts: list[str],
                                                    sent: bool) -> None:
    assert token_allowed(url, hosts) is sent


@pytest.mark.parametrize(("directory", "ok"), [
    ("gitops", True), ("a/b.c/d-e_f", True), (".hnp-like/x", True), ("..a", True),
    (".", False), ("..", False), (".git", False), ("a/.Git/b", False), ("a/./b", False),
    ("/abs", False), ("a/", False), ("a//b", False), ("", False), ("a b", False),
])
def test_gitops_directory_is_a_clean_relative_path(directory: str, ok: bool) -> None:
    assert (directory_problem(directory) is None) is ok


def _git_accepts(name: str, cwd: Path) -> bool:
    done = subprocess.run(["git", "check-ref-format", "--branch", name], cwd=cwd,
                          capture_output=True, check=False)
    return done.returncode == 0


branch_names = st.lists(
    st.sampled_from(list("ab/.-@{}~^:?*[\\ \x7f\x01é") + [".lock", "HEAD", "refs/heads/"]),
    max_size=8,
).map("".join)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=branch_names)
@example(name="refs/heads/../../HEAD")
@example(name="a.lock/b")
@example(name="-x")
@example(name="x/HEAD")
def test_branch_names_are_judged_as_git_check_ref_format_does(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if "\x00" in name:
        return  # cannot be passed to a process; refused as a control character
    ours = branch_problem(name) is None
    # git reads "@" as HEAD, which is not a branch name: we refuse it outright
    if name == "@":
        assert not ours
        return
    assert ours == _git_accepts(name, tmp_path_factory.getbasetemp()), name


def test_location_text_round_trips() -> None:
    location = Location("https", "github.com", "/acme/r.git")
    assert parse_location(location.text()) == location
