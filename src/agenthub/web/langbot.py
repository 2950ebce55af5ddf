"""LangBot edge (seed 004): the pipeline WebSocket and its REST endpoints on the main listener.

One ``LangBotHub`` is a single hub subscriber for all LangBot sockets: it maps
the runs it started to the socket that asked, so fan-out is a dict lookup,
not a scan of every socket. Connections are grouped by pipeline and session
type; each (pipeline, session type) is one core session, so history, reset and
runs live in core. A shared timer closes sockets silent for two heartbeats.

Access (``web.access``): a public pipeline's socket takes anyone; any other
needs the gateway's secret or the pipeline's key, as ``?token=`` (browsers
cannot set headers on a WebSocket) or ``Authorization: Bearer``. The
``default`` pipeline is public when ``security.langbot_default_public`` says
so, and when that is unset, only on a gateway without auth (which only ever
binds loopback): what a newcomer trying the seed's console snippet expects,
and never open on a gateway that has a token. A refused socket gets an
``error`` frame, then close 4401 (credential missing or wrong) or 4429
(locked out after failed guesses, or too many anonymous sockets from its IP).
The REST routes take the gateway's secret as Bearer (loopback callers only on
a gateway without auth); a locked-out IP gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, ValidationError

from ..agents import build_runtime
from ..core.bus import Publication
from ..core.connection import Connection, ConnState
from ..core.node import Node
from ..core.runs import now_ms
from ..core.runtime import AgentRuntime, takes_images
from ..dialects import langbot as lb
from ..protocol import _json
from ..storage.pipelines import Pipeline, SqlitePipelines
from .access import AccessDenied, Gatekeeper
from .edge import Edge
from .ws import FrameCounters, accept

__all__ = ["BroadcastBody", "LangBotHub", "mount"]

log = logging.getLogger(__name__)

CLOSE_UNKNOWN_PIPELINE = 4404
CLOSE_BAD_REQUEST = 4400
CLOSE_IDLE = 4408
UNSUPPORTED = "unsupported_component"
PREFIX = "/api/v1/pipelines/{uuid}/ws"


class BroadcastBody(BaseModel):
    """``POST .../ws/broadcast``: ``message`` (any JSON) goes to every socket of the pipeline."""

    model_config = ConfigDict(extra="ignore")
    message: Any


@dataclass(eq=False, slots=True)
class LangBotSocket:
    conn: Connection
    pipeline: Pipeline
    session_type: str
    connected_ms: int
    last_seen: float
    received: int = 0
    sent: int = 0
    runs: dict[str, int] = field(default_factory=dict)  # runId -> response message id

    def send(self, data: bytes) -> None:
        if self.conn.send(data):
            self.sent += 1

    def stats(self) -> dict[str, Any]:
        return {
            "connection_id": self.conn.conn_id,
            "session_type": self.session_type,
            "connected_at": lb.iso(self.connected_ms),
            "messages_received": self.received,
            "messages_sent": self.sent,
            "last_activity_s_ago": round(time.monotonic() - self.last_seen, 3),
            "remote": self.conn.remote_ip,
        }


class LangBotHub:
    """Every LangBot socket, grouped by pipeline; the hub subscriber for their runs."""

    def __init__(self, node: Node, heartbeat_s: Callable[[], float]) -> None:
        self.node = node
        self.heartbeat_s = heartbeat_s
        self.sockets: dict[str, dict[LangBotSocket, None]] = {}
        self.owners: dict[str, LangBotSocket] = {}
        self._ids = itertools.count(1)
        self._sweep: asyncio.TimerHandle | None = None

    def add(self, sock: LangBotSocket) -> None:
        self.sockets.setdefault(sock.pipeline.uuid, {})[sock] = None
        if self._sweep is None:
            self._schedule()

    def remove(self, sock: LangBotSocket) -> None:
        group = self.sockets.get(sock.pipeline.uuid, {})
        group.pop(sock, None)
        if not group:
            self.sockets.pop(sock.pipeline.uuid, None)
        for run_id in sock.runs:
            self.owners.pop(run_id, None)

    def of(self, pipeline_uuid: str) -> list[LangBotSocket]:
        return list(self.sockets.get(pipeline_uuid, {}))

    def track(self, sock: LangBotSocket, run_id: str) -> None:
        sock.runs[run_id] = next(self._ids)
        self.owners[run_id] = sock

    def deliver(self, pub: Publication) -> None:
        """Translate a run event for the socket that started the run (never awaits)."""
        run_id = pub.payload.get("runId")
        sock = self.owners.get(run_id) if isinstance(run_id, str) else None
        if sock is None:
            return
        frame = lb.translate(pub.event, pub.payload, sock.runs[run_id])  # type: ignore[index]
        if frame is not None:
            sock.send(frame)
        if pub.event == "chat" and pub.payload.get("state") in ("final", "aborted", "error"):
            sock.runs.pop(run_id, None)  # type: ignore[arg-type]
            self.owners.pop(run_id, None)  # type: ignore[arg-type]

    def _schedule(self) -> None:
        self._sweep = asyncio.get_running_loop().call_later(self.heartbeat_s(), self._on_sweep)

    def _on_sweep(self) -> None:
        """One timer for all sockets: close those silent for two heartbeat periods."""
        self._sweep = None
        limit = 2 * self.heartbeat_s()
        now = time.monotonic()
        for group in list(self.sockets.values()):
            for sock in list(group):
                if now - sock.last_seen > limit:
                    sock.conn.close(CLOSE_IDLE, "heartbeat timeout")
        if self.sockets:
            self._schedule()

    def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()


class _Pipelines:
    """Pipeline lookup; without a SQL store only the default pipeline exists."""

    def __init__(self, edge: Edge) -> None:
        engine = getattr(edge.store, "engine", None)
        self.sql = SqlitePipelines(engine) if engine is not None else None

    async def get(self, pipeline_uuid: str) -> Pipeline | None:
        if self.sql is None:
            return Pipeline("default", "default", None, 0) if pipeline_uuid == "default" else None
        return await self.sql.get(pipeline_uuid)


def _runtime_for(edge: Edge, pipeline: Pipeline, cache: dict[str, AgentRuntime]) -> AgentRuntime | None:
    """The pipeline's own provider, or None for the gateway's configured one."""
    s = edge.settings
    if pipeline.provider is None or pipeline.provider == s.provider:
        return None
    runtime = cache.get(pipeline.provider)
    if runtime is None:
        section = s.openai if pipeline.provider == "openai" else s.anthropic
        key = section.api_key.get_secret_value() if section.api_key is not None else None
        runtime = cache[pipeline.provider] = build_runtime(
            pipeline.provider,
            base_url=section.base_url,
            api_key=key,
            model=section.model,
            word_delay_s=s.demo.word_delay_ms / 1000,
        )
    return runtime


async def _run_socket(
    ws: web.WebSocketResponse,
    sock: LangBotSocket,
    on_text: Callable[[str | bytes], Awaitable[None]],
    counters: FrameCounters,
) -> None:
    async for msg in ws:
        if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
            counters.frames_in += 1
            sock.last_seen = time.monotonic()
            sock.received += 1
            await on_text(msg.data)
        elif msg.type is WSMsgType.ERROR:
            break


def is_public(pipeline: Pipeline, settings: Any, node: Node) -> bool:
    """Whether the pipeline's socket takes clients without a credential (see the module docstring)."""
    if pipeline.uuid == "default":
        configured = settings.security.langbot_default_public
        if configured is not None:
            return bool(configured)
        return pipeline.public or not node.auth.requires_credential
    return pipeline.public


