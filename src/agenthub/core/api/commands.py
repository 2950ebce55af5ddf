"""``commands.list``: the slash commands a chat message may carry (``core.api.chat`` runs them).

The OpenClaw TUI and Control UI offer these for completion; each is answered by
the gateway itself, without a model.
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import CommandsListParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["SLASH_COMMANDS", "register"]

# name, description, category, accepts arguments
SLASH_COMMANDS: tuple[tuple[str, str, str, bool], ...] = (
    ("stop", "Abort the running turn of this session.", "session", False),
    ("reset", "Clear this session's transcript.", "session", False),
    ("status", "Show the gateway, provider and session state.", "status", False),
    ("context", "`/context list`: what the agent sees of this session.", "status", True),
    ("help", "List these commands.", "status", False),
)


def register(ctx: ApiContext) -> None:
    async def commands_list(call: Call, p: CommandsListParams) -> Any:
        scope = p.scope or "both"
        if scope == "native":  # the chat-platform menus of OpenClaw's channels: agenthub has none
            return {"commands": []}
        return {
            "commands": [
                {
                    "name": name,
                    "textAliases": [f"/{name}"],
                    "description": description,
                    "category": category,
                    "source": "native",
                    "scope": "text",
                    "acceptsArgs": accepts,
                }
                for name, description, category, accepts in SLASH_COMMANDS
            ]
        }

    ctx.node.dispatcher.register("commands.list", commands_list)
