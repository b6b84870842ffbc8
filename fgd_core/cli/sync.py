"""``fgd sync`` (the main job) and ``fgd example-repo``: a whole sync in this process on the
embedded default (on the workers with a broker, ``cli_follow``; through the API in remote
mode, ``cli_remote``), with a progress bar and a summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from fgd_core.cli.common import fgd_errors, remote_client


def _find_or_register(app: Any, repo: str, branch: str, path: str, name: str | None) -> Any:
    from fgd_core.application.repository_policy import place_of
    from fgd_core.domain.repository import LocationError

    try:  # the fabric owning this place, however its repository was spelled
        wanted: Any = place_of(repo, branch, path)
    except LocationError:
        wanted = None  # registering below reports why
    for fabric in app.list_fabrics():
        if (fabric.repository, fabric.branch, fabric.gitops_directory) == (repo, branch, path):
            return fabric
        try:
            if place_of(fabric.repository, fabric.branch, fabric.gitops_directory) == wanted:
                return fabric
        except LocationError:
            continue
    base = name or Path(repo.rstrip("/")).name.removesuffix(".git") or "fabric"
    taken = {f.name for f in app.list_fabrics()}
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return app.register_fabric(candidate, repo, branch=branch, gitops_directory=path)


def _normalize_repo(repo: str) -> str:
    """Local paths are stored absolute, so the fabric works from any directory."""
    if "://" in repo:
        return repo
    return str(Path(repo).expanduser().resolve())


@click.command()
@click.option("--repo", required=True, help="Git repository: path, file:// or https:// URL.")
@click.option("--branch", default="main", show_default=True, help="Branch to sync.")
@click.option(
    "--path",
    "gitops_directory",
    default="gitops",
    show_default=True,
    help="GitOps directory inside the repository.",
)
@click.option("--fabric-name", help="Name for a new fabric (default: the repository's).")
@click.option("--validate-only", is_flag=True, help="Plan and report; change nothing.")
@click.option("--no-push", is_flag=True, help="Build the commit but do not push it.")
@click.option("--force-refresh", is_flag=True,
              help="Re-ingest every raw file, also those unchanged since they last failed.")
@click.option("--json", "as_json", is_flag=True, help="Print the final status as JSON.")
@fgd_errors
def sync(
    repo: str,
    branch: str,
    gitops_directory: str,
    fabric_name: str | None,
    validate_only: bool,
    no_push: bool,
    force_refresh: bool,
    as_json: bool,
) -> None:
    """Run a whole sync of REPO's raw/ directory into managed/ (commit + push).

    Runs here on the embedded default. With a broker (HEDGEHOG_FGD_BROKER_URL) the workers
    run it: this command starts it as the API does and follows its events, and gives up when
    no worker picks it up within HEDGEHOG_FGD_CLI_PICKUP_TIMEOUT seconds (default 30). With
    --api it goes through the HTTP API.

    Exit status: 0 when every raw file landed or there was nothing to do; 1 when the sync
    failed; 3 when it completed but some raw files failed, or are still failing (skipped
    because unchanged since they failed); 4 when no worker picked it up (the sync is
    cancelled)."""
    from fgd_core.config import load_settings

    options = {
        "validate_only": validate_only,
        "include_github_sync": not no_push,
        "force_refresh": force_refresh,
    }
    remote = remote_client()
    if remote is not None:
        from fgd_core.cli.remote import remote_sync

        remote_sync(remote, _normalize_repo(repo), branch, gitops_directory, fabric_name,
                    options, as_json)
        return
    settings = load_settings()
    console = Console(stderr=True)
    if settings.broker_url:
        from fgd_core.bootstrap import build_app
        from fgd_core.cli.follow import sync_on_workers

        app = build_app(settings, source="fgd_cli")
        fabric = _find_or_register(app, _normalize_repo(repo), branch, gitops_directory,
                                   fabric_name)
        ended = sync_on_workers(app, fabric.fabric_id, options, console,
                                settings.fgd.cli.pickup_timeout_seconds)
        pushed = ended.stage_summaries.get("github_sync", {})
        counts = published_counts(ended.stage_summaries.get("file_ingestion", {}), pushed)
        report(console, fabric, ended, counts, pushed.get("commit"), bool(pushed.get("pushed")),
               as_json)
        return
    from fgd_core.bootstrap import build_runner
    from fgd_core.cli.follow import SyncProgress

    app, runner = build_runner(settings, source="fgd_cli")
    fabric = _find_or_register(app, _normalize_repo(repo), branch, gitops_directory, fabric_name)
    with SyncProgress(console) as progress:

        def on_events(stored: list[tuple[int, dict[str, Any]]]) -> None:
            for _, env in stored:
                progress.on_event(env)

        unsubscribe = app.subscribe(on_events)
        try:
            result = runner.run(fabric.fabric_id, "manual", options)
        finally:
            unsubscribe()
    report(console, fabric, result.sync, result.plan.summary() if result.plan else {},
           result.commit, result.pushed, as_json)


def report(console: Console, fabric: Any, sync: Any, counts: dict[str, Any],
           commit: str | None, pushed: bool, as_json: bool) -> None:
    """The summary (or the status as JSON), the files still failing, and the exit status."""
    from fgd_core.application.views import sync_status
    from fgd_core.domain.sync_operation import COMPLETED

    status = sync_status(sync)
    failing = still_failing(sync)
    if as_json:
        click.echo(__import__("json").dumps(status))
    else:
        _summary(console, fabric, status, counts, commit, pushed)
        earlier = sync.stage_summaries.get("file_ingestion", {}).get("failed_errors", {})
        for path in sorted(failing):
            error = earlier.get(path)
            said = f": {error['code']} {error['message']}" if error else ""
            console.print(f"[yellow]still failing[/yellow] {path}{said}")
    sys.exit(exit_code(sync.state == COMPLETED, failing))


def published_counts(ingested: dict[str, Any], published: dict[str, Any]) -> dict[str, Any]:
    """The ingestion counts, with created / updated as the sync's commit has them (the
    ingestion stage saw the branch as it was at discovery)."""
    return {**ingested, **{k: published[k] for k in ("files_created", "files_updated")
                           if k in published}}


# Exit statuses of ``fgd sync`` (and of the README's table): CI gates on them.
EXIT_OK, EXIT_FAILED, EXIT_FILES_FAILING = 0, 1, 3


def still_failing(sync: Any) -> list[str]:
    """Raw files that failed in this sync or were skipped as unchanged since they failed:
    the ingestion stage's ``failed_files`` (path → content id), in both engines."""
    return list(sync.stage_summaries.get("file_ingestion", {}).get("failed_files", {}))


