"""``directory.auto_initialize`` / ``directory.auto_repair``: the GitOps directory as a sync
needs it, made so (or refused) right after the sync's first fetch, before discovery.

Both sync engines call ``prepare_directory`` once per sync (the embedded runner in its
validation stage, the discovery step of the distributed workers):

* The fabric's GitOps directory does not exist on the branch (nothing under it: a new
  repository, a typo in ``gitops_directory``): with ``auto_initialize`` the sync first
  initializes it — the commit ``fgd directory initialize`` makes (no sample file), pushed
  on its own and recorded as ``directory.initialized``; without it the sync fails with
  FGD_2001 naming the directory.
* ``.hnp/manifest.yaml`` or ``.hnp/provenance.json`` exists but cannot be read (a bad hand
  edit): with ``auto_repair`` the sync first repairs them — ``fgd directory repair`` of
  those issues (the broken file kept as ``.broken``), pushed and recorded as
  ``directory.repaired``; without it the sync fails with FGD_2004 naming the issues, and
  nothing a human wrote is rewritten. A missing manifest or provenance is no damage: the
  sync's own commit writes them, as it creates ``managed/`` directories on demand.

A sync that pushes nothing (``validate_only``, ``include_github_sync`` false,
``github.enabled`` false) writes nothing here either: it reads the directory as it is.
Redelivered or repeated, the step finds the directory prepared and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from fgd_core.adapters.git_repo import GitRemote, RemoteMovedError, Snapshot
from fgd_core.application import directory_repair
from fgd_core.application.app import FGDApplication
from fgd_core.application.manifest import (
    get_entry,
    manifest_path,
    parse_provenance,
    provenance_path,
    read_manifest,
)
from fgd_core.config import FGDConfig
from fgd_core.domain.fabric import Fabric
from fgd_core.errors import DirectoryNotFoundError, DirectoryRepairError, ValidationError
from fgd_core.ingestion.plan import IngestionRules

log = logging.getLogger("fgd_core.sync")
Changes = tuple[dict[str, bytes], dict[str, Any]]


def unreadable_metadata(snapshot: Snapshot, gitops_dir: str) -> list[str]:
    """The repairable issues of ``.hnp/`` a sync would otherwise overwrite."""
    issues = []
    if get_entry(snapshot, manifest_path(gitops_dir)) is not None and read_manifest(
        snapshot, gitops_dir
    ) is None:
        issues.append("invalid_manifest")
    entry = get_entry(snapshot, provenance_path(gitops_dir))
    if entry is not None:
        try:
            if not entry.is_regular:
                raise ValidationError("provenance.json is a symlink")
            parse_provenance(snapshot.read(entry))
        except ValidationError:
            issues.append("invalid_provenance")
    return issues


def prepare_directory(
    app: FGDApplication,
    config: FGDConfig,
    fabric: Fabric,
    remote: GitRemote,
    snapshot: Snapshot,
    options: Mapping[str, Any],
    rules: IngestionRules,
) -> Snapshot:
    """The snapshot the sync goes on with: ``snapshot``, or the branch after the directory
    was initialized or repaired. FGD_2001 / FGD_2004 when the configuration says not to."""
    gitops = rules.gitops_dir
    pushes = bool(options.get("include_github_sync")) and not options.get("validate_only")
    policy = config.directory
    for _ in range(config.sync.retry_policy.max_attempts):
        if snapshot.get(gitops) is not None:
            return snapshot  # a file where the directory belongs: the stages report it
        if not snapshot.is_dir(gitops):
            if not policy.auto_initialize:
                raise DirectoryNotFoundError(
                    f"/{gitops} does not exist on branch {fabric.branch}; initialize it (fgd "
                    f"directory initialize {fabric.fabric_id}) or set "
                    "fgd.directory.auto_initialize: true",
                    details={"path": f"/{gitops}", "key": "fgd.directory.auto_initialize"})
            if not pushes:
                return snapshot
            compute: Callable[[Snapshot], Changes] = partial(
                directory_repair.initialize_changes, gitops_dir=gitops, fabric_id=fabric.fabric_id,
                fabric_name=fabric.name, create_samples=False,
                required_subdirs=policy.required_subdirs, rules=rules)
            kind, issues = "initialized", []
        else:
            issues = unreadable_metadata(snapshot, gitops)
            if not issues:
                return snapshot
            if not policy.auto_repair:
                raise DirectoryRepairError(
                    f"/{gitops} needs repair ({', '.join(issues)}); repair it (fgd directory "
                    f"repair {fabric.fabric_id}) or set fgd.directory.auto_repair: true",
                    details={"path": f"/{gitops}", "issues": issues,
                             "key": "fgd.directory.auto_repair"})
            if not pushes:
                return snapshot
            compute = partial(
                directory_repair.repair_changes, gitops_dir=gitops, fabric_id=fabric.fabric_id,
                fabric_name=fabric.name, issues=tuple(issues), auto_detect=False,
                validation_mode=policy.validation_mode,
                required_subdirs=policy.required_subdirs,
                supported_extensions=config.ingestion.supported_extensions, rules=rules)
            kind = "repaired"
        try:
            return _write(app, fabric, remote, snapshot, compute, kind, issues)
        except RemoteMovedError:
            snapshot = remote.fetch(fabric.branch)  # someone pushed meanwhile: look again
    return snapshot


def _write(app: FGDApplication, fabric: Fabric, remote: GitRemote, snapshot: Snapshot,
           compute: Callable[[Snapshot], Changes], kind: str, issues: list[str]) -> Snapshot:
    from fgd_core.application.sync_runner import AUTHOR

    changes, response = compute(snapshot)
    if not changes:
        return snapshot
    verb = "initialize" if kind == "initialized" else "repair"
    sha = remote.commit(snapshot, dict(changes), f"fgd: {verb} /{fabric.gitops_directory} "
                        "before a sync", AUTHOR)
    remote.push(sha, fabric.branch, snapshot.head)
    if kind == "initialized":
        app.record_directory(fabric.fabric_id, kind, commit=sha,
                             directories_created=response["directories_created"],
                             files_created=response["files_created"])
    else:
        app.record_directory(fabric.fabric_id, kind, commit=sha,
                             repairs_made=response["repairs_made"],
                             # what this repair was for (the rest the sync makes itself)
                             remaining_issues=[i for i in response["remaining_issues"]
                                               if i["issue"] in issues])
    log.info("fabric %s: %s /%s before its sync (commit %s)", fabric.fabric_id, kind,
             fabric.gitops_directory, sha)
    return remote.fetch(fabric.branch)
