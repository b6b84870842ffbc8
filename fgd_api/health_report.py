"""What ``/api/plugins/hedgehog/health/`` sees beyond the API's own database and broker
connections: the relay, the work queues, the scheduler, read-model stalls, the active syncs
and the ``monitoring.alert_thresholds`` — and which of it stops a sync from making progress.

Each check has a ``status``; a problem is either **unhealthy** (a sync cannot make progress,
or the API cannot serve: HTTP 503) or a **warning** (HTTP 200, ``status: "warning"``), and is
listed in the answer's ``problems`` naming its check and what is wrong:

* relay (with a broker): not holding its lock (PostgreSQL), never run, or its oldest
  unpublished event older than ``relay_lag_seconds`` — unhealthy while a sync is active,
  a warning otherwise (nothing waits on it, but bus subscribers are behind).
* queues (with a broker): a work queue holding messages with no consumer is unhealthy; one
  nobody declared is unhealthy while a sync is active (its events are dropped); more than
  ``queue_depth`` messages is a warning.
* scheduler: never seen, or no tick for three intervals (at least 30 s) — a warning
  (scheduled syncs and sync timeouts wait; running syncs do not).
* projections: stuck at an event (as before) or stalled — behind and not moving for
  ``relay_lag_seconds`` — unhealthy.
* syncs: an active sync running longer than ``sync_duration_seconds``, or more than
  ``error_rate_percent`` of the syncs that ended in the last hour failed or timed out — a
  warning. ``fgd_alert_value|threshold|breached{threshold}`` expose each threshold.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge

from fgd_api.projections.dialects import parse_ts
from fgd_core.adapters.metrics import fgd_active_syncs
from fgd_core.config import AlertThresholds
from fgd_workers import liveness

ERROR_RATE_WINDOW = timedelta(hours=1)
SCHEDULER_LATE_FACTOR, SCHEDULER_LATE_MIN = 3.0, 30.0
WORK_QUEUES = ("discovery", "ingestion", "github")
COMMANDS_QUEUE = "fgd.commands.intake"  # fgd_workers.commands.INTAKE_QUEUE

ALERT_THRESHOLD = Gauge("fgd_alert_threshold", "A monitoring.alert_thresholds value",
                        ["threshold"])
ALERT_VALUE = Gauge("fgd_alert_value", "The value compared with an alert threshold",
                    ["threshold"])
ALERT_BREACHED = Gauge("fgd_alert_breached", "1 while the value is beyond its alert threshold",
                       ["threshold"])


def _age(stamp: Any, now: datetime) -> float:
    return max(0.0, (now - parse_ts(stamp)).total_seconds())


class HealthMonitor:
    """One per API container: evaluates every check, remembering only how long the read
    model has been behind at one position (to tell a stall from a busy moment)."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.thresholds: AlertThresholds = container.settings.fgd.monitoring.alert_thresholds
        self._projection_seen: tuple[int, float] | None = None  # position, since (monotonic)
        self._lock = threading.Lock()

    # -- the whole report --------------------------------------------------------------------

    def evaluate(self, checks: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """Add the relay, queues, scheduler, syncs and alerts to ``checks`` (database, broker
        and projections are already there); returns (problems, active syncs)."""
        problems: list[dict[str, Any]] = []
        now = datetime.now(UTC)
        syncs = self._syncs(now, problems)
        checks["syncs"] = syncs
        active = int(syncs.get("active") or 0)
        self._projection_stall(checks.get("projections"), problems)
        broker_ok = (checks.get("broker") or {}).get("status") == "ok"
        if self.container.settings.broker_url:
            checks["relay"] = self._relay(now, active, problems)
            if broker_ok:
                checks["queues"] = self._queues(active, problems)
            else:
                checks["queues"] = {"status": "unknown"}
        checks["scheduler"] = self._scheduler(now, problems)
        return problems, active

    # -- syncs and their thresholds ----------------------------------------------------------

    def _syncs(self, now: datetime, problems: list[dict[str, Any]]) -> dict[str, Any]:
        view = getattr(self.container.read_model, "view", None)
        if view is None:
            return {"status": "unknown", "active": self.container.executor.active}
        rows = view.fetchall("SELECT sync_id, started_at FROM {sync}"
                             " WHERE state IN ('pending', 'processing')")
        fgd_active_syncs.set(len(rows))
        limit = self.thresholds.sync_duration_seconds
        ages = {str(r["sync_id"]): _age(r["started_at"], now) for r in rows}
        longest = max(ages.values(), default=0.0)
        over = sorted(s for s, age in ages.items() if age > limit)
        self._alert("sync_duration_seconds", longest, limit)
        check: dict[str, Any] = {"status": "ok", "active": len(rows),
                                 "longest_running_seconds": round(longest, 1)}
        if over:
            check |= {"status": "warning", "over_duration": over[:20]}
            problems.append(_problem("syncs", "warning", f"{len(over)} sync(s) running longer "
                                     f"than sync_duration_seconds ({limit} s): "
                                     + ", ".join(over[:5])))
        since = view.dialect.to_db("ts", now - ERROR_RATE_WINDOW)
        ended = {str(r["state"]): int(r["n"]) for r in view.fetchall(
            "SELECT state, COUNT(*) AS n FROM {sync} WHERE completed_at >= ?"
            " AND state IN ('completed', 'failed', 'cancelled', 'timed_out') GROUP BY state",
            since)}
        total = sum(ended.values())
        failed = ended.get("failed", 0) + ended.get("timed_out", 0)
        rate = 100.0 * failed / total if total else 0.0
        rate_limit = self.thresholds.error_rate_percent
        check |= {"ended_last_hour": total, "failed_last_hour": failed,
                  "error_rate_percent": round(rate, 2)}
        if self._alert("error_rate_percent", rate, rate_limit):
            check["status"] = "warning"
            problems.append(_problem("syncs", "warning", f"{rate:.1f}% of the {total} syncs "
                                     f"that ended in the last hour failed (error_rate_percent "
                                     f"{rate_limit})"))
        return check

    def _alert(self, name: str, value: float, threshold: float) -> bool:
        breached = value > threshold
        ALERT_THRESHOLD.labels(name).set(threshold)
        ALERT_VALUE.labels(name).set(value)
        ALERT_BREACHED.labels(name).set(int(breached))
        return breached

    # -- relay ---------------------------------------------------------------------------------

    def _relay(self, now: datetime, active: int, problems: list[dict[str, Any]]
               ) -> dict[str, Any]:
        recorder = self.container.app.recorder
        head = int(recorder.max_notification_id() or 0)
        positions = liveness.relay_positions(recorder)
        limit = self.thresholds.relay_lag_seconds
        severity = "unhealthy" if active else "warning"
        if not positions:
            self._alert("relay_lag_seconds", 0.0, limit)
            check: dict[str, Any] = {"status": "never_ran", "head": head}
            if head:
                problems.append(_problem("relay", severity, "no relay has ever published "
                                         "(fgd worker relay): events are not reaching the "
                                         "workers"))
            return check
        name, position = max(positions.items(), key=lambda item: item[1])
        behind = max(0, head - position)
        oldest = liveness.oldest_after(recorder, position) if behind else None
        lag = _age(oldest, now) if oldest is not None else 0.0
        running = liveness.relay_holds_lock(recorder, name)
        check = {"status": "ok", "name": name, "position": position, "head": head,
                 "behind": behind, "lag_seconds": round(lag, 1), "running": running}
        stalled = self._alert("relay_lag_seconds", lag, limit)
        if running is False:
            check["status"] = "not_running"
        elif stalled:
            check["status"] = "stalled"
        if running is False and behind:
            problems.append(_problem("relay", severity, f"relay {name} is not running and is "
                                     f"{behind} event(s) behind the event store"))
        elif stalled:
            problems.append(_problem("relay", severity, f"relay {name} is {behind} event(s) "
                                     f"behind; the oldest waits since {lag:.0f} s "
                                     f"(relay_lag_seconds {limit})"))
        elif running is False:
            problems.append(_problem("relay", "warning", f"relay {name} is not running"))
        return check

    # -- queues --------------------------------------------------------------------------------

    def _queue_names(self) -> tuple[list[str], str]:
        runtime = self.container.settings.runtime
        prefix = runtime.queue_prefix  # HEDGEHOG_FGD_QUEUE_PREFIX
        commands = runtime.commands_queue or COMMANDS_QUEUE  # HEDGEHOG_FGD_COMMANDS_QUEUE
        return [f"{prefix}.{kind}" for kind in WORK_QUEUES], commands

    def _queues(self, active: int, problems: list[dict[str, Any]]) -> dict[str, Any]:
        stats = self.container.extras.get("queue_stats")
        if stats is None:
            return {"status": "unknown"}
        work, commands = self._queue_names()
        try:
            counts = stats([*work, commands])
        except Exception as exc:  # the broker went away between the two probes
            return {"status": "unknown", "error": type(exc).__name__}
        check: dict[str, Any] = {"status": "ok"}
        depth_limit = self.thresholds.queue_depth
        deepest = 0
        found_problems: list[dict[str, Any]] = []
        for queue, found in counts.items():
            if found is None:
                if queue == commands:
                    continue  # bus intake is optional
                check[queue] = {"status": "absent"}
                found_problems.append(_problem(
                    "queues", "unhealthy" if active else "warning",
                    f"queue {queue} does not exist: no worker has consumed it yet, its "
                    "events are dropped", queue=queue))
                continue
            messages, consumers = found
            deepest = max(deepest, messages)
            entry: dict[str, Any] = {"status": "ok", "messages": messages,
                                     "consumers": consumers}
            if messages and not consumers:
                entry["status"] = "no_consumer"
                found_problems.append(_problem("queues", "unhealthy", f"queue {queue} holds "
                                               f"{messages} message(s) and has no consumer",
                                               queue=queue))
            elif messages > depth_limit:
                entry["status"] = "deep"
                found_problems.append(_problem("queues", "warning", f"queue {queue} holds "
                                               f"{messages} messages (queue_depth "
                                               f"{depth_limit})", queue=queue))
            check[queue] = entry
        self._alert("queue_depth", deepest, depth_limit)
        if found_problems:
            check["status"] = ("unhealthy" if any(p["severity"] == "unhealthy"
                                                  for p in found_problems) else "warning")
            problems.extend(found_problems)
        return check

    # -- scheduler -----------------------------------------------------------------------------

    def _scheduler(self, now: datetime, problems: list[dict[str, Any]]) -> dict[str, Any]:
        runs = liveness.scheduler_runs(self.container.app.recorder)
        if not runs:
            problems.append(_problem("scheduler", "warning", "no scheduler has run: scheduled "
                                     "syncs and sync timeouts wait (fgd worker scheduler)"))
            return {"status": "not_seen"}
        newest = max(runs, key=lambda r: r["last_run"])
        age = _age(newest["last_run"], now)
        late_after = max(SCHEDULER_LATE_MIN, SCHEDULER_LATE_FACTOR * newest["interval_seconds"])
        check = {"status": "ok", "name": newest["name"], "last_run": newest["last_run"],
                 "age_seconds": round(age, 1)}
        if age > late_after:
            check["status"] = "late"
            problems.append(_problem("scheduler", "warning", f"scheduler {newest['name']} last "
                                     f"ran {age:.0f} s ago"))
        return check

    # -- read model ----------------------------------------------------------------------------

    def _projection_stall(self, check: Any, problems: list[dict[str, Any]]) -> None:
        """Behind, not stuck at a known event, and not moving for ``relay_lag_seconds``."""
        if not isinstance(check, dict) or check.get("status") != "ok":
            if isinstance(check, dict) and check.get("status") == "stuck":
                problems.append(_problem("projections", "unhealthy", f"the read model is "
                                         f"stuck at event {check.get('position')}"))
            return
        lag = int(check.get("lag") or 0)
        position = self.container.read_model.position() if lag else 0
        with self._lock:
            seen = self._projection_seen
            if not lag:
                self._projection_seen = None
                return
            if seen is None or seen[0] != position:
                self._projection_seen = seen = (position, time.monotonic())
        still = time.monotonic() - seen[1]
        if still > self.thresholds.relay_lag_seconds:
            check |= {"status": "stalled", "position": position,
                      "stalled_seconds": round(still, 1)}
            problems.append(_problem("projections", "unhealthy", f"the read model is {lag} "
                                     f"event(s) behind and has not moved for {still:.0f} s"))


def _problem(check: str, severity: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"check": check, "severity": severity, "message": message, **extra}


def monitor_of(container: Any) -> HealthMonitor:
    monitor = container.extras.get("health_monitor")
    if monitor is None:
        monitor = container.extras["health_monitor"] = HealthMonitor(container)
    return monitor  # type: ignore[no-any-return]


__all__ = ["ALERT_BREACHED", "ALERT_THRESHOLD", "ALERT_VALUE", "HealthMonitor", "monitor_of"]
