"""The spec's directory and file operations on a fabric's repository, with their events.

Each operation fetches the fabric's branch, computes its answer with the pure functions of
``gitops.directory``, and — for initialize and repair — commits and pushes the changes (one
commit, rebuilt on a moved remote within the retry policy). The answer is recorded on the
Fabric as ``directory.validated`` / ``directory.initialized`` / ``directory.repaired``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fgd_core.adapters.git_repo import GitRemote, PushRejectedError, RemoteMovedError, Snapshot
from fgd_core.application import directory, directory_files, directory_repair
from fgd_core.application.app import FGDApplication
from fgd_core.application.directory_observe import observe_directory, record_validation
from fgd_core.application.pipeline_common import (
    RemoteFactory,
    commit_and_push,
    recorded_writes,
    rules_for,
)
from fgd_core.application.pipeline_local import LocalSyncDriver
from fgd_core.application.raw_path import raw_file_to_process
from fgd_core.config import FGDConfig
from fgd_core.domain.fabric import Fabric
from fgd_core.domain.sync_operation import SyncOperation
from fgd_core.errors import (
    DirectoryInitializationError,
    DirectoryRepairError,
    FGDError,
    NotFoundError,
    SyncFailedError,
)

Compute = Callable[[Snapshot], tuple[dict[str, bytes], dict[str, Any]]]


def cap_contents(listing: dict[str, Any], per_file: int, total: int) -> None:
    """``include_content`` within bounds: each file's ``content`` cut after ``per_file`` UTF-8
    bytes, and no more than ``total`` bytes of content in one answer (later files get an empty
    content). Each file says ``truncated``; so does the answer when any file was cut."""
    left, cut_any = total, False
    for item in listing["files"]:
        raw = item["content"].encode("utf-8")
        keep = min(len(raw), per_file, left)
        truncated = keep < len(raw)
        if truncated:  # cut on a character boundary
            item["content"] = raw[:keep].decode("utf-8", "ignore")
            keep = len(item["content"].encode("utf-8"))
        item["truncated"] = truncated
        left -= keep
        cut_any = cut_any or truncated
    listing["truncated"] = cut_any


class GitOpsService:
    def __init__(self, runner: LocalSyncDriver) -> None:
        self.runner = runner
        self.app: FGDApplication = runner.app
        self.config: FGDConfig = runner.config
        self.remote_factory: RemoteFactory = runner.remote_factory

    def _open(self, fabric_id: int) -> tuple[Fabric, GitRemote]:
        fabric = self.app.get_fabric(fabric_id)
        return fabric, self.remote_factory(fabric)

    def _directory_options(self) -> dict[str, Any]:
        d = self.config.directory
        return {"validation_mode": d.validation_mode, "required_subdirs": d.required_subdirs}

    def _require_push(self, error: type[FGDError], operation: str) -> None:
        """Directory writes are pushed: with ``github.enabled`` false they are refused."""
        if not self.config.github.enabled:
            raise error(f"cannot {operation} the directory: fgd.github.enabled is false, so "
                        "nothing is pushed", details={"key": "fgd.github.enabled"})

    def _commit(
        self,
        fabric: Fabric,
        remote: GitRemote,
        compute: Compute,
        message: str,
        failure: type[FGDError] = SyncFailedError,
    ) -> tuple:
        """Compute changes on the fetched head, commit and push; recompute on a moved remote
        (the sync's own commit-and-push loop).

        A push the remote refuses (a protected or checked-out branch, a hook), or one that
        still finds the branch moved after the retry policy's attempts, raises ``failure``
        (FGD_2003 for initialize, FGD_2004 for repair) naming the cause."""
        responses: list[dict[str, Any]] = []

        def build(snapshot: Snapshot) -> tuple[dict[str, bytes], str]:
            changes, response = compute(snapshot)
            responses.append(response)
            return changes, message

        try:
            done = commit_and_push(remote, fabric.branch, remote.fetch(fabric.branch), build,
                                   attempts=self.config.sync.retry_policy.max_attempts)
        except (RemoteMovedError, PushRejectedError) as exc:
            raise self._push_failed(failure, message, exc) from exc
        return responses[-1], done.commit

    @staticmethod
    def _push_failed(failure: type[FGDError], message: str, exc: FGDError) -> FGDError:
        what = message.removeprefix("fgd: ")
        return failure(
            f"{what} failed: {exc.message}",
            details={**exc.details, "cause": exc.code},
        )

    # -- directory --------------------------------------------------------------------------

    def validate_directory(self, fabric_id: int) -> dict[str, Any]:
        fabric, remote = self._open(fabric_id)
        snapshot = remote.fetch(fabric.branch)
        report = directory.validate_directory(
            snapshot,
            fabric.gitops_directory,
            supported_extensions=self.config.ingestion.supported_extensions,
            fabric=self.config.hedgehog.fabric_config(),
            **self._directory_options(),
        )
        record_validation(self.app, fabric_id, report)
        return report

    def observe_directory(self, fabric_id: int, snapshot: Snapshot | None = None) -> bool:
        """After a completed sync: the GitOps directory's structure at ``snapshot`` (the
        branch head, fetched when None) recorded on the fabric as ``directory.validated``
        when it changes what the fabric says (``gitops_initialized`` and
        ``gitops_directory_status`` follow the repository); True if recorded. Hedgehog's
        fabric-wide rules are not run again: the sync has just checked the whole fabric."""
        fabric, remote = self._open(fabric_id)
        if snapshot is None:
            snapshot = remote.fetch(fabric.branch)
        return observe_directory(self.app, self.config, fabric_id, snapshot)

    def initialize_directory(
        self, fabric_id: int, force: bool = False, create_samples: bool = True
    ) -> dict[str, Any]:
        self._require_push(DirectoryInitializationError, "initialize")
        fabric, remote = self._open(fabric_id)
        response, sha = self._commit(
            fabric,
            remote,
            lambda snap: directory_repair.initialize_changes(
                snap,
                fabric.gitops_directory,
                fabric.fabric_id,
                fabric.name,
                force=force,
                create_samples=create_samples,
                required_subdirs=self.config.directory.required_subdirs,
                rules=rules_for(self.config, fabric),
            ),
            f"fgd: initialize /{fabric.gitops_directory}",
            DirectoryInitializationError,
        )
        if response.get("initialized"):
            self.app.record_directory(
                fabric_id,
                "initialized",
                directories_created=response["directories_created"],
                files_created=response["files_created"],
                commit=sha,
            )
        return response

    def repair_directory(
        self, fabric_id: int, issues: list[str] | None = None, auto_detect: bool = True
    ) -> dict[str, Any]:
        self._require_push(DirectoryRepairError, "repair")
        fabric, remote = self._open(fabric_id)
        response, sha = self._commit(
            fabric,
            remote,
            lambda snap: directory_repair.repair_changes(
                snap,
                fabric.gitops_directory,
                fabric.fabric_id,
                fabric.name,
                issues=issues or (),
                auto_detect=auto_detect,
                supported_extensions=self.config.ingestion.supported_extensions,
                rules=rules_for(self.config, fabric),
                **self._directory_options(),
            ),
            f"fgd: repair /{fabric.gitops_directory}",
            DirectoryRepairError,
        )
        self.app.record_directory(
            fabric_id,
            "repaired",
            repairs_made=response["repairs_made"],
            remaining_issues=response["remaining_issues"],
            commit=sha,
        )
        return response

    # -- files ------------------------------------------------------------------------------

    def list_files(
        self,
        fabric_id: int,
        directory_name: str = "all",
        file_type: str = "all",
        include_content: bool = False,
    ) -> dict[str, Any]:
        fabric, remote = self._open(fabric_id)
        snapshot = remote.fetch(fabric.branch)
        listing = directory_files.list_files(
            snapshot,
            fabric.gitops_directory,
            directory=directory_name,
            file_type=file_type,
            include_content=include_content,
            rules=rules_for(self.config, fabric),
        )
        if include_content:
            limits = self.config.api
            cap_contents(listing, limits.files_content_max_file_bytes,
                         limits.files_content_max_total_bytes)
        return listing

    def process_path(self, fabric_id: int, file_path: str) -> str:
        """The repository path of FILE_PATH to process, checked at the branch head first
        (``raw_path``): outside ``raw/``, not a file a sync ingests, or missing — the
        error, and no sync is started."""
        fabric, remote = self._open(fabric_id)
        snapshot = remote.fetch(fabric.branch)
        return raw_file_to_process(snapshot, rules_for(self.config, fabric), file_path)

    def process_file(
        self, fabric_id: int, file_path: str, validate_only: bool = False
    ) -> dict[str, Any]:
        """The spec's "Process Single File": a sync restricted to one raw file (its
        ``only_paths`` option; the workers run it the same way, ``process_answer``)."""
        path = self.process_path(fabric_id, file_path)
        result = self.runner.run(
            fabric_id, "manual", process_options(path, validate_only), only_paths=[path]
        )
        return process_answer(self.app, result.sync, path, validate_only)


def process_options(path: str, validate_only: bool) -> dict[str, Any]:
    """The options of a sync that processes the one raw file at ``path``."""
    return {"validate_only": validate_only, "only_paths": [path]}


def process_answer(app: FGDApplication, sync: SyncOperation, path: str,
                   validate_only: bool) -> dict[str, Any]:
    """The spec's process-file answer, from the ended sync that processed ``path`` (either
    driver). ``files_created``: the managed files the commit writes for the file (created or
    changed; validate-only: would write), as before."""
    record = sync.files.get(path)
    if record is None:
        raise NotFoundError(f"/{path} not found", details={"file_path": "/" + path})
    processed = record["status"] == "processed"
    created: list[str] = []
    if processed and (validate_only or sync.stage_summaries.get("github_sync", {}).get("commit")):
        writes = recorded_writes(app, sync.sync_id).get(path, [])
        created = ["/" + w["path"] for w in writes if w["action"] != "unchanged"]
    return {
        "success": processed and sync.state == "completed",
        "sync_id": sync.sync_id,
        "file_path": "/" + path,
        "status": record["status"],
        "documents_found": record.get("documents_found", 0),
        "documents_processed": record["documents_extracted"],
        "files_created": created,
        "archived_to": "/" + record["archived_to"]
        if processed and record.get("archived_to") else None,
        "validate_only": validate_only,
        "errors": record["validation_errors"],
    }
