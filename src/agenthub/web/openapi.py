"""OpenAPI 3.1 for every HTTP route of the gateway, from the pydantic models that validate the requests.

``OPERATIONS`` lists each route with the model its handler validates the body
with (``web.agentbox``, ``web.langbot``, ``web.hooks``) and the models of its
answers; ``openapi_document`` turns them into one document, served at
``/openapi.json`` and rendered by ``/docs`` (Swagger UI, bundled in the package:
no CDN). WebSocket endpoints are listed too, as ``GET`` upgrades (101); their
frames are described by ``/asyncapi.json``. A test compares this list with the
routes the running gateway registered, so a new route cannot go undocumented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from .. import __version__
from ..dialects.agentbox.frames import CreateAgent, CreateAlert, CreateBatch, CreateSession, CreateTask
from ..protocol import _json
from .edge import Edge
from .hooks import HookAccepted, HookAgentBody, HookWakeBody
from .langbot import BroadcastBody

__all__ = ["OPERATIONS", "Operation", "mount", "openapi_document"]


# -- answers (documentation models: the handlers build these dicts) -------------------------------------
class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class Health(_Answer):
    """``/healthz``: the process is up and serving."""

    ok: bool
    version: str
    connections: int = Field(description="open native connections")


class AgentBoxError(_Answer):
    message: str
    code: str
    retry_after_ms: int | None = None


class TaskCreated(_Answer):
    task_id: str
    session_id: str
    status: Literal["queued"]


class TaskTurn(_Answer):
    turn_id: str
    status: str


class Task(_Answer):
    task_id: str
    session_id: str
    status: str
    result: str | None
    turns: list[TaskTurn]
    created_at: int = Field(description="ms since the epoch")


class SessionCreated(_Answer):
    session_id: str
    title: str | None


class AgentCreated(_Answer):
    agent_id: str
    name: str


class BatchCreated(_Answer):
    batch_id: str
    task_ids: list[str]


class AlertCreated(_Answer):
    alert_id: str
    ts: int
    message: str
    level: str


class LangBotError(_Answer):
    error: str
    retry_after_ms: int | None = None


class LangBotMessage(_Answer):
    role: str
    content: Any


class LangBotMessages(_Answer):
    messages: list[LangBotMessage]


class LangBotOk(_Answer):
    ok: bool


class LangBotSent(_Answer):
    ok: bool
    sent: int = Field(description="sockets the message went to")


class LangBotConnections(_Answer):
    pipeline_uuid: str
    total: int
    person: int
    group: int
    connections: list[dict[str, Any]]


class HookError(_Answer):
    ok: Literal[False]
    error: str


class AuthRefused(_Answer):
    """``/metrics`` without the gateway credential."""

    error: dict[str, str]


# -- the route table --------------------------------------------------------------------------------------
Security = Literal["gatewayToken", "apiKey", "hookToken", "pipelineKey"]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | str] = field(default_factory=dict)
    security: tuple[Security, ...] = ()
    optional_auth: bool = False  # the credential is needed only when the gateway has one
    websocket: bool = False
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of string query parameters
    media: str = "application/json"  # of the 200 answer

    @property
    def operation_id(self) -> str:
        words = [w.strip("{}") for w in self.path.strip("/").replace("-", "_").split("/") if w]
        return "_".join([self.method.lower(), *words]) or "get_root"


_LB = "/api/v1/pipelines/{uuid}/ws"
_AB_ERRORS: dict[int, type[BaseModel] | str] = {
    400: AgentBoxError,
    401: AgentBoxError,
    404: AgentBoxError,
    413: "body larger than limits.max_payload",
    415: "not application/json",
    429: AgentBoxError,
}
_LB_ERRORS: dict[int, type[BaseModel] | str] = {401: LangBotError, 404: LangBotError, 429: LangBotError}
_HOOK_ERRORS: dict[int, type[BaseModel] | str] = {
    400: HookError,
    401: HookError,
    404: HookError,
    405: HookError,
    413: HookError,
    415: HookError,
    429: HookError,
    503: HookError,
}

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/healthz", "Liveness: the gateway is up", "gateway", responses={200: Health}),
    Operation(
        "GET",
        "/metrics",
        "Prometheus metrics (latency histograms, connections per dialect, process)",
        "gateway",
        responses={200: "Prometheus text exposition format 0.0.4", 401: AuthRefused, 429: AuthRefused},
        security=("gatewayToken",),
        optional_auth=True,
        media="text/plain",
    ),
    Operation("GET", "/openapi.json", "This document", "gateway", responses={200: "OpenAPI 3.1 document"}),
    Operation("GET", "/asyncapi.json", "AsyncAPI 3.0 document of the WebSocket protocols", "gateway"),
    Operation("GET", "/docs", "API reference page (Swagger UI)", "gateway", responses={200: "HTML"}, media="text/html"),
    Operation(
        "GET",
        "/",
        "The Control UI page; with Upgrade: websocket, the native (OpenClaw) protocol",
        "native",
        responses={200: "the Control UI (HTML)", 101: "WebSocket: see /asyncapi.json"},
        media="text/html",
    ),
    Operation("GET", "/api/v1/gateway/ws", "AgentBox WebSocket (auth in the first frame)", "agentbox", websocket=True),
    Operation(
        "POST",
        "/api/v1/tasks",
        "Start a task (an agent run) for the API key's user",
        "agentbox",
        body=CreateTask,
        responses={201: TaskCreated, **_AB_ERRORS},
        security=("apiKey",),
    ),
    Operation(
        "GET",
        "/api/v1/tasks/{task_id}",
        "A task's status, turns and result",
        "agentbox",
        responses={200: Task, **_AB_ERRORS},
        security=("apiKey",),
    ),
    Operation(
        "POST",
        "/api/v1/sessions",
        "Create a session for later tasks",
        "agentbox",
        body=CreateSession,
        responses={201: SessionCreated, **_AB_ERRORS},
        security=("apiKey",),
    ),
    Operation(
        "POST",
        "/api/v1/agents",
        "Announce an agent to the user's subscribers",
        "agentbox",
        body=CreateAgent,
        responses={201: AgentCreated, **_AB_ERRORS},
        security=("apiKey",),
    ),
    Operation(
        "POST",
        "/api/v1/batches",
        "Start several tasks at once (all or none)",
        "agentbox",
        body=CreateBatch,
        responses={201: BatchCreated, **_AB_ERRORS},
        security=("apiKey",),
    ),
    Operation(
        "POST",
        "/api/v1/alerts",
        "Broadcast a system alert (admin keys)",
        "agentbox",
        body=CreateAlert,
        responses={201: AlertCreated, 403: AgentBoxError, **_AB_ERRORS},
        security=("apiKey",),
    ),
    Operation(
        "GET",
        f"{_LB}/connect",
        "LangBot pipeline WebSocket",
        "langbot",
        websocket=True,
        security=("gatewayToken", "pipelineKey"),
        optional_auth=True,
        query=(
            ("session_type", "person or group"),
            ("token", "the gateway token or the pipeline key (browsers cannot set headers on a WebSocket)"),
        ),
    ),
    Operation(
        "GET",
        f"{_LB}/messages/{{type}}",
        "A pipeline session's history (person or group)",
        "langbot",
        responses={200: LangBotMessages, 400: LangBotError, **_LB_ERRORS},
        security=("gatewayToken",),
        optional_auth=True,
    ),
    Operation(
        "POST",
        f"{_LB}/reset/{{type}}",
        "Reset a pipeline session (aborts its run)",
        "langbot",
        responses={200: LangBotOk, 400: LangBotError, **_LB_ERRORS},
        security=("gatewayToken",),
        optional_auth=True,
    ),
    Operation(
        "GET",
        f"{_LB}/connections",
        "The pipeline's open sockets",
        "langbot",
        responses={200: LangBotConnections, **_LB_ERRORS},
        security=("gatewayToken",),
        optional_auth=True,
    ),
    Operation(
        "POST",
        f"{_LB}/broadcast",
        "Send a message to every socket of the pipeline",
        "langbot",
        body=BroadcastBody,
        responses={200: LangBotSent, 400: LangBotError, 415: "not application/json", **_LB_ERRORS},
        security=("gatewayToken",),
        optional_auth=True,
    ),
    Operation(
        "POST",
        "/hooks/agent",
        "Run one agent turn (hooks.enabled)",
        "hooks",
        body=HookAgentBody,
        responses={200: HookAccepted, **_HOOK_ERRORS},
        security=("hookToken",),
    ),
    Operation(
        "POST",
        "/hooks/wake",
        "Queue a system event; wake the agent now or at its next heartbeat (hooks.enabled)",
        "hooks",
        body=HookWakeBody,
        responses={200: HookAccepted, **_HOOK_ERRORS},
        security=("hookToken",),
    ),
    Operation(
        "POST",
        "/hooks/{name}",
        "A hooks.mappings entry: its template turns any JSON body into an agent turn or a wake",
        "hooks",
        responses={200: HookAccepted, **_HOOK_ERRORS},
        security=("hookToken",),
    ),
)

_SECURITY_SCHEMES: dict[str, Any] = {
    "gatewayToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "the gateway token (or password in password mode); needed only when the gateway has one",
    },
    "apiKey": {"type": "http", "scheme": "bearer", "description": "an AgentBox API key (`agenthub keys create`)"},
    "hookToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "the hook token (hooks.token); also accepted as the x-openclaw-token header",
    },
    "pipelineKey": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "a LangBot pipeline's own key (`agenthub pipelines create`), or the gateway token",
    },
}


def _schemas() -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    models: set[type[BaseModel]] = set()
    for op in OPERATIONS:
        if op.body is not None:
            models.add(op.body)
        models.update(m for m in op.responses.values() if isinstance(m, type))
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (m, "validation" if any(op.body is m for op in OPERATIONS) else "serialization") for m in ordered
    ]
    refs, doc = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    by_model = {model: ref for (model, _), ref in refs.items()}
    return by_model, doc.get("$defs", {})


def _path_params(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
    return [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names]


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (``server_url``: where this gateway answers, when known)."""
    refs, schemas = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        item: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
        }
        params = _path_params(op.path)
        params += [{"name": n, "in": "query", "schema": {"type": "string"}, "description": d} for n, d in op.query]
        if op.websocket:
            params.append(
                {
                    "name": "Upgrade",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "const": "websocket"},
                }
            )
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[op.body]}}}
        responses: dict[str, Any] = {}
        if op.websocket:
            responses["101"] = {"description": "switching to WebSocket: frames in /asyncapi.json"}
        for status, answer in sorted(op.responses.items()):
            if isinstance(answer, str):
                media = op.media if 200 <= status < 300 else "text/plain"
                content = {media: {"schema": {"type": "string"}}} if status not in (101,) else None
                responses[str(status)] = {"description": answer, **({"content": content} if content else {})}
            else:
                responses[str(status)] = {
                    "description": (answer.__doc__ or answer.__name__).strip().splitlines()[0],
                    "content": {"application/json": {"schema": refs[answer]}},
                }
        if not responses:
            responses["200"] = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
        item["responses"] = responses
        if op.security:
            item["security"] = [{name: []} for name in op.security] + ([{}] if op.optional_auth else [])
        paths.setdefault(op.path, {})[op.method.lower()] = item
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "agenthub HTTP API",
            "version": __version__,
            "summary": "HTTP routes of the agenthub gateway: REST of the dialects, health, metrics, hooks",
            "description": (
                "The WebSocket protocols (native/OpenClaw, AgentBox, LangBot, MyAgent) are described in "
                "/asyncapi.json and, frame by frame, by `agenthub protocol schema`."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": _SECURITY_SCHEMES},
        "tags": [
            {"name": "gateway", "description": "health, metrics, documents"},
            {"name": "native", "description": "OpenClaw's gateway protocol and the Control UI"},
            {"name": "agentbox", "description": "AgentBox REST (seed 002), Bearer API key"},
            {"name": "langbot", "description": "LangBot pipelines (seed 004)"},
            {"name": "hooks", "description": "inbound webhooks (hooks.enabled)"},
        ],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _openapi_handler() -> Handler:
    """``/openapi.json``: built once (the routes and models are fixed at start)."""
    body = _json.dumps(openapi_document())

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return handle


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agenthub HTTP API</title>
<link rel="stylesheet" href="/apidocs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/apidocs/swagger-ui-bundle.js"></script>
<script src="/apidocs/docs.js"></script>
</body>
</html>
"""


def _docs_handler() -> Handler:
    """``/docs``: Swagger UI over ``/openapi.json``, all files from the package (no CDN, no inline script)."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(text=DOCS_PAGE, content_type="text/html")

    return handle


APIDOCS = Path(__file__).parent / "static" / "apidocs"


def mount(edge: Edge) -> None:
    """``/openapi.json``, ``/asyncapi.json``, ``/docs`` and the Swagger UI files under ``/apidocs``."""
    from .asyncapi import asyncapi_document

    app = edge.app
    app.router.add_get("/openapi.json", _openapi_handler())
    asyncapi = _json.dumps(asyncapi_document())

    async def asyncapi_json(request: web.Request) -> web.Response:
        return web.Response(body=asyncapi, content_type="application/json")

    app.router.add_get("/asyncapi.json", asyncapi_json)
    app.router.add_get("/docs", _docs_handler())
    if APIDOCS.is_dir():
        app.router.add_static("/apidocs", APIDOCS)
