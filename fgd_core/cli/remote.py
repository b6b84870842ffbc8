"""Remote mode: ``fgd --api URL …`` (or ``HEDGEHOG_FGD_API_URL``) runs the commands that read
or act through the HTTP API, with the token in ``HEDGEHOG_FGD_TOKEN``, instead of opening the
database. An operator's laptop then needs a token, not database credentials.

The answers are the API's JSON, which has the shapes the local commands print (the spec's),
so ``-o table|json|yaml`` and the exit statuses are the same. An API error is raised as the
``FGDError`` its body names (code, message, details), so ``fgd_errors`` prints it as any other
error. The token is only ever sent in the ``Authorization`` header: never printed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import httpx

from fgd_core.errors import FGDError, NotFoundError

PREFIX = "/api/plugins/hedgehog"
FINAL_STATES = frozenset({"completed", "failed", "cancelled", "timed_out"})
POLL_SECONDS = 0.3
# Top-level commands with a remote form; any other refuses --api (no silent use of the DB).
REMOTE_COMMANDS = frozenset({
    "fabric", "status", "history", "sync", "cancel", "files", "process", "directory", "audit",
})
# Commands that touch neither the database nor the API: --api does not concern them.
OFFLINE_COMMANDS = frozenset({"validate", "example-repo"})


class ApiClient:
    """The few calls the CLI makes, on one HTTP connection."""

    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        if not token:
            raise click.UsageError(
                "remote mode (--api / HEDGEHOG_FGD_API_URL) needs an API token in "
                "HEDGEHOG_FGD_TOKEN (fgd token create on the server)"
            )
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=timeout,
        )

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
             body: dict[str, Any] | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.http.request(method, PREFIX + path, params=query, json=body)
        except httpx.HTTPError as exc:
            raise FGDError(
                f"cannot reach the API at {self.url}: {type(exc).__name__}: {exc}",
                code="FGD_5001",
            ) from None
        if response.is_success:
            return response.json()
        raise api_error(response)

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, body=body or {})

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("PATCH", path, body=body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)


def api_error(response: httpx.Response) -> FGDError:
    """The spec's error body of a failed answer as an FGDError (HTTP status in the message)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code") or "FGD_5001"
    message = error.get("message") or response.reason_phrase or "request failed"
    raw = error.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    problems = details.get("problems")
    if not details.get("field") and isinstance(problems, list) and problems:
        details = {**details, "field": problems[0].get("field")}
    text = f"{message} (HTTP {response.status_code})"
    if response.status_code == 404:
        return NotFoundError(text, details=details)
    return FGDError(text, code=code, details=details)


# -- fabrics (``fgd fabric …`` goes through fabric_backend: one method per subcommand) -----


