"""Prometheus metrics: latency histograms, per-dialect connection gauges, store timings, process metrics.

``GatewayMetrics`` is the core's ``Observer`` for RPCs, runs and bus publishes;
it owns one registry per gateway (several gateways in one process keep apart),
with prometheus-client's process, platform and GC collectors, and the
scrape-time ``GatewayCollector`` of ``web.http``. Store timings come from
SQLAlchemy's cursor events, so the store itself knows nothing of metrics.
WebSocket connections are counted per dialect by a middleware on each listener,
so the dialect modules know nothing of metrics either.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..core.observe import RpcProbe, RunProbe, bind_log_context, new_request_id
from ..protocol.methods import METHODS

__all__ = ["GatewayMetrics", "dialect_of"]

log = logging.getLogger(__name__)

# Seconds. RPCs answer in microseconds to seconds (a slow store, a node.invoke); runs take seconds to minutes.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
FAST_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1)

# WebSocket paths on the main listener -> dialect (the extra listeners are named for theirs).
_MAIN_PATHS = (("/api/v1/gateway/ws", "agentbox"), ("/api/v1/pipelines/", "langbot"))


def dialect_of(listener: str, path: str) -> str:
    """The dialect a WebSocket upgrade speaks, from the listener it came in on and its path."""
    if listener != "main":
        return listener
    if path == "/":
        return "native"
    for prefix, dialect in _MAIN_PATHS:
        if path.startswith(prefix):
            return dialect
    return "other"


class _RpcProbe:
    __slots__ = ("_m", "_method", "_t0")

    def __init__(self, metrics: GatewayMetrics, method: str) -> None:
        self._m = metrics
        self._method = method if method in METHODS else "unknown"  # a bounded label set
        self._t0 = time.perf_counter()

    def end(self, ok: bool, error_code: str | None) -> None:
        outcome = "ok" if ok else (error_code or "error")
        self._m.rpc_child(self._method, outcome).observe(time.perf_counter() - self._t0)


class _RunProbe:
    __slots__ = ("_m", "_origin", "_start", "_t0")

    def __init__(self, metrics: GatewayMetrics, origin: str) -> None:
        self._m = metrics
        self._origin = origin.split(":", 1)[0][:32]  # "agentbox:alice" -> "agentbox": bounded labels
        self._t0 = time.perf_counter()
        self._start: float | None = None

    def started(self) -> None:
        self._start = time.perf_counter()
        self._m.run_queue_seconds.observe(self._start - self._t0)

    def end(self, status: str, error: str | None) -> None:
        if self._start is not None:  # a run that never executed has no duration
            self._m.run_seconds.labels(status, self._origin).observe(time.perf_counter() - self._start)


class GatewayMetrics:
    """One gateway's registry and the core ``Observer`` that feeds its histograms."""

    def __init__(self, collectors: list[Collector] | None = None, *, process: bool = True) -> None:
        self.registry = registry = CollectorRegistry()
        if process:  # prometheus-client's default collectors: process_*, python_info, python_gc_*
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        for collector in collectors or ():
            registry.register(collector)
        self.rpc_seconds = Histogram(
            "agenthub_rpc_duration_seconds",
            "Time from a request to its response, by method and outcome (ok or the error code)",
            ["method", "outcome"],
            buckets=RPC_BUCKETS,
            registry=registry,
        )
        self.run_seconds = Histogram(
            "agenthub_run_duration_seconds",
            "Time a run executed, from start to its final event, by status and origin",
            ["status", "origin"],
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.run_queue_seconds = Histogram(
            "agenthub_run_queue_seconds",
            "Time a run waited for its session's previous run before executing",
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.bus_seconds = Histogram(
            "agenthub_bus_publish_seconds",
            "Time to number, store and fan out one event on the bus",
            buckets=FAST_BUCKETS,
            registry=registry,
        )
        self.store_seconds = Histogram(
            "agenthub_store_statement_seconds",
            "Time of one database statement, by kind (select, insert, update, delete, other)",
            ["kind"],
            buckets=FAST_BUCKETS,
            registry=registry,
        )
        self.ws_connections = Gauge(
            "agenthub_dialect_connections",
            "Open WebSocket connections by dialect (native, agentbox, langbot, myagent)",
            ["dialect"],
            registry=registry,
        )
        self._rpc_children: dict[tuple[str, str], Any] = {}
        for dialect in ("native", "agentbox", "langbot", "myagent"):
            self.ws_connections.labels(dialect)  # present at 0 before the first connection

    def rpc_child(self, method: str, outcome: str) -> Any:
        """The histogram child of (method, outcome), cached: ``labels()`` takes a lock on every call."""
        key = (method, outcome)
        child = self._rpc_children.get(key)
        if child is None:
            child = self._rpc_children[key] = self.rpc_seconds.labels(method, outcome)
        return child

    # -- core.observe.Observer -----------------------------------------------------
    def rpc(self, method: str, conn_id: str, request_id: str) -> RpcProbe:
        return _RpcProbe(self, method)

    def run(self, run_id: str, session_key: str, origin: str, request_id: str) -> RunProbe:
        return _RunProbe(self, origin)

    def bus_published(self, seconds: float) -> None:
        self.bus_seconds.observe(seconds)

    # -- store --------------------------------------------------------------------
    def watch_engine(self, engine: Any) -> None:
        """Time every statement of a SQLAlchemy (async) engine through its cursor events."""
        from sqlalchemy import event

        sync_engine = getattr(engine, "sync_engine", engine)
        histogram = self.store_seconds

        def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            conn.info.setdefault("agenthub_t0", []).append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            starts = conn.info.get("agenthub_t0")
            if not starts:
                return
            kind = statement.lstrip()[:6].lower()
            kind = kind if kind in ("select", "insert", "update", "delete") else "other"
            histogram.labels(kind).observe(time.perf_counter() - starts.pop())

        def failed(context: Any) -> None:
            starts = context.connection.info.get("agenthub_t0") if context.connection is not None else None
            if starts:
                starts.pop()

        event.listen(sync_engine, "before_cursor_execute", before)
        event.listen(sync_engine, "after_cursor_execute", after)
        event.listen(sync_engine, "handle_error", failed)

    # -- the edge -------------------------------------------------------------------
    def middleware(self, listener: str) -> Middleware:
        """Counts WebSocket upgrades per dialect while they are served, and logs dialect sockets' lifetimes."""
        gauge = self.ws_connections

        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() != "websocket":
                return await handler(request)
            dialect = dialect_of(listener, request.path)
            child = gauge.labels(dialect)
            child.inc()
            native = dialect == "native"  # web.ws logs the native connection under its own conn id
            if not native:
                conn_id = new_request_id()
                bind_log_context(conn_id=conn_id)
                log.info("connection open: dialect=%s ip=%s path=%s", dialect, request.remote, request.path)
            t0 = time.monotonic()
            try:
                return await handler(request)
            finally:
                child.dec()
                if not native:
                    log.info("connection closed: dialect=%s after %.1f s", dialect, time.monotonic() - t0)

        return count
