"""Node commands as agent tools, with an operator approval step for dangerous ones.

Every command declared by a connected node becomes a tool of each run
(``node_tools``). Calling a command that matches ``dangerous`` (fnmatch
patterns, e.g. ``system.run``) first asks operators holding
``operator.approvals``: an ``exec.approval.requested`` event goes out, an
operator answers ``exec.approval.resolve {id, decision}``, and no decision
within the timeout denies. ``allow-always`` remembers the (node, command) pair
for the life of the gateway.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.errors import ErrorCode, RpcError
from ..protocol.methods import ApprovalIdParams, EmptyParams, ExecApprovalResolveParams
from .connection import Connection
from .nodes import NodeRegistry, node_id_of
from .rpc import Call
from .runs import now_ms
from .runtime import Tool

__all__ = ["DEFAULT_DANGEROUS", "ApprovalService", "NodeCommandTool", "node_tools", "register_approval_handlers"]

log = logging.getLogger(__name__)

DEFAULT_DANGEROUS: tuple[str, ...] = ("system.run", "system.exec", "shell.*", "exec.*")
ALLOW = frozenset({"allow-once", "allow-always", "allow", "approve"})
Publish = Callable[..., None]


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[str]
    request: dict[str, Any]
    created_ms: int = 0
    expires_ms: int = 0

    def view(self, approval_id: str) -> dict[str, Any]:
        """One pending approval as ``exec.approval.list`` and ``exec.approval.get`` show it."""
        return {
            "id": approval_id,
            "request": self.request,
            "createdAtMs": self.created_ms,
            "expiresAtMs": self.expires_ms,
            "approvalKind": "exec",
        }


class ApprovalService:
    def __init__(
        self, publish: Publish, *, timeout_ms: int = 60_000, dangerous: Sequence[str] = DEFAULT_DANGEROUS
    ) -> None:
        self.publish = publish
        self.timeout_ms = timeout_ms
        self.dangerous = tuple(dangerous)
        self.pending: dict[str, _Pending] = {}
        self.always: set[tuple[str, str]] = set()

    def is_dangerous(self, command: str) -> bool:
        return any(fnmatch.fnmatchcase(command, pattern) for pattern in self.dangerous)

    async def decide(self, node_id: str, command: str, params: Any, run_id: str | None = None) -> str:
        """Ask operators; returns the decision (``deny`` on timeout)."""
        if (node_id, command) in self.always:
            return "allow-always"
        approval_id = uuid.uuid4().hex
        created = now_ms()
        request = {"command": command, "nodeId": node_id, "params": params, "runId": run_id}
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending[approval_id] = _Pending(future, request, created, created + self.timeout_ms)
        self.publish(
            "exec.approval.requested",
            {"id": approval_id, "request": request, "createdAtMs": created, "expiresAtMs": created + self.timeout_ms},
        )
        try:
            async with asyncio.timeout(self.timeout_ms / 1000):
                decision = await future
        except TimeoutError:
            decision = "deny"
            self.publish(
                "exec.approval.resolved", {"id": approval_id, "decision": decision, "reason": "timeout", "ts": now_ms()}
            )
        finally:
            self.pending.pop(approval_id, None)
        if decision == "allow-always":
            self.always.add((node_id, command))
        log.info("approval %s node=%s command=%s decision=%s", approval_id[:8], node_id[:12], command, decision)
        return decision

    def listing(self) -> list[dict[str, Any]]:
        """The approvals waiting for a decision, oldest first."""
        return [p.view(i) for i, p in self.pending.items() if not p.future.done()]

    def get(self, approval_id: str) -> dict[str, Any]:
        pending = self.pending.get(approval_id)
        if pending is None or pending.future.done():
            raise _approval_not_found(approval_id)
        return pending.view(approval_id)

    def resolve(self, approval_id: str, decision: str) -> dict[str, Any]:
        pending = self.pending.get(approval_id)
        if pending is None or pending.future.done():
            raise _approval_not_found(approval_id)
        pending.future.set_result(decision)
        self.publish("exec.approval.resolved", {"id": approval_id, "decision": decision, "ts": now_ms()})
        return {"ok": True, "id": approval_id, "decision": decision}


def _approval_not_found(approval_id: str) -> RpcError:
    """OpenClaw's answer for a missing approval: INVALID_REQUEST with ``details.reason``."""
    return RpcError(
        ErrorCode.INVALID_REQUEST,
        "unknown or expired approval id",
        details={"reason": "APPROVAL_NOT_FOUND", "id": approval_id},
    )


def _tool_name(node_id: str, command: str) -> str:
    raw = f"node_{node_id[:12]}_{command}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", raw)[:64]


@dataclass(slots=True)
class NodeCommandTool:
    """One declared command of one connected node, callable by the model."""

    registry: NodeRegistry
    approvals: ApprovalService
    node_id: str
    command: str
    node_name: str
    name: str = ""
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "additionalProperties": True})
    timeout_ms: int = 30_000

    def __post_init__(self) -> None:
        self.name = self.name or _tool_name(self.node_id, self.command)
        self.description = self.description or f"Run `{self.command}` on node {self.node_name}"

    async def call(self, args: Mapping[str, Any]) -> Any:
        params = dict(args)
        if self.approvals.is_dangerous(self.command):
            decision = await self.approvals.decide(self.node_id, self.command, params)
            if decision not in ALLOW:
                raise PermissionError(f"{self.command} was not approved ({decision})")
        result = await self.registry.invoke(self.node_id, self.command, params, self.timeout_ms, uuid.uuid4().hex)
        return result.get("payload")


def node_tools(registry: NodeRegistry, approvals: ApprovalService) -> list[Tool]:
    """A tool per declared command of every connected node."""
    tools: list[Tool] = []
    seen: set[str] = set()
    conns: Iterable[Connection] = registry.connected()
    for conn in conns:
        p = conn.principal
        if p is None:
            continue
        nid = node_id_of(conn)
        for command in p.commands:
            tool = NodeCommandTool(registry, approvals, nid, command, p.display_name or p.client_id)
            if tool.name not in seen:
                seen.add(tool.name)
                tools.append(tool)
    return tools


def register_approval_handlers(dispatcher: Any, approvals: ApprovalService) -> None:
    async def resolve(call: Call, p: ExecApprovalResolveParams) -> Any:
        return approvals.resolve(p.id, p.decision)

    async def pending(call: Call, p: EmptyParams) -> Any:
        return approvals.listing()

    async def get(call: Call, p: ApprovalIdParams) -> Any:
        return approvals.get(p.id)

    async def plugin_pending(call: Call, p: EmptyParams) -> Any:
        return []  # agenthub has no plugins, so no plugin approval is ever pending

    dispatcher.register("exec.approval.resolve", resolve)
    dispatcher.register("exec.approval.list", pending)
    dispatcher.register("exec.approval.get", get)
    dispatcher.register("plugin.approval.list", plugin_pending)
