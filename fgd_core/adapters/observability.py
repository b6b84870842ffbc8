"""Tracing and structured logs that follow a sync across processes.

One sync is one trace: its trace id is derived from the sync's ``correlation_id``, so the
API request that started it, every stage the runner records and every message the relay
publishes (W3C ``traceparent``) land in the same trace without passing context around.
Logs are JSON lines carrying the ``correlation_id`` of the request or sync in hand.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from fgd_core.redact import scrub_text

correlation_id_var: ContextVar[str | None] = ContextVar("fgd_correlation_id", default=None)
tracer = trace.get_tracer("fgd")


def trace_id_for(correlation_id: str) -> int:
    """The 128-bit trace id of everything done for ``correlation_id``."""
    return int.from_bytes(hashlib.sha256(correlation_id.encode()).digest()[:16], "big") or 1


def span_id_for(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") or 1


def traceparent(correlation_id: str, key: str) -> str:
    """W3C ``traceparent`` header for an item (an event id, say) of a correlated operation."""
    return f"00-{trace_id_for(correlation_id):032x}-{span_id_for(key):016x}-01"


def sync_context_span(correlation_id: str) -> SpanContext:
    """The (remote) root span context of a sync's trace."""
    return SpanContext(
        trace_id=trace_id_for(correlation_id),
        span_id=span_id_for(correlation_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def sync_context(correlation_id: str) -> Any:
    """A parent context whose trace is the sync's: spans started in it join that trace."""
    return trace.set_span_in_context(NonRecordingSpan(sync_context_span(correlation_id)))


@contextmanager
def correlated(correlation_id: str | None) -> Iterator[None]:
    token = correlation_id_var.set(correlation_id)
    try:
        yield
    finally:
        correlation_id_var.reset(token)


@contextmanager
def stage_span(stage: str, sync_id: str, correlation_id: str) -> Iterator[Any]:
    """A span for one stage of a sync, in the sync's trace."""
    with tracer.start_as_current_span(
        f"sync.{stage}",
        context=sync_context(correlation_id),
        attributes={"fgd.sync_id": sync_id, "fgd.stage": stage,
                    "fgd.correlation_id": correlation_id},
    ) as span:
        yield span


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation_id, extras.

    The message and any traceback go through ``scrub_text``: an access log line of a
    WebSocket opened with ``?token=<key>``, or an error quoting a URL with credentials,
    never writes the secret."""

    RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace(
                "+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub_text(record.getMessage()),
            "correlation_id": getattr(record, "correlation_id", None)
            or correlation_id_var.get(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self.RESERVED})
        if record.exc_info:
            entry["exception"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """JSON logs on stderr for every ``fgd`` process."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def configure_tracing(exporter: str) -> None:
    """``console``: print finished spans (for a look without a collector); empty: spans are
    made but not exported. An OTLP exporter can be installed and set up the standard way
    (``opentelemetry-instrument``) — this only covers the built-in choice."""
    if exporter != "console":
        return
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
