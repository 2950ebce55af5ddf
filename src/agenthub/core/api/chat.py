"""``chat.send|history|abort``, and the slash commands a chat message may carry.

A slash command stands for a method (``/reset`` is ``sessions.reset``) and is
authorized as that method would be, by the dispatcher's own check. Its answer
is a run like any other, launched after the ``res`` that acknowledges it.

Channel chats (``core.api.channels``) answer the same commands through
``ApiContext.slash_command``; their senders are authorized by the channel's
allow-list or pairing, for their own conversation only.
"""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...protocol.errors import ErrorCode, RpcError
from ...protocol.methods import ChatAbortParams, ChatHistoryParams, ChatSendParams
from ..rpc import Call
from ..runs import now_ms
from ._context import ApiContext
from .chat_views import history_payload

__all__ = ["HELP_TEXT", "SLASH_COMMANDS", "register"]

HELP_TEXT = (
    "Commands: /stop aborts the running turn, /reset clears this session, "
    "/status shows the gateway state, /context list shows what the agent sees, /help shows this."
)

# Each command and the method it stands for (None: no more than chat.send itself).
SLASH_COMMANDS: dict[str, str | None] = {
    "/stop": "chat.abort",
    "/reset": "sessions.reset",
    "/status": "status",
    "/context list": "chat.history",
    "/help": None,
}


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
            # A finished run reports how it ended (ok, aborted, error, timeout), not just "done".
            return {"runId": run_id, "status": existing.status.value if existing.done.is_set() else "in_flight"}
        first = await ctx.idempotent_replay(run_id)
        if first is not None:
            # After a restart the run is only in the store: report how it ended, as agent retries do.
            record = await store.get_run(run_id)
            if record is not None:
                status = "in_flight" if record.status in ("queued", "running") else record.status
                return {"runId": run_id, "status": status}
            return first
        text = p.message.strip()
        if not text:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: message: must not be empty")
        command = " ".join(text.split()) if text.startswith("/") else None
        if command in SLASH_COMMANDS:
            method = SLASH_COMMANDS[command]
            if method is not None:
                node.dispatcher.authorize(call.conn, method)
        else:
            command = None
            runs.check_message(p.message)
        # Checked before the key is spent: a refused request may be retried with the same key.
        runs.check_available()
        started = {"runId": run_id, "status": "started"}
        await store.put_idempotent(run_id, "chat.send", started, now_ms())
        key = ctx.session_key(p.sessionKey, p.agentId)
        origin = f"chat.send:{call.conn.conn_id}"
        if command is not None:
            reply = await slash_command(key, command)
            run = await runs.reply(run_id, key, reply, origin, launch=False)
        else:
            timeout_s = p.timeoutMs / 1000 if p.timeoutMs else None
            run = await runs.start(run_id, key, p.message, origin, timeout_s=timeout_s, launch=False)
        call.after_response(lambda: runs.launch(run))
        return started

    async def slash_command(session_key: str, command: str) -> str:
        if command == "/stop":
            stopped = await runs.abort(session_key, reason="stopped by /stop")
            return f"Stopped {len(stopped)} run(s)."
        if command == "/reset":
            await runs.abort(session_key, reason="session reset")
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
        if command == "/context list":
            history = await store.history(session_key, 1000)
            chars = sum(len(m.text) for m in history)
            lines = [f"{len(history)} message(s), {chars} character(s) in context for {session_key}."]
            lines += [f"- {m.role}: {m.text[:60]}" for m in history[-10:]]
            return "\n".join(lines)
        return HELP_TEXT

    async def chat_history(call: Call, p: ChatHistoryParams) -> Any:
        key = ctx.session_key(p.sessionKey, p.agentId)
        return await history_payload(ctx, key, p.limit, receipts=p.inputRunIds is not None)

    async def chat_abort(call: Call, p: ChatAbortParams) -> Any:
        aborted = await runs.abort(ctx.session_key(p.sessionKey, p.agentId), p.runId)
        return {"ok": True, "aborted": bool(aborted), "runIds": aborted}

    async def channel_command(session_key: str, text: str) -> str | None:
        """A chat platform's slash command; None when ``text`` is not one."""
        command = " ".join(text.split())
        return await slash_command(session_key, command) if command in SLASH_COMMANDS else None

    ctx.slash_command = channel_command

    d = node.dispatcher
    d.register("chat.send", chat_send)
    d.register("chat.history", chat_history)
    d.register("chat.abort", chat_abort)
    ctx.slash_command = slash_command  # channel chats answer the same commands
