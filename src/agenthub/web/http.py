"""Plain HTTP on the gateway's port: liveness and Prometheus metrics.

``/metrics`` needs the gateway's credential (``Authorization: Bearer``) when the
gateway has one, unless ``security.metrics_public`` opens it to scrapers that
cannot send one; a gateway without authentication binds loopback only anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from .. import __version__
from ..core.node import Node
from ..core.transcripts import TranscriptCache
from ..protocol import _json
from .access import AccessDenied
from .listener import ConnectionDoor
from .ws import FrameCounters

__all__ = ["GatewayCollector", "healthz", "metrics_handler"]


class GatewayCollector(Collector):
    """Reads the node's counters at scrape time, so the hot path only bumps integers."""

    def __init__(
        self,
        node: Node,
        counters: FrameCounters,
        transcripts: TranscriptCache | None = None,
        door: ConnectionDoor | None = None,
    ) -> None:
        self.node = node
        self.counters = counters
        self.transcripts = transcripts
        self.door = door

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        node = self.node
        yield from self._backend(node)
        yield GaugeMetricFamily("agenthub_connections", "Open client connections", value=len(node.connections))
        yield CounterMetricFamily("agenthub_frames_in", "Frames received", value=self.counters.frames_in)
        yield CounterMetricFamily("agenthub_frames_out", "Frames sent", value=self.counters.frames_out)
        yield CounterMetricFamily("agenthub_bytes_out", "Payload bytes sent", value=self.counters.bytes_out)
        runs = CounterMetricFamily("agenthub_runs", "Runs by state since start", labels=["state"])
        for state, n in sorted(node.runs.totals.items()):
            runs.add_metric([state], n)
        yield runs
        yield GaugeMetricFamily("agenthub_runs_active", "Runs queued or running", value=len(node.runs.runs))
        bus = node.bus.stats()  # the replay history, as counted against limits.history_bytes_*
        yield GaugeMetricFamily("agenthub_bus_history_bytes", "Bytes the replay history holds", value=bus.bytes)
        yield GaugeMetricFamily("agenthub_bus_history_events", "Events the replay history holds", value=bus.events)
        yield GaugeMetricFamily("agenthub_bus_streams", "Streams the replay history holds", value=bus.streams)
        yield CounterMetricFamily(
            "agenthub_bus_evicted_events", "Events the replay history let go", value=bus.evicted_events
        )
        yield CounterMetricFamily(
            "agenthub_bus_evicted_streams", "Streams the replay history let go", value=bus.evicted_streams
        )
        drops = sum(c.dropped for c in node.connections.values()) + node.dropped_closed
        yield CounterMetricFamily("agenthub_queue_drops", "Droppable events skipped for slow consumers", value=drops)
        door = self.door
        if door is not None:  # the TCP door of every listener (web.listener)
            yield GaugeMetricFamily("agenthub_tcp_connections", "Open TCP connections, all listeners", value=door.open)
            yield CounterMetricFamily(
                "agenthub_tcp_refused", "TCP connections refused at the connection cap", value=door.refused_total
            )
            yield CounterMetricFamily(
                "agenthub_header_timeouts",
                "Connections closed for not sending a request head in time",
                value=door.head_timeouts,
            )
        cache = self.transcripts
        if cache is not None:  # is the transcript cache big enough for the sessions people read?
            yield CounterMetricFamily(
                "agenthub_transcript_cache_hits", "Transcript reads answered from memory", value=cache.hits
            )
            yield CounterMetricFamily(
                "agenthub_transcript_cache_misses", "Transcript reads that loaded a session", value=cache.misses
            )
            yield GaugeMetricFamily(
                "agenthub_transcript_cache_sessions",
                "Sessions held in the transcript cache",
                value=len(cache.cached_sessions()),
            )
            yield GaugeMetricFamily(
                "agenthub_transcript_cache_bytes",
                "Approximate bytes the transcript cache holds",
                value=cache.cached_bytes,
            )

    @staticmethod
    def _backend(node: Node) -> Iterator[GaugeMetricFamily | CounterMetricFamily | InfoMetricFamily]:
        """Which process answers (a scrape reaches one worker) and the shared backends' state."""
        backend = node.backend()
        proc, bus, cluster = backend["process"], backend["bus"], backend["cluster"]
        worker = "" if proc["worker"] is None else str(proc["worker"])
        yield InfoMetricFamily(
            "agenthub_backend",
            "The process that answered and its backends",
            value={
                "bus": str(bus["kind"]),
                "cluster": str(cluster["kind"]),
                "pid": str(proc["pid"]),
                "worker": worker,
                "node": str(proc["nodeId"]),
            },
        )
        yield GaugeMetricFamily(
            "agenthub_backend_ok", "1 while every shared backend is reachable", value=int(node.health()["ok"])
        )
        if bus["kind"] == "redis":
            yield GaugeMetricFamily(
                "agenthub_bus_lag_ms", "Publish to local delivery through Redis (smoothed)", value=bus["lagMs"]
            )
            yield GaugeMetricFamily(
                "agenthub_bus_pending", "Events queued for Redis or in flight", value=bus["pending"]
            )
            yield GaugeMetricFamily(
                "agenthub_bus_read_lag_ms", "How far this process reads behind the shared log", value=bus["readLagMs"]
            )
            yield CounterMetricFamily(
                "agenthub_bus_log_overruns",
                "Shared-log entries trimmed before this process read them",
                value=bus["overruns"],
            )
            yield CounterMetricFamily(
                "agenthub_bus_remote_events", "Events received from other processes", value=bus["remote"]
            )
            yield CounterMetricFamily(
                "agenthub_bus_local_only_events",
                "Events delivered without Redis (it was unreachable)",
                value=bus["localOnly"],
            )
            yield GaugeMetricFamily(
                "agenthub_cluster_nodes", "Live gateway processes sharing Redis", value=cluster.get("liveNodes", 1)
            )
        db = backend.get("database")
        if isinstance(db, dict):
            for name, key in (("size", "size"), ("checked_out", "checkedout"), ("overflow", "overflow")):
                if isinstance(db.get(key), int):
                    yield GaugeMetricFamily(
                        f"agenthub_db_pool_{name}", f"Database connection pool: {name}", value=db[key]
                    )


def metrics_handler(
    registry: CollectorRegistry, guard: Callable[[web.Request], Awaitable[None]] | None = None
) -> Handler:
    """Serves ``registry`` in Prometheus' text format; ``guard`` raises ``AccessDenied`` to refuse."""

    async def metrics(request: web.Request) -> web.Response:
        if guard is not None:
            try:
                await guard(request)
            except AccessDenied as exc:
                headers = {"WWW-Authenticate": 'Bearer realm="agenthub"', **exc.headers()}
                return web.json_response(
                    {"error": {"code": exc.code, "message": exc.message}}, status=exc.http_status, headers=headers
                )
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    return metrics


def healthz(node: Node) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        body = {"ok": True, "version": __version__, "connections": len(node.connections)}
        return web.Response(body=_json.dumps(body), content_type="application/json")

    return handle
