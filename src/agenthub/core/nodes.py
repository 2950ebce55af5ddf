"""Nodes: ``role:"node"`` connections that declare commands, and invoking them.

A node connects like any client (and pairs like any device: a node is a device
whose paired role is ``node``), declaring ``caps``, ``commands`` and
``permissions``. ``node.invoke`` sends the node a ``node.invoke.request`` event
and waits for its ``node.invoke.result``; the operator's request resolves with
the node's answer, ``AGENT_TIMEOUT`` after ``timeoutMs``, or ``UNAVAILABLE`` if
the node disconnects first. Only declared commands can be invoked.

A node's id is its device id when it sent a device identity, else its
``client.instanceId`` or ``client.id``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol import _json
from ..protocol.errors import ErrorCode, RpcError, not_found
from ..protocol.methods import (
    EmptyParams,
    NodeDescribeParams,
    NodeEventParams,
    NodeInvokeParams,
    NodeInvokeResultParams,
    NodePluginToolsUpdateParams,
    NodeRunnerInventoryParams,
    NodeSkillsUpdateParams,
)
from .bus import Publication
from .connection import Connection, ConnState
from .node import Node
from .rpc import Call
from .runs import now_ms

__all__ = ["DEFAULT_INVOKE_TIMEOUT_MS", "NodeRegistry", "node_id_of", "register_node_handlers"]

log = logging.getLogger(__name__)

DEFAULT_INVOKE_TIMEOUT_MS = 30_000


def node_id_of(conn: Connection) -> str:
    p = conn.principal
    if p is None:
        return ""
    return p.device_id or p.instance_id or p.client_id


@dataclass(slots=True)
class _Invoke:
    future: asyncio.Future[dict[str, Any]]
    conn_id: str
    node_id: str
    command: str


class NodeRegistry:
    """Connected nodes, and the invokes waiting for their answers."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.pending: dict[str, _Invoke] = {}
        self.last_seen: dict[str, int] = {}  # conn_id -> last frame from that node (ms)
        self.listeners: list[Callable[[], None]] = []  # told when the set of nodes changes
        node.close_listeners.append(self._closed)

    # -- lookup -------------------------------------------------------------------
    def connected(self) -> list[Connection]:
        return [
            c
            for c in self.node.connections.values()
            if c.state is ConnState.OPEN and c.principal is not None and c.principal.role == "node"
        ]

    def find(self, node_id: str) -> Connection | None:
        for conn in self.connected():
            if node_id_of(conn) == node_id:
                return conn
        return None

    def view(self, conn: Connection, paired: bool) -> dict[str, Any]:
        p = conn.principal
        assert p is not None
        out: dict[str, Any] = {
            "nodeId": node_id_of(conn),
            "displayName": p.display_name or p.client_id,
            "platform": p.platform,
            "version": p.client_version,
            "clientId": p.client_id,
            "caps": list(p.caps),
            "commands": list(p.commands),
            "permissions": p.extra.get("permissions") or {},
            "paired": paired,
            "connected": True,
            "connectedAtMs": conn.connected_at_ms,
            "lastSeenAtMs": self.last_seen.get(conn.conn_id, conn.connected_at_ms),
            "remoteIp": conn.remote_ip,
        }
        if p.device_family:
            out["deviceFamily"] = p.device_family
        catalog = p.extra.get("catalog")
        if isinstance(catalog, dict):
            if "skills" in catalog:
                out["skills"] = [s["name"] for s in catalog["skills"]]
            if "pluginTools" in catalog:
                out["pluginTools"] = [t["name"] for t in catalog["pluginTools"]]
        return out

    async def list(self) -> list[dict[str, Any]]:
        paired = {
            d.device_id: d for d in await self.node.store.list_devices() if d.status == "paired" and d.role == "node"
        }
        out = []
        seen: set[str] = set()
        for conn in self.connected():
            nid = node_id_of(conn)
            if nid in seen:
                continue
            seen.add(nid)
            out.append(self.view(conn, nid in paired))
        for d in paired.values():
            if d.device_id not in seen:
                out.append(
                    {
                        "nodeId": d.device_id,
                        "displayName": d.display_name or d.client_id or d.device_id,
                        "platform": d.platform,
                        "clientId": d.client_id,
                        "caps": [],
                        "commands": [],
                        "permissions": {},
                        "paired": True,
                        "connected": False,
                        "lastSeenAtMs": d.last_seen_ms,
                    }
                )
        return out

    # -- invoke -------------------------------------------------------------------
    async def invoke(
        self, node_id: str, command: str, params: Any, timeout_ms: int | None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        conn = self.find(node_id)
        if conn is None:
            raise RpcError(ErrorCode.UNAVAILABLE, "node not connected", details={"nodeId": node_id})
        assert conn.principal is not None
        if command not in conn.principal.commands:
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                f"command not declared by node: {command}",
                details={"code": "COMMAND_NOT_DECLARED", "nodeId": node_id, "command": command},
            )
        timeout = timeout_ms or DEFAULT_INVOKE_TIMEOUT_MS
        invoke_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[invoke_id] = _Invoke(future, conn.conn_id, node_id, command)
        event: dict[str, Any] = {"id": invoke_id, "nodeId": node_id, "command": command, "timeoutMs": timeout}
        if params is not None:
            event["paramsJSON"] = _json.dumps_str(params)
        if idempotency_key:
            event["idempotencyKey"] = idempotency_key
        try:
            if not self.send_event(conn, "node.invoke.request", event):
                raise RpcError(ErrorCode.UNAVAILABLE, "node not reachable", details={"nodeId": node_id})
            try:
                async with asyncio.timeout(timeout / 1000):
                    answer = await future
            except TimeoutError:
                raise RpcError(
                    ErrorCode.AGENT_TIMEOUT,
                    f"node did not answer within {timeout} ms",
                    details={"nodeId": node_id, "command": command},
                    retryable=True,
                ) from None
        finally:
            self.pending.pop(invoke_id, None)
        if not answer.get("ok"):
            err = answer.get("error") or {}
            message = str(err.get("message") or "node command failed") if isinstance(err, dict) else str(err)
            raise RpcError(ErrorCode.UNAVAILABLE, message, details={"nodeId": node_id, "nodeError": err})
        return {"ok": True, "nodeId": node_id, "command": command, "payload": answer.get("payload")}

    def send_event(self, conn: Connection, event: str, payload: dict[str, Any]) -> bool:
        """Deliver one event to one connection through its dialect session."""
        for sub in self.node.hub.subscribers():
            if getattr(sub, "conn", None) is conn:
                sub.deliver(Publication("system", 0, "", event, payload))
                return True
        return False

    def receive_result(self, conn: Connection, p: NodeInvokeResultParams) -> dict[str, Any]:
        inv = self.pending.get(p.id)
        if inv is None or inv.conn_id != conn.conn_id:
            raise not_found("unknown or expired invoke id", "INVOKE_NOT_FOUND", id=p.id)
        payload = _payload_of(p.payload, p.payloadJSON)
        if not inv.future.done():
            inv.future.set_result({"ok": p.ok, "payload": payload, "error": p.error})
        return {"ok": True}

    def touch(self, conn: Connection) -> None:
        ts = self.last_seen[conn.conn_id] = now_ms()
        if conn.principal is not None:
            conn.principal.extra["lastSeenMs"] = ts
            entry = self.node._presence_cache.get(conn.conn_id)  # refresh the cached presence entry
            if entry is not None:
                entry["lastActivityAt"] = ts

    def _closed(self, conn: Connection) -> None:
        self.last_seen.pop(conn.conn_id, None)
        for inv in list(self.pending.values()):
            if inv.conn_id == conn.conn_id and not inv.future.done():
                inv.future.set_exception(
                    RpcError(
                        ErrorCode.UNAVAILABLE,
                        "node disconnected during invoke",
                        details={"nodeId": inv.node_id},
                        retryable=True,
                    )
                )
        if conn.principal is not None and conn.principal.role == "node":
            for listener in self.listeners:
                listener()