class RemoteFabrics:
    """The fabric subcommands over HTTP (``cli_fabric.LocalFabrics`` has the same methods)."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def list(self) -> list[dict[str, Any]]:
        return list(self.api.get("/fabrics/")["results"])

    def show(self, fabric_id: int) -> dict[str, Any]:
        return dict(self.api.get(f"/fabrics/{fabric_id}/"))

    def register(self, name: str, repository: str, fields: dict[str, Any],
                 fabric_id: int | None) -> dict[str, Any]:
        body = {"name": name, "repository": repository, **fields}
        if fabric_id is not None:
            body["id"] = fabric_id
        return dict(self.api.post("/fabrics/", body))

    def update(self, fabric_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        return dict(self.api.patch(f"/fabrics/{fabric_id}/", changes))

    def suspend(self, fabric_id: int) -> dict[str, Any]:
        return dict(self.api.post(f"/fabrics/{fabric_id}/suspend/", {}))

    def resume(self, fabric_id: int) -> dict[str, Any]:
        return dict(self.api.post(f"/fabrics/{fabric_id}/resume/", {}))

    def describe(self, fabric_id: int) -> str:
        fabric = self.api.get(f"/fabrics/{fabric_id}/")  # not found: said before asking
        return f"{fabric_id} ({fabric['name']}, {fabric['repository']})"

    def delete(self, fabric_id: int) -> dict[str, Any]:
        return dict(self.api.delete(f"/fabrics/{fabric_id}/"))


# -- syncs ---------------------------------------------------------------------------------


def watch_status(api: ApiClient, sync_id: str, fmt: str) -> dict[str, Any]:
    """Follow SYNC_ID through its status until it ends: a line when its stage or file count
    moves (table output), the status documents as JSON lines otherwise. Returns the last."""
    from fgd_core.cli.output import emit

    last: tuple[Any, ...] = ()
    while True:
        status = api.get(f"/sync-status/{sync_id}/")
        progress = status["progress"]
        now = (status["state"], progress["current_stage"], progress["files_processed"])
        if now != last:
            if fmt == "table":
                click.echo(f"{status['updated_at'][11:19]}  {status['state']:<10} "
                           f"{progress['current_stage'] or '-':<16} "
                           f"files {progress['files_processed']}/{progress['total_files']}")
            else:
                emit(status, fmt)
            last = now
        if status["state"] in FINAL_STATES:
            return dict(status)
        time.sleep(POLL_SECONDS)


def failing_files(status: dict[str, Any]) -> list[str]:
    """Raw files a sync's status names in its errors (the API's status carries no stage
    summaries): exit status 3 in remote mode."""
    return sorted({e["file"] for e in status["errors"] if e.get("file")})


def _find_or_register(api: ApiClient, repo: str, branch: str, path: str,
                      name: str | None) -> dict[str, Any]:
    from pathlib import Path

    fabrics = RemoteFabrics(api).list()
    for fabric in fabrics:
        if (fabric["repository"], fabric["branch"], fabric["gitops_directory"]) == (
                repo, branch, path):
            return fabric
    base = name or Path(repo.rstrip("/")).name.removesuffix(".git") or "fabric"
    taken = {f["name"] for f in fabrics}
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return RemoteFabrics(api).register(
        candidate, repo, {"branch": branch, "gitops_directory": path}, None)


def remote_sync(api: ApiClient, repo: str, branch: str, path: str, name: str | None,
                options: dict[str, Any], as_json: bool) -> None:
    """``fgd sync`` through the API: find (or register) the fabric, trigger, follow the
    sync's status with the progress bar, then the summary and fgd sync's exit status."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from fgd_core.cli.follow import is_first_sync_alike
    from fgd_core.cli.sync import exit_code

    console = Console(stderr=True)
    fabric = _find_or_register(api, repo, branch, path, name)
    try:
        started = api.post(f"/fabrics/{fabric['id']}/gitops-sync/",
                           {"trigger": "manual", "options": options})
    except FGDError as exc:
        running = exc.details.get("sync_id") if exc.code == "FGD_3001" else None
        first = api.get(f"/sync-status/{running}/") if running else None
        if first is None or not is_first_sync_alike(first["trigger"], first["options"], options):
            raise
        started = first
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("sync", total=None)
        while True:
            status = api.get(f"/sync-status/{started['sync_id']}/")
            moved = status["progress"]
            progress.update(task, description=moved["current_stage"] or status["state"],
                            total=moved["total_files"] or None,
                            completed=moved["files_processed"])
            if status["state"] in FINAL_STATES:
                break
            time.sleep(POLL_SECONDS)
    failing = failing_files(status)
    if as_json:
        click.echo(json.dumps(status))
    else:
        table = Table(title=f"fabric {fabric['id']} ({fabric['name']}) — sync "
                      f"{status['sync_id']} (via {api.url})", show_header=False)
        table.add_column("")
        table.add_column("", justify="right")
        for key, value in (("state", status["state"]),
                           ("raw files", status["progress"]["total_files"]),
                           ("  processed", status["progress"]["files_processed"]),
                           ("warnings", len(status["warnings"])),
                           ("errors", len(status["errors"]))):
            table.add_row(key, str(value))
        console.print(table)
        for error in status["errors"][:20]:
            line = f" line {error['line']}" if error.get("line") else ""
            console.print(f"[red]{error['code']}[/red] {error.get('file', '')}{line}: "
                          f"{error['message']}")
        for file in failing:
            console.print(f"[yellow]still failing[/yellow] {file}")
    sys.exit(exit_code(status["state"] == "completed", failing))
