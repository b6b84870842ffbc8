"""What a completed sync tells the fabric about its GitOps directory.

After a sync pushed, the directory's structure at the branch head is recorded on the fabric
as ``directory.validated`` — only when it changes what the fabric says, so that
``gitops_initialized`` and ``gitops_directory_status`` follow the repository after ordinary
syncs too. Called from the pipeline's completion (``step_publish.reconcile``, both drivers)
and by ``GitOpsService.observe_directory``.
"""

from __future__ import annotations

from typing import Any

from fgd_core.adapters.git_repo import Snapshot
from fgd_core.application import directory
from fgd_core.application.app import FGDApplication
from fgd_core.config import FGDConfig
from fgd_core.domain.directory_state import initialized_by


def observe_directory(app: FGDApplication, config: FGDConfig, fabric_id: int,
                      snapshot: Snapshot) -> bool:
    """Record the directory's structure at ``snapshot`` on the fabric when it changes what
    the fabric says; True if recorded. Hedgehog's fabric-wide rules are not run again: the
    sync has just checked the whole fabric."""
    fabric = app.get_fabric(fabric_id)
    d = config.directory
    report = directory.validate_directory(
        snapshot,
        fabric.gitops_directory,
        supported_extensions=config.ingestion.supported_extensions,
        fabric_rules=False,
        validation_mode=d.validation_mode,
        required_subdirs=d.required_subdirs,
    )
    status = "valid" if report["valid"] else "invalid"
    initialized = initialized_by(report["issues"])
    if (fabric.gitops_directory_status, fabric.gitops_initialized) == (status, initialized):
        return False
    record_validation(app, fabric_id, report)
    return True


def record_validation(app: FGDApplication, fabric_id: int, report: dict[str, Any]) -> None:
    """A directory validation report on the fabric, as ``directory.validated``."""
    app.record_directory(
        fabric_id,
        "validated",
        valid=report["valid"],
        issues=report["issues"],
        repairs_needed=report["repairs_needed"],
        directory_stats=report["directory_stats"],
    )


__all__ = ["observe_directory", "record_validation"]
