"""``fgd directory …``, ``fgd files`` and ``fgd process``: the spec's directory and file
operations on a registered fabric, printed as the spec's JSON responses."""

from __future__ import annotations

import json
from typing import Any

import click

from fgd_core.cli_common import fgd_errors


def _ops() -> Any:
    from fgd_core.bootstrap import build_runner
    from fgd_core.services.gitops_ops import GitOpsService

    _, runner = build_runner(source="fgd_cli")
    return GitOpsService(runner)


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


@click.group()
def directory() -> None:
    """Validate, initialize or repair a fabric's GitOps directory."""


@directory.command("validate")
@click.argument("fabric_id", type=int)
@fgd_errors
def directory_validate(fabric_id: int) -> None:
    _echo(_ops().validate_directory(fabric_id))


@directory.command("initialize")
@click.argument("fabric_id", type=int)
@click.option("--force", is_flag=True, help="Re-initialize (never deletes resource files).")
@click.option("--no-samples", is_flag=True, help="Do not add a sample raw file.")
@fgd_errors
def directory_initialize(fabric_id: int, force: bool, no_samples: bool) -> None:
    _echo(_ops().initialize_directory(fabric_id, force=force, create_samples=not no_samples))


@directory.command("repair")
@click.argument("fabric_id", type=int)
@click.option("--issue", "issues", multiple=True, help="Repair only these issues.")
@click.option("--no-auto-detect", is_flag=True)
@fgd_errors
def directory_repair(fabric_id: int, issues: tuple[str, ...], no_auto_detect: bool) -> None:
    _echo(_ops().repair_directory(fabric_id, list(issues), auto_detect=not no_auto_detect))


@click.command()
@click.argument("fabric_id", type=int)
@click.option(
    "--directory",
    "directory_name",
    default="all",
    show_default=True,
    type=click.Choice(["raw", "managed", "all"]),
)
@click.option(
    "--file-type", default="all", show_default=True, type=click.Choice(["yaml", "yml", "all"])
)
@click.option("--include-content", is_flag=True)
@fgd_errors
def files(fabric_id: int, directory_name: str, file_type: str, include_content: bool) -> None:
    """List the files of a fabric's GitOps directory with their resources."""
    _echo(_ops().list_files(fabric_id, directory_name, file_type, include_content))


@click.command()
@click.argument("fabric_id", type=int)
@click.argument("file_path")
@click.option("--validate-only", is_flag=True)
@fgd_errors
def process(fabric_id: int, file_path: str, validate_only: bool) -> None:
    """Ingest one raw file (e.g. /gitops/raw/vpcs.yaml) as a sync of its own."""
    _echo(_ops().process_file(fabric_id, file_path, validate_only))
