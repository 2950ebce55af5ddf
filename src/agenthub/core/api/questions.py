"""``question.list``: questions an agent asked an operator; agenthub's agents never ask any.

OpenClaw's TUI and Control UI poll it to show pending ``ask_user`` prompts.
agenthub has no such tool, so the list is always empty, truthfully.
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import EmptyParams
from ..rpc import Call
from ._context import ApiContext

__all__ = ["register"]


def register(ctx: ApiContext) -> None:
    async def question_list(call: Call, p: EmptyParams) -> Any:
        return {"questions": []}

    ctx.node.dispatcher.register("question.list", question_list)
