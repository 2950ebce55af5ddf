"""What OpenClaw's clients load when they open a conversation: ``chat.history`` and ``chat.startup``.

Both answer with the transcript plus the session's row (``sessionInfo``, whose
``hasActiveRun`` tells the Control UI whether a turn is still running), its
``sessionId`` and the agent's defaults. ``chat.startup`` also subscribes the
connection to ``sessions.changed``, as OpenClaw's does. A session that does not
exist yet has an empty history and no row.

agenthub starts a turn as soon as its message is accepted (no pending-input
queue), so ``pendingInputs`` is always empty and ``inputRunIds`` get no receipts:
the accepted input is the user message carrying that ``runId`` in the history.
"""

from __future__ import annotations

from typing import Any

from ...protocol.methods import ChatStartupParams
from ..rpc import Call
from ..transcripts import message_view
from ._context import ApiContext
from .sessions import session_defaults_view, session_id_of, session_row

__all__ = ["history_payload", "register"]


async def history_payload(ctx: ApiContext, key: str, limit: int, *, receipts: bool = False) -> dict[str, Any]:
    """The ``chat.history`` answer for canonical ``key`` (the newest ``limit`` messages)."""
    store = ctx.store
    transcripts = ctx.transcripts
    if transcripts is not None:
        views = await transcripts.views(key, limit)
    else:
        views = [message_view(m) for m in await store.history(key, limit)]
    out: dict[str, Any] = {
        "sessionKey": key,
        "messages": views,
        "pendingInputs": {"items": [], "total": 0},
        "defaults": session_defaults_view(ctx),
    }
    if receipts:
        out["inputReceipts"] = []
        out["inputConsumptions"] = []
    if transcripts is not None:
        record, meta = await transcripts.session_info(key)
    else:
        record = await store.get_session(key)
        meta = (await store.get_session_meta([key])).get(key, {}) if record is not None else {}
    if record is not None:
        out["sessionId"] = session_id_of(record)
        out["sessionInfo"] = session_row(record, meta, ctx.runs.active(key), ctx.model_ref())
    return out


def register(ctx: ApiContext) -> None:
    async def chat_startup(call: Call, p: ChatStartupParams) -> Any:
        ctx.subscriptions.subscribe_changes(call.conn)
        return await history_payload(ctx, ctx.session_key(p.sessionKey, p.agentId), p.limit)

    ctx.node.dispatcher.register("chat.startup", chat_startup)
