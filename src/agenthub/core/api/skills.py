"""``skills.status``: agent skills (``openclaw skills list``); agenthub's agent has none.

OpenClaw loads skills from the agent's workspace; agenthub's agent has no
workspace and no skills, so the report lists none (and names no directories).
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import SkillsStatusParams
from ..rpc import Call
from ..sessions import DEFAULT_AGENT_ID
from ._context import ApiContext

__all__ = ["register"]


def register(ctx: ApiContext) -> None:
    async def skills_status(call: Call, p: SkillsStatusParams) -> Any:
        return {"agentId": p.agentId or DEFAULT_AGENT_ID, "skills": []}

    ctx.node.dispatcher.register("skills.status", skills_status)
