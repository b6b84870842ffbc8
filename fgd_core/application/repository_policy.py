"""Where fabrics may point, and where the git token may go: the service-layer half of the
repository rules (the pure half — transports, branch names, directories — is in
``fgd_core.domain.repository`` and applies on every path).

* ``RepositoryPolicy``: the allowed prefixes (``fgd.repositories.allowed``). The composition
  roots of the processes that take settings from other people (the API; the bus workers)
  give one to their Application; the CLI and the library act with the operator's own rights
  and give none.
* ``place_of``: the normalized repository + branch + directory two fabrics may not share
  (symlinks of local paths resolved).
* ``token_allowed``: the git token goes only over https to ``github.token_hosts``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fgd_core.domain.repository import (
    Location,
    LocationError,
    parse_location,
    parse_prefix,
    within,
)
from fgd_core.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from fgd_core.application.app import FGDApplication
    from fgd_core.config import FGDConfig
    from fgd_core.domain.fabric import Fabric, FabricRegistry


def resolved(location: Location) -> Location:
    """``location`` with a local path's symlinks (and ``..`` through them) resolved."""
    if not location.is_path:
        return location
    return Location("", "", os.path.realpath(location.path))


def place_of(repository: str, branch: str, gitops_directory: str) -> tuple[str, str, str]:
    """What a fabric owns: (repository identity, branch, directory). Raises
    ``LocationError`` for a repository the domain refuses (legacy values)."""
    location = resolved(parse_location(repository))
    return (location.identity(), branch.removeprefix("refs/heads/"), gitops_directory)


class RepositoryPolicy:
    """Repositories a fabric may be set to by someone other than the operator."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = tuple(allowed)
        # Parsed once; local prefixes resolved like the paths they are compared with.
        self._prefixes = tuple(resolved(parse_prefix(prefix)) for prefix in self.allowed)

    @classmethod
    def from_config(cls, config: FGDConfig) -> RepositoryPolicy:
        return cls(config.repositories.allowed)

    def __repr__(self) -> str:
        return f"RepositoryPolicy({self.allowed!r})"

    def check(self, repository: str) -> None:
        """FGD_1003 naming ``repository`` unless it lies under an allowed prefix."""
        try:
            location = parse_location(repository)
        except LocationError as exc:  # the domain reports it the same way
            raise _refused(str(exc)) from None
        if location.is_path and not location.path.startswith("/"):
            raise _refused("must be an absolute path or a URL")
        location = resolved(location)
        if not any(within(location, prefix) for prefix in self._prefixes):
            # The allowed prefixes are configuration, not a secret: naming them tells the
            # caller what to fix.
            raise _refused(
                "is outside the allowed repositories (fgd.repositories.allowed: "
                f"{', '.join(self.allowed) or 'none'})"
            )


def _refused(problem: str) -> ValidationError:
    return ValidationError(
        f"repository {problem}", details={"field": "repository", "problem": problem}
    )


def token_allowed(repository: str, hosts: Iterable[str]) -> bool:
    """Whether the git token may be sent to ``repository``: https, and its host (with the
    port when it is not 443) one of ``hosts``."""
    try:
        location = parse_location(repository)
    except LocationError:
        return False
    allowed = {host.removesuffix(":443") for host in hosts}
    return location.scheme == "https" and location.host in allowed


def claim_place(app: FGDApplication, registry: FabricRegistry, fabric: Fabric) -> None:
    """Make ``fabric`` own its place in ``registry`` (not saved: the caller saves both in one
    transaction, so concurrent claims conflict on the registry's version). FGD_1003 (409)
    naming the repository if another fabric owns it.

    Fabrics registered before places were recorded get theirs first (read from their
    current settings), so a new fabric cannot take the place of an old one."""
    for fabric_id in sorted(set(registry.names.values()) - set(registry.places)):
        if fabric_id == fabric.fabric_id:
            continue
        try:
            other = app.get_fabric(fabric_id)
            place = place_of(other.repository, other.branch, other.gitops_directory)
        except (LocationError, NotFoundError):
            continue  # a legacy value no one can use, or a registration never saved
        if registry.owner_of(place) is None:
            registry.claim(fabric_id, place, correlation_id=other.correlation_id)
    try:
        place = place_of(fabric.repository, fabric.branch, fabric.gitops_directory)
    except LocationError:
        return  # legacy value: unchanged by this update, and owned by no one else
    registry.claim(fabric.fabric_id, place, correlation_id=fabric.correlation_id)