def mount(edge: Edge) -> None:
    """Add the LangBot WebSocket and REST routes to the main listener."""
    node = edge.node
    hub = LangBotHub(node, lambda: float(edge.config.settings.langbot.heartbeat_interval_s))
    node.hub.add(hub)
    pipelines = _Pipelines(edge)
    gate = Gatekeeper(node, edge.settings.security.trusted_proxies)
    runtimes: dict[str, AgentRuntime] = {}

    async def connect(request: web.Request) -> web.StreamResponse:
        ws, conn = await accept(request, node, edge.counters)
        if conn is None:
            return ws
        pipeline = await pipelines.get(request.match_info["uuid"])
        if pipeline is None:
            await ws.close(code=CLOSE_UNKNOWN_PIPELINE, message=b"pipeline not found")
            return ws
        session_type = request.query.get("session_type", "person")
        if session_type not in lb.SESSION_TYPES:
            await ws.close(code=CLOSE_BAD_REQUEST, message=b"session_type must be person or group")
            return ws
        try:
            admission = await gate.admit(
                request, anonymous_ok=is_public(pipeline, edge.config.settings, node), key_hash=pipeline.key_hash
            )
        except AccessDenied as exc:
            log.info("langbot refused conn=%s pipeline=%s: %s", conn.conn_id, pipeline.uuid, exc.code)
            conn.send(lb.encode_error(exc.message, exc.code, exc.retry_after_ms))
            await ws.close(code=exc.close_code, message=exc.message.encode()[:120])
            return ws
        try:
            return await _serve_socket(ws, conn, pipeline, session_type)
        finally:
            admission.release()  # an anonymous socket's pre-auth slot is held until it closes

    async def _serve_socket(
        ws: web.WebSocketResponse, conn: Connection, pipeline: Pipeline, session_type: str
    ) -> web.StreamResponse:
        conn.state = ConnState.OPEN
        sock = LangBotSocket(conn, pipeline, session_type, now_ms(), time.monotonic())
        node.open_connection(conn)
        hub.add(sock)
        key = lb.session_key(pipeline.uuid, session_type)
        log.info("langbot open conn=%s pipeline=%s type=%s", conn.conn_id, pipeline.uuid, session_type)
        sock.send(lb.encode_connected(conn.conn_id, pipeline.uuid, session_type))

        async def on_text(data: str | bytes) -> None:
            settings = edge.config.settings.langbot
            try:
                cmd = lb.decode(data, lb.ChainLimits(settings.max_images, settings.max_image_bytes))
            except lb.LangBotInputError as exc:
                sock.send(lb.encode_error(str(exc), exc.code))
                return
            if isinstance(cmd, lb.Ping):
                sock.send(lb.PONG)
                return
            runtime = _runtime_for(edge, pipeline, runtimes)
            if cmd.images and not takes_images(runtime or node.runs.runtime()):
                name = (runtime or node.runs.runtime()).name
                sock.send(lb.encode_error(f"this pipeline's agent ({name}) does not take images", UNSUPPORTED))
                return
            run_id = secrets.token_hex(8)
            hub.track(sock, run_id)
            try:
                await node.runs.start(
                    run_id,
                    key,
                    cmd.text,
                    f"langbot:{conn.conn_id}",
                    runtime=runtime,
                    message_meta={"message_chain": cmd.chain},
                    images=cmd.images,
                )
            except Exception as exc:
                log.warning("langbot run refused: %s", exc)
                sock.runs.pop(run_id, None)
                hub.owners.pop(run_id, None)
                sock.send(lb.encode_error(f"could not start the run: {exc}"))

        try:
            await _run_socket(ws, sock, on_text, edge.counters)
        finally:
            hub.remove(sock)
            node.close_connection(conn)
            log.info("langbot close conn=%s", conn.conn_id)
        return ws

    def admin(handler: Callable[[web.Request, Pipeline], Awaitable[web.StreamResponse]]) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                await gate.require_admin(request)
            except AccessDenied as exc:
                body: dict[str, Any] = {"error": exc.message}
                if exc.retry_after_ms is not None:
                    body["retry_after_ms"] = exc.retry_after_ms
                return _json_response(body, exc.http_status, exc.headers())
            pipeline = await pipelines.get(request.match_info["uuid"])
            if pipeline is None:
                return _json_response({"error": "pipeline not found"}, 404)
            return await handler(request, pipeline)

        return guarded

    def session_type(request: web.Request) -> str | None:
        kind = request.match_info["type"]
        return kind if kind in lb.SESSION_TYPES else None

    async def messages(request: web.Request, pipeline: Pipeline) -> web.StreamResponse:
        kind = session_type(request)
        if kind is None:
            return _json_response({"error": "session type must be person or group"}, 400)
        history = await node.store.history(lb.session_key(pipeline.uuid, kind), 1000)
        return _json_response({"messages": [lb.history_entry(m) for m in history]})

    async def reset(request: web.Request, pipeline: Pipeline) -> web.StreamResponse:
        kind = session_type(request)
        if kind is None:
            return _json_response({"error": "session type must be person or group"}, 400)
        key = lb.session_key(pipeline.uuid, kind)
        await node.runs.abort(key, reason="session reset")
        await node.store.reset_session(key, now_ms())
        return _json_response({"ok": True})

    async def connections(request: web.Request, pipeline: Pipeline) -> web.StreamResponse:
        socks = hub.of(pipeline.uuid)
        counts = {kind: sum(1 for s in socks if s.session_type == kind) for kind in lb.SESSION_TYPES}
        return _json_response(
            {
                "pipeline_uuid": pipeline.uuid,
                "total": len(socks),
                **counts,
                "connections": [s.stats() for s in socks],
            }
        )

    async def broadcast(request: web.Request, pipeline: Pipeline) -> web.StreamResponse:
        try:
            body = BroadcastBody.model_validate(_json.loads(await request.read()))
        except _json.JSONDecodeError:
            return _json_response({"error": "body must be JSON"}, 400)
        except ValidationError:
            return _json_response({"error": "body must be an object with 'message'"}, 400)
        frame = lb.encode_broadcast(body.message, now_ms())  # encoded once for every socket
        socks = hub.of(pipeline.uuid)
        for sock in socks:
            sock.send(frame)
        return _json_response({"ok": True, "sent": len(socks)})

    app = edge.app
    app.router.add_get(PREFIX + "/connect", connect)
    app.router.add_get(PREFIX + "/messages/{type}", admin(messages))
    app.router.add_post(PREFIX + "/reset/{type}", admin(reset))
    app.router.add_get(PREFIX + "/connections", admin(connections))
    app.router.add_post(PREFIX + "/broadcast", admin(broadcast))
    app.on_cleanup.append(lambda _app: _stop(hub))


async def _stop(hub: LangBotHub) -> None:
    hub.stop()


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_json.dumps(body), status=status, content_type="application/json", headers=headers)
