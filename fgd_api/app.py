"""The FastAPI application: one router per area of the spec, the spec's error bodies, a
correlation id on every request, and the container built once per process."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from prometheus_client import Counter, Histogram
from starlette.datastructures import URL, MutableHeaders
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fgd_api import console, edge_guard, errors
from fgd_api.container import Container
from fgd_api.db_gate import DatabaseGate
from fgd_api.routers import audit, fabrics, gitops, health, progress_ws, syncs, webhooks
from fgd_core.adapters.metrics import EventMetrics
from fgd_core.adapters.observability import correlation_id_var, sync_context_span, tracer

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


class RequestMiddleware:
    """Every HTTP request: a correlation id (``X-Correlation-ID`` in and out, in
    ``request.state`` and the logging context), the request span, the request metrics, and
    503 at once while the database gate says PostgreSQL is down.

    A pure ASGI middleware: the same behaviour as an ``@app.middleware("http")`` function,
    without the task group, the memory streams and the response wrapper that Starlette's
    BaseHTTPMiddleware puts around every request (a large part of a small request's cost).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.body_limit = 0  # fgd.api.max_request_body_bytes, read at the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and edge_guard.check_scope(scope).refusal:
                # refused before the handshake (the client sees 403): nothing is audited
                edge_guard.refused_input_total.labels("websocket").inc()
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        # The edge: path, query, headers (correlation id included) — refused, like a body
        # too large or holding unstorable text, before any endpoint, audit or store sees it.
        head = edge_guard.check_scope(scope)
        refusal = head.refusal
        cid = head.correlation_id
        state = scope.setdefault("state", {})  # request.state, shared with the endpoint
        state["correlation_id"] = cid
        path = URL(scope=scope).path
        method = scope["method"]
        gate = getattr(scope["app"].state, "db_gate", None)
        if gate is not None and gate.down and path.startswith(GATED):
            await errors.database_down(cid)(scope, receive, send)
            return
        started = time.perf_counter()
        span = tracer.start_span(
            f"{method} {path}",
            kind=SpanKind.SERVER,
            attributes={"http.method": method, "http.target": path, "fgd.correlation_id": cid},
        )
        span_open = True

        async def send_with_header(message: Message) -> None:
            nonlocal span_open
            if message["type"] == "http.response.start" and span_open:
                # The endpoint has answered: close the span and count the request now,
                # before the response goes out (as a BaseHTTPMiddleware's call_next would).
                status = message["status"]
                span.set_attribute("http.status_code", status)
                sync_cid = state.get("sync_correlation_id")
                if sync_cid:  # the request started a sync: point at the sync's own trace
                    span.add_link(sync_context_span(sync_cid))
                span_open = False
                span.end()
                route: Any = scope.get("route")
                route_path = getattr(route, "path", "unmatched")
                http_requests_total.labels(method, route_path, str(status)).inc()
                http_request_duration_seconds.labels(method, route_path).observe(
                    time.perf_counter() - started
                )
                MutableHeaders(scope=message)["X-Correlation-ID"] = cid
            await send(message)

        token = correlation_id_var.set(cid)
        context_token = otel_context.attach(set_span_in_context(span))
        try:
            if refusal is None and method in edge_guard.BODY_METHODS and not path.startswith(
                edge_guard.WEBHOOK_PREFIX
            ):
                limit = self.body_limit or edge_guard.body_limit(scope["app"].state)
                self.body_limit = limit
                receive, refusal = await edge_guard.read_body(
                    scope, receive, head.content_length, limit
                )
            if refusal is not None:
                await refusal.response(cid)(scope, receive, send_with_header)
            else:
                await self.app(scope, receive, send_with_header)
        except BaseException as exc:
            if span_open:  # what start_as_current_span does with an escaping exception
                span_open = False
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                span.end()
            raise
        finally:
            otel_context.detach(context_token)
            correlation_id_var.reset(token)
            if span_open:  # no response at all
                span_open = False
                span.end()


def start_embedded_scheduler(c: Container) -> threading.Event | None:
    """Embedded default (no broker): the scheduler runs in this process and hands the syncs
    it starts to the in-process executor. With a broker, `fgd worker scheduler` does it."""
    if c.settings.broker_url:
        return None
    from fgd_workers.scheduler import Scheduler

    stop = threading.Event()

    def on_started(sync_id: str) -> None:
        c.executor.submit(sync_id)  # the future is the executor's to keep

    scheduler = Scheduler(c.app, c.settings.fgd.sync, on_started=on_started)
    threading.Thread(target=scheduler.run, args=(stop,), name="fgd-scheduler",
                     daemon=True).start()
    return stop


def build_when_store_answers(stop: threading.Event | None = None) -> Container:
    """The container, retried with backoff while the event store refuses connections (an
    API started before PostgreSQL, or during its restart): one WARNING line, then one when
    it answers — not a traceback and an exit."""
    from fgd_workers.bus import until_store_answers

    return until_store_answers(Container.build, stop or threading.Event(), "API start-up")


def create_app(
    container: Container | None = None, *, embedded_scheduler: bool = False
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.container is None
        if own:
            app.state.container = build_when_store_answers()
        c: Container = app.state.container
        unsubscribe = c.app.subscribe(EventMetrics())
        gate = DatabaseGate(c.settings.database_url)
        app.state.db_gate = gate
        gate.start()
        starter = getattr(c.read_model, "start", None)
        if starter:
            starter()
        scheduler_stop = start_embedded_scheduler(c) if embedded_scheduler else None
        # Everything alive now (modules, classes, routes, the container: ~90,000 objects)
        # lives as long as the app. Left to the cyclic collector, every full collection
        # re-traverses all of it: 40-70 ms with the GIL held on a 2-core machine (measured),
        # a stall of every request in flight, several times a minute under load. Frozen, a
        # full collection traverses only what was created since. Unfrozen at shutdown, so
        # nothing frozen here outlives the app uncollected.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            if scheduler_stop is not None:
                scheduler_stop.set()
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

    app.add_middleware(RequestMiddleware)

    for module in (syncs, fabrics, gitops, health, webhooks, progress_ws, audit):
        app.include_router(module.router)
    app.include_router(console.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)  # the operator console

    return app
