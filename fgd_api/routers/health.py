"""Health (database, broker, projections, and what ``fgd_api.health_report`` sees: relay,
queues, scheduler, syncs, alert thresholds) and Prometheus metrics; no token needed."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fgd_api.container import Container
from fgd_api.deps import get_container
from fgd_api.health_report import monitor_of
from fgd_api.projections.faults import PROJECTION
from fgd_core.errors import NotFoundError

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/api/plugins/hedgehog/health/")
def health(request: Request, container: Container = Depends(get_container)) -> JSONResponse:
    """``status``: ``ok`` (200), ``warning`` (200: a threshold crossed, a scheduler not
    seen …) or ``degraded`` (503: a sync cannot make progress, or the API cannot serve);
    ``problems`` names the check behind each (fgd_api.health_report)."""
    checks: dict[str, Any] = {}
    healthy = True
    gate = getattr(request.app.state, "db_gate", None)
    if gate is not None and gate.down:  # the pool would only wait for its timeout
        checks["database"] = {"status": "down", "code": "FGD_5002", "error": "unreachable"}
        checks["projections"] = {"status": "unknown"}
        checks["active_syncs"] = container.executor.active
        problems = [{"check": "database", "severity": "unhealthy",
                     "message": "the database is unreachable"}]
        return JSONResponse({"status": "degraded", "checks": checks, "problems": problems},
                            status_code=503)
    try:
        checks["database"] = {
            "status": "ok",
            "position": container.app.recorder.max_notification_id() or 0,
        }
    except Exception as exc:  # any failure to reach the store is "down", never a 500
        checks["database"] = {"status": "down", "code": "FGD_5002", "error": type(exc).__name__}
        healthy = False
    if container.settings.broker_url:
        checks["broker"] = container.extras.get("broker_health", lambda: {"status": "unknown"})()
        healthy = healthy and checks["broker"].get("status") == "ok"
    else:
        checks["broker"] = {"status": "embedded"}
    try:
        checks["projections"] = projections_check(container.read_model)
    except Exception as exc:
        checks["projections"] = {"status": "down", "error": type(exc).__name__}
    healthy = healthy and checks["projections"]["status"] == "ok"
    problems = [{"check": name, "severity": "unhealthy",
                 "message": f"{name}: {checks[name].get('status')}"}
                for name in ("database", "broker", "projections")
                if checks.get(name, {}).get("status") not in ("ok", "embedded")]
    active = container.executor.active
    if checks["database"]["status"] == "ok":
        try:
            found, active = monitor_of(container).evaluate(checks)
            problems += found
        except Exception as exc:  # a check that cannot be made is reported, never a 500
            log.warning("health: a check failed: %s: %s", type(exc).__name__, exc)
            problems.append({"check": "health", "severity": "warning",
                             "message": f"a check could not be made: {type(exc).__name__}"})
    checks["active_syncs"] = active
    healthy = healthy and not any(p["severity"] == "unhealthy" for p in problems)
    status = "degraded" if not healthy else "warning" if problems else "ok"
    body = {"status": status, "checks": checks, "problems": problems}
    return JSONResponse(body, status_code=200 if healthy else 503)


def projections_check(read_model: Any) -> dict[str, Any]:
    """The lag, and the event the read model is stuck at if it is (from the database, so
    whichever process found it): then "stuck", naming the projection, the event's position
    and type, the error, and the way out."""
    check: dict[str, Any] = {"status": "ok", "lag": read_model.lag()}
    fault_of = getattr(read_model, "fault", None)
    fault = fault_of() if fault_of is not None else None
    if fault is not None:
        check |= {
            "status": "stuck", "code": "FGD_5001", "projection": PROJECTION,
            "position": fault["position"], "event_type": fault["event_type"],
            "error": fault["error"], "attempts": fault["attempts"],
            "since": fault["first_seen"],
            "way_out": f"fgd projections skip {fault['position']}, or fix the cause and "
            "fgd projections rebuild (README: the read model is stuck)",
        }
    return check


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request, container: Container = Depends(get_container)) -> Response:
    if not container.settings.fgd.monitoring.metrics_enabled:
        raise NotFoundError(
            "metrics are disabled (fgd.monitoring.metrics_enabled: false / "
            "HEDGEHOG_FGD_METRICS_ENABLED)", details={"key": "fgd.monitoring.metrics_enabled"})
    # fgd_active_syncs and the fgd_alert_* gauges as of now, from the read model.
    gate = getattr(request.app.state, "db_gate", None)
    if gate is None or not gate.down:
        with contextlib.suppress(Exception):  # a scrape during an outage still answers
            monitor_of(container).evaluate({})
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
