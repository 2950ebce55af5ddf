"""AsyncAPI 3.0 for the gateway's WebSocket protocols, from the protocol models.

The native channel (OpenClaw's protocol) is described message by message: one
request message per method (its params model), the response frame with each
documented result, and one message per event family (its payload model), all
from ``protocol.methods`` and ``protocol.results``: the same models
``agenthub protocol schema`` publishes. The seed dialects' channels (AgentBox,
LangBot, MyAgent) are described by their envelopes. Served at ``/asyncapi.json``.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from .. import __version__
from ..protocol.methods import EVENT_SCOPES, METHODS
from ..protocol.results import EVENT_PAYLOADS, RESULTS, AgentAccepted
from ..protocol.schema import schema_models

__all__ = ["asyncapi_document"]

_REF = "#/components/schemas/{model}"


def _name(text: str) -> str:
    """A component key from a method or event name (``chat.send`` -> ``chat_send``)."""
    return "".join(c if c.isalnum() else "_" for c in text)


def _envelope(description: str, required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "description": description, "required": required, "properties": properties}


def _asyncapi_schema(node: Any) -> Any:
    """pydantic writes OpenAPI's ``discriminator: {propertyName, mapping}``; AsyncAPI's is the property name."""
    if isinstance(node, dict):
        out = {k: _asyncapi_schema(v) for k, v in node.items()}
        disc = out.get("discriminator")
        if isinstance(disc, dict) and "propertyName" in disc:
            out["discriminator"] = disc["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(v) for v in node]
    return node


def asyncapi_document() -> dict[str, Any]:
    models = schema_models()
    _, doc = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas: dict[str, Any] = _asyncapi_schema(doc.get("$defs", {}))

    def ref(name: str) -> dict[str, str]:
        return {"$ref": _REF.format(model=name)}

    messages: dict[str, Any] = {}
    native: dict[str, Any] = {}
    sends: list[dict[str, str]] = []
    receives: list[dict[str, str]] = []

    def add(key: str, message: dict[str, Any], into: list[dict[str, str]]) -> None:
        messages[key] = message
        native[key] = {"$ref": f"#/components/messages/{key}"}
        into.append({"$ref": f"#/channels/native/messages/{key}"})

    add(
        "connect",
        {
            "name": "connect",
            "title": "connect (the first request)",
            "summary": "Answer the challenge: protocol range, client, role, scopes, auth, signed device",
            "payload": _envelope(
                "a request frame whose method is connect",
                ["type", "id", "method", "params"],
                {
                    "type": {"const": "req"},
                    "id": {"type": "string"},
                    "method": {"const": "connect"},
                    "params": ref("ConnectParams"),
                },
            ),
        },
        sends,
    )
    for method, spec in sorted(METHODS.items()):
        add(
            f"req_{_name(method)}",
            {
                "name": method,
                "title": f"{method} request",
                "summary": spec.summary or method,
                "description": f"scope: {spec.scope or 'none'}; role: {spec.role}",
                "payload": _envelope(
                    f"a request frame for {method}",
                    ["type", "id", "method"],
                    {
                        "type": {"const": "req"},
                        "id": {"type": "string"},
                        "method": {"const": method},
                        "params": ref(spec.params.__name__),
                    },
                ),
            },
            sends,
        )
    for method, model in sorted(RESULTS.items()):
        add(
            f"res_{_name(method)}",
            {
                "name": f"{method} result",
                "summary": f"the successful response to {method}",
                "payload": _envelope(
                    "a response frame",
                    ["type", "id", "ok", "payload"],
                    {
                        "type": {"const": "res"},
                        "id": {"type": "string"},
                        "ok": {"const": True},
                        "payload": ref(model.__name__),
                    },
                ),
            },
            receives,
        )
    add(
        "res_agent_accepted",
        {
            "name": "agent accepted",
            "summary": "the first response to agent (the final RunResult follows under the same id)",
            "payload": _envelope(
                "a response frame",
                ["type", "id", "ok", "payload"],
                {
                    "type": {"const": "res"},
                    "id": {"type": "string"},
                    "ok": {"const": True},
                    "payload": ref(AgentAccepted.__name__),
                },
            ),
        },
        receives,
    )
    add(
        "res_any",
        {"name": "response", "summary": "any response frame (error shapes included)", "payload": ref("ResponseFrame")},
        receives,
    )
    for event, scope in sorted(EVENT_SCOPES.items()):
        add(
            f"event_{_name(event)}",
            {
                "name": event,
                "title": f"{event} event",
                "description": f"scope needed to receive it: {scope or 'none'}",
                "payload": _envelope(
                    f"an event frame of family {event}",
                    ["type", "event", "payload"],
                    {
                        "type": {"const": "event"},
                        "event": {"const": event},
                        "payload": ref(EVENT_PAYLOADS[event].__name__),
                        "seq": {"type": "integer", "description": "per connection, 1, 2, 3, ... (a gap is visible)"},
                    },
                ),
            },
            receives,
        )

    def dialect(key: str, description: str, payload: dict[str, Any]) -> dict[str, Any]:
        messages[key] = {"name": key, "summary": description, "payload": payload}
        return {key: {"$ref": f"#/components/messages/{key}"}}

    agentbox = dialect(
        "agentbox_frame",
        "AgentBox envelope (seed 002): auth, subscribe, task.action, ping; task.* and system events back",
        _envelope(
            "{id, type, payload, timestamp}",
            ["type"],
            {
                "id": {"type": "string"},
                "type": {"type": "string"},
                "payload": {"type": "object"},
                "timestamp": {"type": ["integer", "string"]},
            },
        ),
    )
    langbot = dialect(
        "langbot_frame",
        "LangBot frames (seed 004): message and ping in; response chunks (cumulative content, is_final), pong out",
        _envelope("{type, ...}", ["type"], {"type": {"type": "string"}, "data": {}, "message": {}}),
    )
    myagent = dialect(
        "myagent_frame",
        "MyAgent events (seed 003): user.* in; agent.*, solver.*, system.* out, each with event_id and seq",
        _envelope(
            "{event, session_id?, content?, ...}",
            ["event"],
            {
                "event": {"type": "string"},
                "session_id": {"type": "string"},
                "event_id": {"type": "string"},
                "seq": {"type": "integer"},
                "content": {},
                "metadata": {"type": "object"},
            },
        ),
    )
    channels: dict[str, Any] = {
        "native": {
            "address": "/",
            "title": "native (OpenClaw gateway protocol)",
            "description": (
                "The server sends connect.challenge; the first client frame must be connect; then requests, "
                "responses and events. Every message on this channel is a frame of `agenthub protocol schema`."
            ),
            "messages": native,
        },
        "agentbox": {"address": "/api/v1/gateway/ws", "title": "AgentBox", "messages": agentbox},
        "langbot": {
            "address": "/api/v1/pipelines/{uuid}/ws/connect",
            "title": "LangBot pipeline",
            "parameters": {"uuid": {"description": "the pipeline (default always exists)"}},
            "messages": langbot,
        },
        "myagent": {
            "address": "/",
            "title": "MyAgent (its own port: myagent.port)",
            "servers": [{"$ref": "#/servers/myagent"}],
            "messages": myagent,
        },
    }
    for name in ("native", "agentbox", "langbot"):
        channels[name]["servers"] = [{"$ref": "#/servers/gateway"}]

    def both(name: str) -> dict[str, Any]:
        msgs = [{"$ref": f"#/channels/{name}/messages/{key}"} for key in channels[name]["messages"]]
        return {
            f"{name}_send": {"action": "send", "channel": {"$ref": f"#/channels/{name}"}, "messages": msgs},
            f"{name}_receive": {"action": "receive", "channel": {"$ref": f"#/channels/{name}"}, "messages": msgs},
        }

    operations: dict[str, Any] = {
        "native_send": {
            "action": "send",
            "title": "client to gateway",
            "channel": {"$ref": "#/channels/native"},
            "messages": sends,
        },
        "native_receive": {
            "action": "receive",
            "title": "gateway to client",
            "channel": {"$ref": "#/channels/native"},
            "messages": receives,
        },
        **both("agentbox"),
        **both("langbot"),
        **both("myagent"),
    }
    return {
        "asyncapi": "3.0.0",
        "id": "urn:agenthub:gateway",
        "info": {
            "title": "agenthub WebSocket protocols",
            "version": __version__,
            "description": "The native (OpenClaw) protocol and the seed dialects, on one gateway.",
            "license": {"name": "MIT"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {"host": "127.0.0.1:18789", "protocol": "ws", "description": "the main port"},
            "myagent": {"host": "127.0.0.1:8080", "protocol": "ws", "description": "the MyAgent port"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
