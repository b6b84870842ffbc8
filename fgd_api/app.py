"""The FastAPI application: one router per area of the spec, the spec's error bodies, a
correlation id on every request, and the container built once per process."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram

from fgd_api import errors
from fgd_api.container import Container
from fgd_api.db_gate import DatabaseGate
from fgd_api.routers import audit, fabrics, gitops, health, progress_ws, syncs, webhooks
from fgd_core.metrics import EventMetrics
from fgd_core.observability import correlation_id_var, sync_context_span, tracer

log = logging.getLogger("fgd_api")

http_requests_total = Counter(
    "fgd_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
http_request_duration_seconds = Histogram(
    "fgd_http_request_duration_seconds", "HTTP request duration", ["method", "route"]
)


# Everything but health and metrics needs the database.
GATED = "/api/plugins/hedgehog/fabrics", "/api/plugins/hedgehog/sync-status", \
    "/api/plugins/hedgehog/audit-log", "/api/plugins/hedgehog/webhooks"


def create_app(container: Container | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.container is None
        if own:
            app.state.container = Container.build()
        c: Container = app.state.container
        unsubscribe = c.app.subscribe(EventMetrics())
        gate = DatabaseGate(c.settings.database_url)
        app.state.db_gate = gate
        gate.start()
        starter = getattr(c.read_model, "start", None)
        if starter:
            starter()
        try:
            yield
        finally:
            gate.stop()
            unsubscribe()
            if own:
                c.close()

    app = FastAPI(
        title="FGD Sync",
        version="0.1.0",
        description="GitOps sync engine for Hedgehog fabrics: the FGD interface spec's REST API.",
        lifespan=lifespan,
    )
    app.state.container = container
    errors.install(app)

    @app.middleware("http")
    async def correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        cid = (request.headers.get("x-correlation-id") or str(uuid.uuid4()))[:100]
        request.state.correlation_id = cid
        gate = getattr(request.app.state, "db_gate", None)
        if gate is not None and gate.down and request.url.path.startswith(GATED):
            return errors.database_down(cid)
        started = time.perf_counter()
        token = correlation_id_var.set(cid)
        try:
            with tracer.start_as_current_span(
                f"{request.method} {request.url.path}",
                kind=SpanKind.SERVER,
                attributes={"http.method": request.method, "http.target": request.url.path,
                            "fgd.correlation_id": cid},
            ) as span:
                response = await call_next(request)
                span.set_attribute("http.status_code", response.status_code)
                sync_cid = getattr(request.state, "sync_correlation_id", None)
                if sync_cid:  # the request started a sync: point at the sync's own trace
                    span.add_link(sync_context_span(sync_cid))
        finally:
            correlation_id_var.reset(token)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        http_requests_total.labels(request.method, path, str(response.status_code)).inc()
        http_request_duration_seconds.labels(request.method, path).observe(
            time.perf_counter() - started
        )
        response.headers["X-Correlation-ID"] = request.state.correlation_id
        return response

    for module in (syncs, fabrics, gitops, health, webhooks, progress_ws, audit):
        app.include_router(module.router)
    return app