def _catalog(conn: Connection) -> dict[str, Any]:
    """What a connected node published about itself (skills, tools); kept for node.describe.

    agenthub lists them but does not turn them into agent tools: a run calls a node
    only through the commands the node declared at connect (``core.approvals``).
    """
    assert conn.principal is not None
    catalog = conn.principal.extra.setdefault("catalog", {})
    assert isinstance(catalog, dict)
    return catalog


def _payload_of(payload: Any, payload_json: str | None) -> Any:
    """Nodes send a body either as ``payload`` or as ``payloadJSON`` text (OpenClaw allows both)."""
    if payload is not None or payload_json is None:
        return payload
    try:
        return _json.loads(payload_json)
    except _json.JSONDecodeError:
        raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: payloadJSON: not JSON") from None


def register_node_handlers(node: Node, registry: NodeRegistry) -> None:
    d = node.dispatcher

    async def node_list(call: Call, p: EmptyParams) -> Any:
        return {"ts": now_ms(), "nodes": await registry.list()}

    async def node_describe(call: Call, p: NodeDescribeParams) -> Any:
        for entry in await registry.list():
            if entry["nodeId"] == p.nodeId:
                return entry
        raise not_found("unknown node", "NODE_NOT_FOUND", nodeId=p.nodeId)

    async def node_invoke(call: Call, p: NodeInvokeParams) -> Any:
        return await registry.invoke(p.nodeId, p.command, p.params, p.timeoutMs, p.idempotencyKey)

    async def node_invoke_result(call: Call, p: NodeInvokeResultParams) -> Any:
        registry.touch(call.conn)
        return registry.receive_result(call.conn, p)

    async def node_event(call: Call, p: NodeEventParams) -> Any:
        registry.touch(call.conn)
        payload = _payload_of(p.payload, p.payloadJSON)
        node.hub.broadcast(
            "node.event", {"nodeId": node_id_of(call.conn), "event": p.event, "payload": payload, "ts": now_ms()}
        )
        return {"ok": True}

    async def node_skills(call: Call, p: NodeSkillsUpdateParams) -> Any:
        registry.touch(call.conn)
        skills = [s.model_dump() for s in p.skills]
        _catalog(call.conn)["skills"] = skills
        return {"nodeId": node_id_of(call.conn), "skills": skills}

    async def node_plugin_tools(call: Call, p: NodePluginToolsUpdateParams) -> Any:
        registry.touch(call.conn)
        declared = set(call.conn.principal.commands) if call.conn.principal else set()
        # As in OpenClaw, a tool must name a command the node declared; others are dropped.
        tools = [t.model_dump(exclude_none=True) for t in p.tools if t.command is None or t.command in declared]
        _catalog(call.conn)["pluginTools"] = tools
        return {"nodeId": node_id_of(call.conn), "tools": tools}

    async def node_runner_inventory(call: Call, p: NodeRunnerInventoryParams) -> Any:
        registry.touch(call.conn)
        _catalog(call.conn)["protocolFeatures"] = list(p.protocolFeatures)
        return {"nodeId": node_id_of(call.conn)}

    for name, handler in (
        ("node.skills.update", node_skills),
        ("node.pluginTools.update", node_plugin_tools),
        ("node.runnerInventory.update", node_runner_inventory),
        ("node.list", node_list),
        ("node.describe", node_describe),
        ("node.invoke", node_invoke),
        ("node.invoke.result", node_invoke_result),
        ("node.event", node_event),
    ):
        d.register(name, handler)
