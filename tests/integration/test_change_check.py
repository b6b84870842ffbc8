"""The change check before scheduled syncs: real git repositories (a bare repository on
disk, the smart-HTTP server), real syncs, the real event store (SQLite and PostgreSQL).

A check that finds nothing owed starts no sync and writes nothing to the event log."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import fgd_core.ingestion.plan_draft as plan_module
from fgd_core.application.app import FGDApplication
from fgd_core.application.sync_runner import SyncRunner
from fgd_core.config import SyncConfig, load_settings
from fgd_core.domain.webhook import WebhookDelivery
from fgd_workers.change_check import (
    ChangeCheck,
    fgd_change_checks_total,
    fgd_fabric_last_checked,
)
from fgd_workers.scheduler import Scheduler
from tests.gitserver import GitHTTPServer, git_http_server, init_bare, seed_repo  # noqa: F401
from tests.resources import vpc

INTERVAL = 5  # minutes


@pytest.fixture
def settings() -> Any:
    return load_settings(environ={})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    bare = init_bare(tmp_path / "fabric.git")
    seed_repo(bare, {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1), "README.md": b"lab\n"})
    return bare


def scheduler(app: FGDApplication, **kw: Any) -> Scheduler:
    config = SyncConfig(timeout_seconds=86_400, max_concurrent_syncs=10)
    return Scheduler(app, config, name=f"check-{uuid.uuid4().hex[:8]}", **kw)


def synced(app: FGDApplication, settings: Any, url: str) -> int:
    """A registered fabric whose first (manual) sync completed."""
    fabric = app.register_fabric(f"lab-{uuid.uuid4().hex[:6]}", url,
                                 sync_interval_minutes=INTERVAL)
    assert SyncRunner(app, settings.fgd).run(fabric.fabric_id).sync.state == "completed"
    return fabric.fabric_id


_CLOCKS: dict[int, datetime] = {}


def ticks(sched: Scheduler, count: int) -> list[Any]:
    """``count`` ticks, each one interval (and a minute) after this scheduler's previous
    one: every fabric is due at each."""
    reports = []
    for _ in range(count):
        when = _CLOCKS.get(id(sched), datetime.now(UTC)) + timedelta(minutes=INTERVAL + 1)
        _CLOCKS[id(sched)] = when
        reports.append(sched.run_once(when))
    return reports


def test_an_unchanged_fabric_checked_many_times_writes_no_event(
    app: FGDApplication, settings: Any, repo: Path
) -> None:
    fabric_id = synced(app, settings, str(repo))
    sched = scheduler(app)
    before = app.last_position()
    checks_before = fgd_change_checks_total.labels("unchanged")._value.get()

    reports = ticks(sched, 10)

    assert app.last_position() == before  # not one event in ten checks
    assert all(r.started == [] and r.checked == 1 for r in reports)
    assert [u["fabric_id"] for r in reports for u in r.unchanged] == [fabric_id] * 10
    assert fgd_change_checks_total.labels("unchanged")._value.get() == checks_before + 10
    assert fabric_id in sched.change_check.last_checked
    gauge = fgd_fabric_last_checked.labels(str(fabric_id))._value.get()
    assert gauge == sched.change_check.last_checked[fabric_id] > 0  # the exported metric
    # Not due again until an interval after the check: the next tick checks nothing.
    again = sched.run_once(reports[-1].now + timedelta(minutes=1))
    assert again.checked == 0 and again.started == []


def test_a_commit_outside_raw_is_no_reason_to_sync(
    app: FGDApplication, settings: Any, repo: Path
) -> None:
    synced(app, settings, str(repo))
    seed_repo(repo, {"README.md": b"lab, edited by hand\n"}, message="docs")
    sched = scheduler(app)
    before = app.last_position()

    reports = ticks(sched, 3)

    assert app.last_position() == before
    assert [u["reason"] for r in reports for u in r.unchanged] == [
        "head moved, raw/ unchanged", "raw/ unchanged at this head",
        "raw/ unchanged at this head"]


def test_a_new_raw_file_starts_exactly_one_sync(
    app: FGDApplication, settings: Any, repo: Path
) -> None:
    fabric_id = synced(app, settings, str(repo))
    sched = scheduler(app)
    assert ticks(sched, 2)[-1].started == []
    seed_repo(repo, {"gitops/raw/more.yaml": vpc("vpc-2", 2)}, message="a new VPC")

    reports = ticks(sched, 3)  # the sync stays pending (no worker): later ticks skip it

    started = [s for r in reports for s in r.started]
    assert [(s["fabric_id"], s["trigger"]) for s in started] == [(fabric_id, "scheduled")]
    assert len(list(app.syncs_of(fabric_id))) == 2


def test_a_file_that_failed_and_is_unchanged_is_owed_nothing(
    app: FGDApplication, settings: Any, repo: Path
) -> None:
    seed_repo(repo, {"gitops/raw/broken.yaml": b"kind: VPC\nmetadata: {name: Bad_Name}\n"})
    fabric_id = synced(app, settings, str(repo))
    failed = app.get_sync(app.get_fabric(fabric_id).last_sync_id or "")
    assert failed.files["gitops/raw/broken.yaml"]["status"] == "failed"
    before = app.last_position()

    reports = ticks(scheduler(app), 3)

    assert app.last_position() == before and all(r.started == [] for r in reports)


def test_a_file_owed_a_retry_after_a_transient_error_gets_its_sync(
    app: FGDApplication, settings: Any, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_repo(repo, {"gitops/raw/flaky.yaml": vpc("vpc-3", 3)})
    real = plan_module._draft_file

    def flaky(path: str, *args: Any, **kwargs: Any) -> Any:
        if path.endswith("flaky.yaml"):
            raise MemoryError("transient")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(plan_module, "_draft_file", flaky)
    fabric_id = synced(app, settings, str(repo))
    first = app.get_sync(app.get_fabric(fabric_id).last_sync_id or "")
    assert first.files["gitops/raw/flaky.yaml"]["validation_errors"][0]["code"] == "FGD_5001"
    monkeypatch.setattr(plan_module, "_draft_file", real)
    sched = scheduler(app)

    report = ticks(sched, 1)[0]

    assert [s["fabric_id"] for s in report.started] == [fabric_id]
    # The retry, run, settles it: afterwards the fabric is quiet again.
    SyncRunner(app, settings.fgd).execute(report.started[0]["sync_id"])
    assert app.get_sync(report.started[0]["sync_id"]).files["gitops/raw/flaky.yaml"][
        "status"] == "processed"
    before = app.last_position()
    assert ticks(sched, 2)[-1].started == [] and app.last_position() == before


def test_a_fabric_whose_last_sync_failed_or_never_ran_is_synced(
    app: FGDApplication, settings: Any, repo: Path, tmp_path: Path
) -> None:
    never = app.register_fabric("never", str(repo), sync_interval_minutes=INTERVAL)
    gone = app.register_fabric("gone", str(tmp_path / "missing.git"),
                               sync_interval_minutes=INTERVAL)
    assert SyncRunner(app, settings.fgd).run(gone.fabric_id).sync.state == "failed"

    report = ticks(scheduler(app), 1)[0]

    assert {s["fabric_id"] for s in report.started} == {never.fabric_id, gone.fabric_id}


def test_a_webhook_follow_up_with_nothing_new_is_settled_by_the_check(
    app: FGDApplication, settings: Any, repo: Path
) -> None:
    fabric_id = synced(app, settings, str(repo))
    delivery = uuid.uuid4().hex
    app.save(WebhookDelivery(
        delivery_id=delivery, correlation_id=f"github-{delivery}", github_event="push",
        repository="org/lab", ref="refs/heads/main", after="0" * 40, triggered=[],
        coalesced=[fabric_id], ignored=None,
    ))
    sched = scheduler(app)
    before = app.last_position()

    first = sched.run_once(datetime.now(UTC))
    second = sched.run_once(datetime.now(UTC) + timedelta(seconds=10))

    assert [(u["fabric_id"], u["trigger"]) for u in first.unchanged] == [(fabric_id, "webhook")]
    assert second.checked == 0 and app.last_position() == before


def test_over_http_an_unchanged_check_is_one_ls_remote(
    app: FGDApplication, settings: Any, git_http_server: GitHTTPServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    bare = init_bare(git_http_server.root / "fabric.git")
    seed_repo(bare, {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1)})
    fabric_id = synced(app, settings, git_http_server.url("fabric.git"))
    sched = scheduler(app)
    git_http_server.requests.clear()
    before = app.last_position()

    assert ticks(sched, 3)[-1].started == []

    assert app.last_position() == before
    # An ls-remote is protocol v2's two small requests (capabilities, then ls-refs for
    # the one branch); a fetch adds three (its own capabilities and ls-refs, then the pack).
    assert [m for m, _, _ in git_http_server.requests] == ["GET", "POST"] * 3
    # A commit outside raw/: one fetch (incremental) to compare the raw/ trees, then refs only.
    seed_repo(bare, {"docs/notes.md": b"hello\n"}, message="docs")
    git_http_server.requests.clear()
    assert all(r.started == [] for r in ticks(sched, 3))
    assert len(git_http_server.requests) == 2 * 3 + 3  # one fetch in three checks
    assert app.last_position() == before
    seed_repo(bare, {"gitops/raw/new.yaml": vpc("vpc-2", 2)}, message="new VPC")
    assert [s["fabric_id"] for s in ticks(sched, 1)[0].started] == [fabric_id]
    assert app.last_position() > before


def test_the_check_reads_the_cache_of_the_fabric_it_was_given(
    app: FGDApplication, settings: Any, repo: Path, tmp_path: Path
) -> None:
    """A custom remote factory is what the check uses (the CLI passes the configured one)."""
    seen: list[int] = []

    def factory(fabric: Any) -> Any:
        from fgd_core.adapters.git_repo import GitRemote

        seen.append(fabric.fabric_id)
        return GitRemote(fabric.repository)

    fabric_id = synced(app, settings, str(repo))
    sched = scheduler(app, change_check=ChangeCheck(app, factory))
    ticks(sched, 3)
    assert seen == [fabric_id]  # one remote per fabric, kept between checks


def test_the_scheduler_reloads_only_the_fabrics_the_log_says_changed(
    app: FGDApplication, settings: Any, repo: Path
) -> None:
    quiet = synced(app, settings, str(repo))
    sched = scheduler(app)
    ticks(sched, 1)
    assert sched.watch.reloaded == 1  # the first tick lists every fabric
    ticks(sched, 2)
    assert sched.watch.reloaded == 0  # nothing recorded since: nothing reloaded
    app.update_fabric(quiet, sync_enabled=False)
    report = ticks(sched, 1)[0]
    assert sched.watch.reloaded == 1 and report.checked == 0  # the change is seen at once
    other = app.register_fabric("another", str(repo), gitops_directory="another",
                                sync_interval_minutes=INTERVAL)
    report = ticks(sched, 1)[0]
    assert sched.watch.reloaded == 2  # a registration lists them all again
    assert [s["fabric_id"] for s in report.started] == [other.fabric_id]


def test_a_tick_checks_its_fabrics_concurrently(
    app: FGDApplication, settings: Any, git_http_server: GitHTTPServer,  # noqa: F811
) -> None:
    """A remote check waits on the network: a tick's checks overlap instead of queueing."""
    ids = []
    for n in range(6):
        bare = init_bare(git_http_server.root / f"fabric-{n}.git")
        seed_repo(bare, {"gitops/raw/vpcs.yaml": vpc("vpc-1", 1)})
        ids.append(synced(app, settings, git_http_server.url(f"fabric-{n}.git")))
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def slow(method: str, path: str) -> None:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1

    git_http_server.before_backend = slow
    before = app.last_position()

    report = ticks(scheduler(app), 1)[0]

    assert sorted(u["fabric_id"] for u in report.unchanged) == sorted(ids)
    assert most[0] >= 2 and app.last_position() == before
