"""Approvals and node tools without a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agenthub.core.approvals import ApprovalService, NodeCommandTool, _tool_name
from agenthub.protocol.errors import RpcError


class FakeRegistry:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    async def invoke(
        self, node_id: str, command: str, params: Any, timeout_ms: int | None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        self.calls.append((node_id, command, params))
        return {"ok": True, "payload": {"ran": command}}


def service(events: list[tuple[str, dict[str, Any]]], timeout_ms: int = 2000) -> ApprovalService:
    return ApprovalService(lambda e, p: events.append((e, p)), timeout_ms=timeout_ms)


def tool(reg: FakeRegistry, approvals: ApprovalService, command: str) -> NodeCommandTool:
    return NodeCommandTool(reg, approvals, "node-1", command, "Node")  # type: ignore[arg-type]


async def test_safe_command_runs_without_asking() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    reg = FakeRegistry()
    assert await tool(reg, service(events), "system.info").call({}) == {"ran": "system.info"}
    assert events == [] and reg.calls == [("node-1", "system.info", {})]


async def test_dangerous_command_waits_for_an_operator() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    approvals = service(events)
    reg = FakeRegistry()
    task = asyncio.ensure_future(tool(reg, approvals, "system.run").call({"cmd": "ls"}))
    await asyncio.sleep(0.01)
    event, payload = events[0]
    assert event == "exec.approval.requested" and payload["request"]["command"] == "system.run"
    assert reg.calls == []
    approvals.resolve(payload["id"], "allow-always")
    assert await task == {"ran": "system.run"}
    assert events[-1][0] == "exec.approval.resolved"
    # allow-always: the next call does not ask again.
    await tool(reg, approvals, "system.run").call({})
    assert len([e for e in events if e[0] == "exec.approval.requested"]) == 1
    with pytest.raises(RpcError):
        approvals.resolve(payload["id"], "deny")


async def test_no_decision_denies() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    reg = FakeRegistry()
    with pytest.raises(PermissionError):
        await tool(reg, service(events, timeout_ms=50), "shell.exec").call({})
    assert reg.calls == [] and events[-1][1]["decision"] == "deny"


async def test_deny() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    approvals = service(events)
    task = asyncio.ensure_future(tool(FakeRegistry(), approvals, "system.exec").call({}))
    await asyncio.sleep(0.01)
    approvals.resolve(events[0][1]["id"], "deny")
    with pytest.raises(PermissionError):
        await task


def test_tool_names_are_model_safe() -> None:
    name = _tool_name("abc.def/ghi" * 10, "system.info")
    assert len(name) <= 64 and all(ch.isalnum() or ch in "_-" for ch in name)
