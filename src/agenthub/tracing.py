"""OpenTelemetry traces (the ``otel`` extra): a span per RPC and per run.

``TracingObserver`` is a ``core.observe.Observer``. An RPC's span is the
current span while its handler runs, so the span of a run that an ``agent`` or
``chat.send`` request starts is its child: one trace shows the request, its
run, and how long each took. Spans carry the request id that the log lines
carry (``agenthub.request_id``), so a trace and its log lines find each other.

``install`` uses the tracer provider an embedding program set up; otherwise it
sets up one that exports over OTLP/HTTP, configured by the standard
``OTEL_EXPORTER_OTLP_*`` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from . import __version__
from .core.observe import RpcProbe, RunProbe

__all__ = ["TracingObserver", "install"]


class _RpcSpan:
    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token = token

    def end(self, ok: bool, error_code: str | None) -> None:
        span = self._span
        if not ok:
            span.set_attribute("rpc.agenthub.error_code", error_code or "error")
            span.set_status(Status(StatusCode.ERROR, error_code))
        span.end()
        otel_context.detach(self._token)  # type: ignore[arg-type]


class _RunSpan:
    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def started(self) -> None:
        self._span.add_event("started")

    def end(self, status: str, error: str | None) -> None:
        span = self._span
        span.set_attribute("agenthub.run.status", status)
        if status != "ok" and status != "aborted":
            span.set_status(Status(StatusCode.ERROR, error or status))
        span.end()


class TracingObserver:
    """Spans for RPCs (``rpc <method>``, kind SERVER) and runs (``run``, children of the RPC that started them)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def rpc(self, method: str, conn_id: str, request_id: str) -> RpcProbe:
        span = self.tracer.start_span(
            f"rpc {method}",
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "agenthub",
                "rpc.method": method,
                "agenthub.conn_id": conn_id,
                "agenthub.request_id": request_id,
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return _RpcSpan(span, token)

    def run(self, run_id: str, session_key: str, origin: str, request_id: str) -> RunProbe:
        span = self.tracer.start_span(
            "run",
            kind=SpanKind.INTERNAL,
            attributes={
                "agenthub.run_id": run_id,
                "agenthub.session_key": session_key,
                "agenthub.origin": origin,
                "agenthub.request_id": request_id,
            },
        )
        return _RunSpan(span)

    def bus_published(self, seconds: float) -> None:
        """Bus publishes are too many and too short for spans: ``/metrics`` has their histogram."""


def install(service_name: str, stack: contextlib.AsyncExitStack) -> TracingObserver:
    """A tracing observer on the global tracer provider, set up for OTLP/HTTP export if none was."""
    provider: Any = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):  # nobody configured tracing: export over OTLP/HTTP
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        # Flushing may wait on the collector: off the event loop, at exit.
        stack.push_async_callback(asyncio.to_thread, provider.shutdown)
    return TracingObserver(trace.get_tracer("agenthub", __version__))
