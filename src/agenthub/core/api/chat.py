"""``chat.send|history|abort``, ``send``, and the slash commands a chat message may carry."""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...protocol.errors import ErrorCode, RpcError
from ...protocol.methods import ChatAbortParams, ChatHistoryParams, ChatSendParams, SendParams
from ..rpc import Call
from ..runs import now_ms
from ..store import MessageRecord
from ._context import ApiContext
from .chat_views import history_payload
from .sessions import DEFAULT_SESSION

__all__ = ["HELP_TEXT", "register"]

HELP_TEXT = (
    "Commands: /stop aborts the running turn, /reset clears this session, "
    "/status shows the gateway state, /context list shows what the agent sees, /help shows this."
)


def register(ctx: ApiContext) -> None:
    node = ctx.node
    runs = ctx.runs
    store = ctx.store

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
        key = ctx.session_key(p.sessionKey, p.agentId)
        started = {"runId": run_id, "status": "started"}
        await store.put_idempotent(run_id, "chat.send", started, now_ms())
        if text.startswith("/"):
            reply = await slash_command(key, text)
            if reply is not None:
                runs.reply(run_id, key, reply, f"chat.send:{call.conn.conn_id}")
                return started
        await runs.start(run_id, key, p.message, f"chat.send:{call.conn.conn_id}")
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
        key = ctx.session_key(p.sessionKey, p.agentId)
        return await history_payload(ctx, key, p.limit, receipts=p.inputRunIds is not None)

    async def chat_abort(call: Call, p: ChatAbortParams) -> Any:
        aborted = runs.abort(ctx.session_key(p.sessionKey, p.agentId), p.runId)
        return {"ok": True, "aborted": bool(aborted), "runIds": aborted}

    async def send(call: Call, p: SendParams) -> Any:
        async with ctx.exclusive(p.idempotencyKey):
            return await _send(call, p)

    async def _send(call: Call, p: SendParams) -> Any:
        key = p.idempotencyKey
        first = await ctx.idempotent_replay(key)
        if first is not None:
            return first
        session_key = ctx.session_key(p.sessionKey or p.to, default=DEFAULT_SESSION)
        msg_id = await store.append_message(
            MessageRecord(session_key, "assistant", p.message, now_ms(), key, {"source": "send"})
        )
        runs.reply(key, session_key, p.message, f"send:{call.conn.conn_id}")
        result = {"runId": key, "messageId": str(msg_id), "sessionKey": session_key, "channel": p.channel or "webchat"}
        await store.put_idempotent(key, "send", result, now_ms())
        return result

    d = node.dispatcher
    d.register("chat.send", chat_send)
    d.register("chat.history", chat_history)
    d.register("chat.abort", chat_abort)
    d.register("send", send)
