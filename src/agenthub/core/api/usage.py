"""``usage.status``: provider quota windows, which agenthub does not track.

OpenClaw polls each provider's usage endpoint; agenthub never calls a provider
outside a run, so it knows no quota window and lists none. ``usage.cost`` is
not offered: agenthub does not record token counts, and zero totals would be
invented numbers.
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import EmptyParams
from ..rpc import Call
from ..runs import now_ms
from ._context import ApiContext

__all__ = ["register"]


def register(ctx: ApiContext) -> None:
    async def usage_status(call: Call, p: EmptyParams) -> Any:
        return {"updatedAt": now_ms(), "providers": []}

    ctx.node.dispatcher.register("usage.status", usage_status)