def exit_code(ok: bool, failing: list[str]) -> int:
    """0: every raw file landed, or there was nothing to do; 1: the sync failed; 3: the sync
    completed but some raw files failed or are still failing."""
    if not ok:
        return EXIT_FAILED
    return EXIT_FILES_FAILING if failing else EXIT_OK


def _summary(console: Console, fabric: Any, status: dict[str, Any], s: dict[str, Any],
             commit: str | None, pushed: bool) -> None:
    table = Table(
        title=f"fabric {fabric.fabric_id} ({fabric.name}) — sync {status['sync_id']}",
        show_header=False,
    )
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("state", status["state"]),
        ("raw files", status["progress"]["total_files"]),
        ("  ingested", s.get("files_processed", 0)),
        ("  failed", s.get("files_failed", 0)),
        ("  skipped", s.get("files_skipped", 0)),
        ("resources created", s.get("files_created", 0)),
        ("resources updated", s.get("files_updated", 0)),
        ("resources unchanged", s.get("files_unchanged", 0)),
        ("warnings", len(status["warnings"])),
        ("errors", len(status["errors"])),
        ("commit", commit[:12] if commit else "none (nothing changed)"),
        ("pushed", "yes" if pushed else "no"),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    for error in status["errors"][:20]:
        where = error.get("file", "")
        line = f" line {error['line']}" if error.get("line") else ""
        console.print(f"[red]{error['code']}[/red] {where}{line}: {error['message']}")


@click.command("example-repo")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--path", "gitops_directory", default="gitops", show_default=True,
              help="GitOps directory inside the new repository.")
@fgd_errors
def example_repo(path: str, gitops_directory: str) -> None:
    """Create a bare git repository at PATH whose raw/ holds the shipped sample YAML."""
    from dulwich.repo import Repo

    from fgd_core.adapters.git_repo import GitRemote

    target = Path(path).expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise click.ClickException(f"{target} exists and is not empty")
    target.mkdir(parents=True, exist_ok=True)
    Repo.init_bare(str(target)).close()
    samples = sorted(examples_dir().glob("*.yaml"))
    remote = GitRemote(str(target))
    base = remote.fetch("main")
    changes: dict[str, bytes | None] = {
        f"{gitops_directory}/raw/{p.name}": p.read_bytes() for p in samples
    }
    sha = remote.commit(
        base, changes, "Sample Hedgehog fabric in raw/", "FGD Example <example@localhost>"
    )
    remote.push(sha, "main", None)
    with open(target / "HEAD", "w") as head:  # clones check out main
        head.write("ref: refs/heads/main\n")
    click.echo(str(target))


def examples_dir() -> Path:
    """``examples/`` of a source checkout, or the copy a wheel carries in the package."""
    here = Path(__file__).resolve().parent.parent  # fgd_core/
    for candidate in (here.parent / "examples", here / "_examples"):
        if candidate.is_dir():
            return candidate
    raise click.ClickException("the sample files (examples/) are not installed")
