"""``chat.send|history|abort``, and the slash commands a chat message may carry."""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...protocol.errors import ErrorCode, RpcError
from ...protocol.methods import ChatAbortParams, ChatHistoryParams, ChatSendParams
from ..rpc import Call
from ..runs import now_ms
from ..transcripts import message_view
from ._context import ApiContext

__all__ = ["HELP_TEXT", "register"]

HELP_TEXT = (
    "Commands: /stop aborts the running turn, /reset clears this session, "
    "/status shows the gateway state, /context list shows what the agent sees, /help shows this."
)


def register(ctx: ApiContext) -> None:
    node = ctx.node
    runs = ctx.runs
    store = ctx.store
    transcripts = ctx.transcripts

    async def chat_send(call: Call, p: ChatSendParams) -> Any:
        async with ctx.exclusive(p.idempotencyKey):
            return await _chat_send(call, p)

    async def _chat_send(call: Call, p: ChatSendParams) -> Any:
        run_id = p.idempotencyKey
        existing = runs.get(run_id)
        if existing is not None:
            # A finished run reports how it ended (ok, aborted, error), not just "done".
            return {"runId": run_id, "status": existing.status.value if existing.done.is_set() else "in_flight"}
        first = await ctx.idempotent_replay(run_id)
        if first is not None:
            return first
        text = p.message.strip()
        if not text:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: message: must not be empty")
        started = {"runId": run_id, "status": "started"}
        await store.put_idempotent(run_id, "chat.send", started, now_ms())
        if text.startswith("/"):
            reply = await slash_command(p.sessionKey, text)
            if reply is not None:
                runs.reply(run_id, p.sessionKey, reply, f"chat.send:{call.conn.conn_id}")
                return started
        await runs.start(run_id, p.sessionKey, p.message, f"chat.send:{call.conn.conn_id}")
        return started

    async def slash_command(session_key: str, text: str) -> str | None:
        command = " ".join(text.split())
        if command == "/stop":
            stopped = runs.abort(session_key, reason="stopped by /stop")
            return f"Stopped {len(stopped)} run(s)."
        if command == "/reset":
            runs.abort(session_key, reason="session reset")
            await store.reset_session(session_key, now_ms())
            return "Session reset."
        if command == "/status":
            active = len(runs.active(session_key))
            session = await store.get_session(session_key)
            count = session.message_count if session else 0
            return (
                f"agenthub {__version__}; provider {node.provider_name()}; session {session_key}: "
                f"{count} message(s), {active} active run(s); {len(node.connections)} connection(s)."
            )
        if command == "/help":
            return HELP_TEXT
        if command == "/context list":
            history = await store.history(session_key, 1000)
            chars = sum(len(m.text) for m in history)
            lines = [f"{len(history)} message(s), {chars} character(s) in context for {session_key}."]
            lines += [f"- {m.role}: {m.text[:60]}" for m in history[-10:]]
            return "\n".join(lines)
        return None

    async def chat_history(call: Call, p: ChatHistoryParams) -> Any:
        if transcripts is not None:
            views = await transcripts.views(p.sessionKey, p.limit)
        else:
            views = [message_view(m) for m in await store.history(p.sessionKey, p.limit)]
        return {"sessionKey": p.sessionKey, "messages": views}

    async def chat_abort(call: Call, p: ChatAbortParams) -> Any:
        aborted = runs.abort(p.sessionKey, p.runId)
        return {"ok": True, "aborted": bool(aborted), "runIds": aborted}

    d = node.dispatcher
    d.register("chat.send", chat_send)
    d.register("chat.history", chat_history)
    d.register("chat.abort", chat_abort)
    ctx.slash_command = slash_command  # channel chats answer the same commands
