"""``update.status``: agenthub does not update itself, so no update is ever pending.

OpenClaw's Control UI asks on every connect. agenthub never checks a registry at
run time (it may not reach one), so it reports what it knows: no update.
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import UpdateStatusParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["register"]


def register(ctx: ApiContext) -> None:
    async def update_status(call: Call, p: UpdateStatusParams) -> Any:
        return {"sentinel": None, "updateAvailable": None}

    ctx.node.dispatcher.register("update.status", update_status)
