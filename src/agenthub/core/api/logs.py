"""``logs.tail``: the gateway's recent log for ``openclaw logs`` (and ``--follow``, which polls it).

Registered only when the composition root keeps a log buffer (``limits.log_buffer_bytes``
above 0), so hello-ok never advertises a tail that cannot answer.
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import LogsTailParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["register"]


def register(ctx: ApiContext) -> None:
    buffer = ctx.node.log_buffer
    if buffer is None:
        return

    async def logs_tail(call: Call, p: LogsTailParams) -> Any:
        return buffer.view(buffer.tail(p.cursor, p.limit, p.maxBytes))

    ctx.node.dispatcher.register("logs.tail", logs_tail)
