"""A fabric's git remote, built from its settings and the process's configuration: the one
place where the git token is handed to a remote (and where it is withheld)."""

from __future__ import annotations

from pathlib import Path

from fgd_core.adapters.git_repo import GitRemote
from fgd_core.application.repository_policy import token_allowed
from fgd_core.config import FGDConfig
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.repository import branch_problem, directory_problem
from fgd_core.errors import ValidationError


def make_remote(
    fabric: Fabric, config: FGDConfig, token: str | None, cache_root: Path | None
) -> GitRemote:
    """The fabric's git remote with the configured timeouts (and a per-fabric cache). The
    token goes only to an https repository on one of ``github.token_hosts``: a fabric set
    to any other host (a listener on 127.0.0.1 …) never receives it."""
    cache = cache_root / f"fabric-{fabric.fabric_id}" if cache_root else None
    if token and not token_allowed(fabric.repository, config.github.token_hosts):
        token = None
    # Settings saved before they were checked (an ssh:// URL, a branch "a..b") fail here
    # as FGD_1003 naming the field, not as an internal error at every use.
    for field, problem in (
        ("branch", branch_problem(fabric.branch.removeprefix("refs/heads/"))),
        ("gitops_directory", directory_problem(fabric.gitops_directory)),
    ):
        if problem:
            raise ValidationError(
                f"fabric {fabric.fabric_id}: {field} {problem}; correct the fabric's settings",
                details={"field": field, "fabric_id": fabric.fabric_id},
            )
    try:
        return GitRemote(
            fabric.repository,
            token=token,
            connection_timeout=config.github.connection_timeout,
            read_timeout=config.github.read_timeout,
            cache_dir=cache,
            rate_limit_buffer=config.github.rate_limit_buffer,
        )
    except ValueError:
        raise ValidationError(
            f"fabric {fabric.fabric_id}: repository uses a transport the git adapter does not "
            "support; correct the fabric's settings",
            details={"field": "repository", "fabric_id": fabric.fabric_id},
        ) from None
