"""``agents.list`` and ``agent.identity.get``: the one agent agenthub runs.

agenthub serves a single agent, ``main``, driven by the configured provider;
OpenClaw's clients list agents before they pick a session (its CLI in remote
mode, the TUI and the Control UI all do), so the list names that agent and the
model it runs, and nothing it does not have (no workspace, no avatar).
"""

from __future__ import annotations

from typing import Any

from ...protocol.errors import ErrorCode, RpcError
from ...protocol.methods import AgentIdentityParams, EmptyParams
from ..rpc import Call
from ..sessions import DEFAULT_AGENT_ID, MAIN_KEY, SESSION_SCOPE, parse_session_key
from ._context import ApiContext

__all__ = ["AGENT_NAME", "register"]

AGENT_NAME = "agenthub"


def register(ctx: ApiContext) -> None:
    def summary() -> dict[str, Any]:
        provider, model = ctx.model_ref()
        return {
            "id": DEFAULT_AGENT_ID,
            "kind": "agent",
            "name": AGENT_NAME,
            "model": {"primary": f"{provider}/{model}"},
        }

    async def agents_list(call: Call, p: EmptyParams) -> Any:
        return {
            "defaultId": DEFAULT_AGENT_ID,
            "ownership": "sole",
            "selectionRequired": False,
            "mainKey": MAIN_KEY,
            "scope": SESSION_SCOPE,
            "agents": [summary()],
        }

    async def identity(call: Call, p: AgentIdentityParams) -> Any:
        agent_id = (p.agentId or "").strip().lower()
        if not agent_id and p.sessionKey:
            agent_id = parse_session_key(ctx.session_key(p.sessionKey)).agent_id or DEFAULT_AGENT_ID
        agent_id = agent_id or DEFAULT_AGENT_ID
        if agent_id != DEFAULT_AGENT_ID:
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                f"unknown agent id: {agent_id}",
                details={"code": "UNKNOWN_AGENT_ID", "agentId": agent_id},
            )
        return {"agentId": DEFAULT_AGENT_ID, "name": AGENT_NAME, "nameSource": "default"}

    d = ctx.node.dispatcher
    d.register("agents.list", agents_list)
    d.register("agent.identity.get", identity)
