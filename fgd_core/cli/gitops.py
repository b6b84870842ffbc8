"""``fgd directory …``, ``fgd files`` and ``fgd process``: the spec's directory and file
operations on a registered fabric, printed as the spec's JSON responses. In remote mode
(``--api``) each is the API call of the same name, with the same answer."""

from __future__ import annotations

import sys
from typing import Any

import click

from fgd_core.cli.common import fgd_errors, remote_client
from fgd_core.cli.output import emit, output_option


def _ops() -> Any:
    from fgd_core.application.gitops_ops import GitOpsService
    from fgd_core.bootstrap import build_runner

    _, runner = build_runner(source="fgd_cli")
    return GitOpsService(runner)


@click.group()
def directory() -> None:
    """Validate, initialize or repair a fabric's GitOps directory."""


@directory.command("validate")
@click.argument("fabric_id", type=int)
@output_option
@fgd_errors
def directory_validate(fabric_id: int, output: str | None) -> None:
    """Check FABRIC_ID's GitOps directory (raw/, managed/, the kind directories)."""
    api = remote_client()
    emit(api.get(f"/fabrics/{fabric_id}/gitops-directory/validate/") if api
         else _ops().validate_directory(fabric_id), output)


@directory.command("initialize")
@click.argument("fabric_id", type=int)
@click.option("--force", is_flag=True, help="Re-initialize (never deletes resource files).")
@click.option("--no-samples", is_flag=True, help="Do not add a sample raw file.")
@output_option
@fgd_errors
def directory_initialize(
    fabric_id: int, force: bool, no_samples: bool, output: str | None
) -> None:
    """Create FABRIC_ID's GitOps directory layout in its repository (one commit)."""
    api = remote_client()
    emit(api.post(f"/fabrics/{fabric_id}/gitops-directory/initialize/",
                  {"force": force, "create_samples": not no_samples}) if api
         else _ops().initialize_directory(fabric_id, force=force, create_samples=not no_samples),
         output)


@directory.command("repair")
@click.argument("fabric_id", type=int)
@click.option("--issue", "issues", multiple=True,
              help="Repair only these issues (repeatable; as named by validate).")
@click.option("--no-auto-detect", is_flag=True,
              help="Repair only the --issue ones; do not look for others.")
@output_option
@fgd_errors
def directory_repair(
    fabric_id: int, issues: tuple[str, ...], no_auto_detect: bool, output: str | None
) -> None:
    """Repair FABRIC_ID's GitOps directory (missing directories, stray files), one commit."""
    api = remote_client()
    emit(api.post(f"/fabrics/{fabric_id}/gitops-directory/repair/",
                  {"issues": list(issues), "auto_detect": not no_auto_detect}) if api
         else _ops().repair_directory(fabric_id, list(issues), auto_detect=not no_auto_detect),
         output)


@click.command()
@click.argument("fabric_id", type=int)
@click.option(
    "--directory",
    "directory_name",
    default="all",
    show_default=True,
    type=click.Choice(["raw", "managed", "all"]),
    help="Which directory to list.",
)
@click.option(
    "--file-type", default="all", show_default=True, type=click.Choice(["yaml", "yml", "all"]),
    help="Only files with this extension.",
)
@click.option("--include-content", is_flag=True, help="Include each file's content.")
@output_option
@fgd_errors
def files(fabric_id: int, directory_name: str, file_type: str, include_content: bool,
          output: str | None) -> None:
    """List the files of a fabric's GitOps directory with their resources."""
    api = remote_client()
    if api is not None:
        emit(api.get(f"/fabrics/{fabric_id}/gitops-files/", directory=directory_name,
                     file_type=file_type, include_content=str(include_content).lower()), output)
        return
    emit(_ops().list_files(fabric_id, directory_name, file_type, include_content), output)


@click.command()
@click.argument("fabric_id", type=int)
@click.argument("file_path")
@click.option("--validate-only", is_flag=True, help="Validate and plan; change nothing.")
@output_option
@fgd_errors
def process(fabric_id: int, file_path: str, validate_only: bool, output: str | None) -> None:
    """Ingest one raw file, FILE_PATH such as /gitops/raw/vpcs.yaml, as a sync of its own.

    Exit status as fgd sync's. With a broker (HEDGEHOG_FGD_BROKER_URL) and no --api the
    workers run it: this command checks the path, starts the sync (restricted to the file)
    and follows its events, as fgd sync does; 4 when no worker picked it up."""
    from fgd_core.cli.sync import exit_code

    api = remote_client()
    if api is not None:
        answer = api.post(f"/fabrics/{fabric_id}/gitops-files/process/",
                          {"file_path": file_path, "validate_only": validate_only})
    else:
        from fgd_core.config import load_settings

        settings = load_settings()
        if settings.broker_url:
            answer = _process_on_workers(settings, fabric_id, file_path, validate_only)
        else:
            answer = _ops().process_file(fabric_id, file_path, validate_only)
    emit(answer, output)
    # The file failed: 3, as fgd sync's "completed, but raw files failed"; any other miss: 1.
    sys.exit(exit_code(answer["success"] or answer["status"] == "failed",
                       [] if answer["success"] else [answer["file_path"]]))


def _process_on_workers(settings: Any, fabric_id: int, file_path: str,
                        validate_only: bool) -> dict[str, Any]:
    """``fgd process`` with a broker: the path checked here (no sync for a bad one), then a
    sync restricted to it (option ``only_paths``) handed to the workers and followed from
    its events (``cli.follow``); the answer from the ended sync."""
    from rich.console import Console

    from fgd_core.application.gitops_ops import GitOpsService, process_answer, process_options
    from fgd_core.bootstrap import build_runner
    from fgd_core.cli.follow import sync_on_workers

    app, runner = build_runner(settings, source="fgd_cli")
    path = GitOpsService(runner).process_path(fabric_id, file_path)
    ended = sync_on_workers(app, fabric_id, process_options(path, validate_only),
                            Console(stderr=True), settings.fgd.cli.pickup_timeout_seconds)
    return process_answer(app, ended, path, validate_only)
