"""GitHub push deliveries: which fabrics a push concerns (pure), and the WebhookDelivery
aggregate that makes each ``X-GitHub-Delivery`` count once.

The delivery's aggregate id is derived from GitHub's delivery id, so recording the same
delivery twice conflicts in the event store (IntegrityError): a redelivery triggers nothing.
Deliveries are not about one fabric: their events carry envelope ``fabric_id`` 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid5

from eventsourcing.domain import event

from fgd_core.domain.base import ID_NAMESPACE, FGDAggregate

DELIVERY_NAMESPACE = uuid5(ID_NAMESPACE, "github-webhook-delivery")
# GitHub lists at most this many commits in a push payload; a full list may be truncated.
GITHUB_COMMIT_CAP = 20
BRANCH_PREFIX = "refs/heads/"
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?([^:/\s]+):(?!//)(.+)$")  # git@github.com:org/repo.git


def delivery_uuid(delivery_id: str) -> UUID:
    return uuid5(DELIVERY_NAMESPACE, delivery_id)


class WebhookDelivery(FGDAggregate):
    """One GitHub delivery, recorded once with what it started (never its body or signature)."""

    @staticmethod
    def create_id(delivery_id: str, **_: Any) -> UUID:
        return delivery_uuid(delivery_id)

    @event("Received")
    def __init__(
        self,
        delivery_id: str,
        correlation_id: str,
        github_event: str,
        repository: str,
        ref: str,
        after: str,
        triggered: list[dict[str, Any]],
        coalesced: list[int],
        ignored: str | None,
        fabric_id: int = 0,
    ) -> None:
        self.fabric_id = 0
        self.correlation_id = correlation_id
        self.delivery_id = delivery_id
        self.github_event = github_event
        self.repository = repository
        self.ref = ref
        self.after = after
        self.triggered = list(triggered)
        self.coalesced = list(coalesced)
        self.ignored = ignored


# -- matching a push to fabrics (no I/O) ----------------------------------------------------


def repository_key(url: Any) -> str | None:
    """``host/owner/repo`` of a remote repository URL, compared loosely: scheme, credentials,
    default ports, ``.git`` and trailing ``/`` dropped, case folded. None for a local path or
    ``file://`` URL (they never match a GitHub repository) and for anything unparsable."""
    if not isinstance(url, str) or not url.strip():
        return None
    text = url.strip()
    if "://" in text:
        try:
            parts = urlsplit(text)
            host, port = parts.hostname, parts.port
        except ValueError:
            return None
        if parts.scheme.lower() == "file" or not host:
            return None
        if port and port not in (22, 80, 443, 9418):
            host = f"{host}:{port}"
        path = parts.path
    else:
        match = _SCP_LIKE.match(text)
        if match is None or text.startswith((".", "/", "~")):
            return None
        host, path = match.group(1), match.group(2)
    path = path.strip("/")
    path = path.removesuffix(".git").rstrip("/")
    if not path:
        return None
    return f"{host}/{path}".lower()


def push_repository_keys(repository: Mapping[str, Any]) -> set[str]:
    """Every key under which the push payload's ``repository`` can be named."""
    keys = {
        key
        for field in ("clone_url", "ssh_url", "html_url", "git_url", "svn_url", "url")
        if (key := repository_key(repository.get(field))) is not None
    }
    full_name = repository.get("full_name")
    if isinstance(full_name, str) and full_name.strip("/"):
        hosts = {"github.com"} | {k.split("/", 1)[0] for k in keys}
        keys |= {f"{host}/{full_name.strip('/')}".lower() for host in hosts}
    return keys


def branch_of(ref: Any) -> str | None:
    """``refs/heads/main`` → ``main``; None for tags and anything else."""
    if isinstance(ref, str) and ref.startswith(BRANCH_PREFIX):
        return ref[len(BRANCH_PREFIX):] or None
    return None


def touched_paths(payload: Mapping[str, Any]) -> tuple[set[str], bool]:
    """The paths a push adds, modifies or removes, and whether that list is complete
    (GitHub truncates ``commits`` at 20: a full list may hide more changes)."""
    # A signed delivery is still client input: anything but a list counts as none.
    listed = payload.get("commits")
    commits = [c for c in listed if isinstance(c, Mapping)] if isinstance(listed, list) else []
    head = payload.get("head_commit")
    paths: set[str] = set()
    for commit in [*commits, *([head] if isinstance(head, Mapping) else [])]:
        for key in ("added", "modified", "removed"):
            changed = commit.get(key)
            if isinstance(changed, list):
                paths.update(p for p in changed if isinstance(p, str))
    return paths, len(commits) < GITHUB_COMMIT_CAP


def touches_directory(paths: Iterable[str], directory: str) -> bool:
    directory = directory.strip("/")
    if directory in ("", "."):
        return any(True for _ in paths)
    prefix = directory + "/"
    return any(p.lstrip("/").startswith(prefix) for p in paths)


def fabric_matches(fabric: Any, keys: set[str], branch: str) -> bool:
    """Same repository (loosely) and same branch."""
    key = repository_key(fabric.repository)
    return key is not None and key in keys and fabric.branch == branch
