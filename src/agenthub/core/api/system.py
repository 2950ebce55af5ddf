"""``health``, ``status``, ``system-presence``: what the gateway is and who is on it."""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...protocol.methods import EmptyParams
from ..rpc import Call
from ..runs import now_ms
from ._context import ApiContext
from ._status import openclaw_status

__all__ = ["register"]


def register(ctx: ApiContext) -> None:
    node = ctx.node

    async def health(call: Call, p: EmptyParams) -> Any:
        return {
            **node.health(),
            "provider": node.provider_name(),
            "connections": len(node.connections),
            "backend": node.backend(),
        }

    async def status(call: Call, p: EmptyParams) -> Any:
        runs = ctx.runs
        return {
            # OpenClaw's status summary first (its CLI reads it), then agenthub's own fields.
            **await openclaw_status(ctx),
            "version": __version__,
            "uptimeMs": now_ms() - node.started_ms,
            "provider": node.provider_name(),
            "connections": len(node.connections),
            "backend": node.backend(),
            "runs": {
                "active": [r.result() | {"sessionKey": r.session_key} for r in runs.active()],
                "totals": dict(runs.totals),
                "stored": await ctx.store.count_runs_by_status(),
            },
        }

    async def system_presence(call: Call, p: EmptyParams) -> Any:
        return node.presence()

    node.dispatcher.register("health", health)
    node.dispatcher.register("status", status)
    node.dispatcher.register("system-presence", system_presence)
