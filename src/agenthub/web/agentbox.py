"""AgentBox edge (seed 002): the gateway WebSocket and the task REST API.

Served on the main listener, and also on its own port with ``--agentbox``
(``agentbox.port``, the seed's 18080; ``--agentbox-port N`` alone turns it on
too), with the same routes on both: ``/api/v1/gateway/ws`` and ``/api/v1/{tasks,agents,
sessions,batches,alerts}``. REST calls take the same ``ab_`` API key as a
Bearer token, checked under the gateway's one auth limiter: wrong keys count
as failed guesses per IP, and a locked-out IP gets 429 with ``Retry-After``.
All behaviour lives in ``dialects.agentbox``; this is glue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from ..core.node import Node
from ..dialects import agentbox as ab
from ..protocol import _json
from .access import retry_after_header
from .edge import Edge, Listener
from .ws import FrameCounters, accept, run_socket

__all__ = ["WS_PATH", "mount"]

log = logging.getLogger(__name__)

WS_PATH = "/api/v1/gateway/ws"
M = TypeVar("M", bound=BaseModel)


Endpoint = Callable[[web.Request, ab.User], Awaitable[tuple[int, dict[str, Any]]]]


def _json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=_json.dumps(body), content_type="application/json", headers=headers)


def _error_response(exc: ab.AgentBoxError) -> web.Response:
    headers = retry_after_header(exc.retry_after_ms) if exc.retry_after_ms is not None else None
    return _json_response(exc.http_status, exc.body(), headers)


def _rest(node: Node, endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Bearer API key in, JSON out; ``AgentBoxError`` becomes ``{message, code}`` with its HTTP status."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                raise ab.AgentBoxError(ab.Code.UNAUTHORIZED, "send the API key as 'Authorization: Bearer ab_...'")
            user = await ab.checked_key(node, request.remote or "", auth[7:].strip())
            status, body = await endpoint(request, user)
        except ab.AgentBoxError as exc:
            return _error_response(exc)
        return _json_response(status, body)

    return handle


async def _body(request: web.Request, model: type[M]) -> M:
    try:
        data = _json.loads(await request.read())
    except _json.JSONDecodeError:
        raise ab.AgentBoxError(ab.Code.BAD_REQUEST, "invalid JSON") from None
    return ab.parse(model, data)


def _routes(node: Node, tasks: ab.Tasks, hub: ab.AgentBoxHub, counters: FrameCounters) -> list[web.RouteDef]:
    async def create_task(request: web.Request, user: ab.User) -> tuple[int, dict[str, Any]]:
        b = await _body(request, ab.CreateTask)
        return 201, await tasks.create_task(user, b.prompt, b.agent, b.session_id)

    async def get_task(request: web.Request, user: ab.User) -> tuple[int, dict[str, Any]]:
        return 200, await tasks.get_task(user, request.match_info["task_id"])

    async def create_session(request: web.Request, user: ab.User) -> tuple[int, dict[str, Any]]:
        b = await _body(request, ab.CreateSession)
        return 201, await tasks.create_session(user, b.title)

    async def create_agent(request: web.Request, user: ab.User) -> tuple[int, dict[str, Any]]:
        b = await _body(request, ab.CreateAgent)
        return 201, tasks.create_agent(user, b.model_dump(mode="json"))

    async def create_batch(request: web.Request, user: ab.User) -> tuple[int, dict[str, Any]]:
        b = await _body(request, ab.CreateBatch)
        return 201, await tasks.create_batch(user, list(b.prompts), b.agent)

    async def create_alert(request: web.Request, user: ab.User) -> tuple[int, dict[str, Any]]:
        b = await _body(request, ab.CreateAlert)
        return 201, tasks.alert(user, b.model_dump(mode="json"))

    async def socket(request: web.Request) -> web.StreamResponse:
        ws, conn = await accept(request, node, counters)
        if conn is None:
            return ws
        session = ab.AgentBoxSession(node, conn, tasks, hub)
        session.open()
        await run_socket(ws, session, counters)
        return ws

    return [
        web.get(WS_PATH, socket),
        web.post("/api/v1/tasks", _rest(node, create_task)),
        web.get("/api/v1/tasks/{task_id}", _rest(node, get_task)),
        web.post("/api/v1/sessions", _rest(node, create_session)),
        web.post("/api/v1/agents", _rest(node, create_agent)),
        web.post("/api/v1/batches", _rest(node, create_batch)),
        web.post("/api/v1/alerts", _rest(node, create_alert)),
    ]


def mount(edge: Edge) -> None:
    """Add the routes to the main listener, and to an own listener with ``agentbox.enabled``."""
    node = edge.node
    hub = ab.AgentBoxHub(node, lambda: float(edge.config.settings.agentbox.stats_interval_s))
    node.hub.add(hub)
    routes = _routes(node, ab.Tasks(node), hub, edge.counters)
    edge.app.add_routes(routes)
    edge.app.on_cleanup.append(lambda _app: _stop(hub))
    settings = edge.settings.agentbox
    if settings.enabled:
        app = web.Application(client_max_size=node.limits.max_payload)
        app.add_routes(routes)
        edge.listeners.append(Listener(app, edge.settings.host, settings.port, "agentbox"))


async def _stop(hub: ab.AgentBoxHub) -> None:
    hub.stop()
