"""The method handlers of the gateway API, registered on the node's dispatcher.

Each handler has the one shape ``async (call, params) -> payload`` and raises
``RpcError``; none knows which dialect or socket the call came from.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from .. import __version__
from ..protocol.errors import ErrorCode, RpcError
from ..protocol.methods import (
    AgentParams,
    AgentReplayParams,
    AgentWaitParams,
    ChatAbortParams,
    ChatHistoryParams,
    ChatSendParams,
    ConfigPatchParams,
    ConfigSetParams,
    EmptyParams,
    SendParams,
    SessionKeyParams,
    SessionsListParams,
)
from .bus import ReplayGap
from .node import Node
from .rpc import Call, Handler
from .runs import Run, now_ms, run_stream
from .store import MessageRecord
from .transcripts import TranscriptCache, message_view

__all__ = ["DEFAULT_SESSION", "ConfigService", "register_handlers"]

DEFAULT_SESSION = "main"

HELP_TEXT = (
    "Commands: /stop aborts the running turn, /reset clears this session, "
    "/status shows the gateway state, /context list shows what the agent sees, /help shows this."
)


class ConfigService(Protocol):
    """The settings owner (outside core): validates, persists and applies config."""

    def public(self) -> dict[str, Any]: ...

    async def replace(self, config: dict[str, Any]) -> dict[str, Any]: ...

    async def patch(self, patch: dict[str, Any]) -> dict[str, Any]: ...

    def parse_raw(self, raw: str) -> dict[str, Any]: ...


def register_handlers(node: Node, config: ConfigService) -> None:
    runs = node.runs
    store = node.store
    # The composition root puts a TranscriptCache in front of the store: chat.history then
    # reuses the views it keeps instead of rebuilding 200 of them per call.
    transcripts = store if isinstance(store, TranscriptCache) else None
    d = node.dispatcher

    def final_reply(call: Call) -> Any:
        return lambda run: call.late_reply(run.result())

    def reply_after_first(call: Call, payload: Any) -> None:
        """Send a second response once the handler's own (first) response has been written."""
        asyncio.get_running_loop().call_soon(call.late_reply, payload)

    accepting: dict[str, asyncio.Future[None]] = {}

    @contextlib.asynccontextmanager
    async def exclusive(key: str) -> AsyncIterator[None]:
        """One call per idempotency key at a time, so a concurrent retry sees what the first did."""
        while (busy := accepting.get(key)) is not None:
            await asyncio.shield(busy)
        accepting[key] = done = asyncio.get_running_loop().create_future()
        try:
            yield
        finally:
            del accepting[key]
            done.set_result(None)

    async def idempotent_replay(call: Call, key: str) -> dict[str, Any] | None:
        """The first response for ``key`` if it is still within the TTL."""
        stored = await store.get_idempotent(key, now_ms() - node.limits.idempotency_ttl_s * 1000)
        return stored[1] if stored else None

    async def health(call: Call, p: EmptyParams) -> Any:
        return {**node.health(), "provider": node.provider_name(), "connections": len(node.connections)}

    async def status(call: Call, p: EmptyParams) -> Any:
        return {
            "version": __version__,
            "uptimeMs": now_ms() - node.started_ms,
            "provider": node.provider_name(),
            "connections": len(node.connections),
            "runs": {
                "active": [r.result() | {"sessionKey": r.session_key} for r in runs.active()],
                "totals": dict(runs.totals),
                "stored": await store.count_runs_by_status(),
            },
        }

    async def system_presence(call: Call, p: EmptyParams) -> Any:
        return node.presence()

    async def agent(call: Call, p: AgentParams) -> Any:
        async with exclusive(p.idempotencyKey):
            return await _agent(call, p)

    async def _agent(call: Call, p: AgentParams) -> Any:
        run_id = p.idempotencyKey
        existing = runs.get(run_id)
        if existing is not None:
            return await _replay_run(call, existing)
        first = await idempotent_replay(call, run_id)
        if first is not None:
            record = await store.get_run(run_id)
            if record is not None and record.status not in ("queued", "running"):
                result = {"runId": run_id, "status": record.status, "summary": record.summary or ""}
                reply_after_first(call, result)
            return first
        accepted = {"runId": run_id, "status": "accepted", "acceptedAt": now_ms()}
        await store.put_idempotent(run_id, "agent", accepted, now_ms())
        run = await runs.start(run_id, p.sessionKey or DEFAULT_SESSION, p.message, f"agent:{call.conn.conn_id}")
        run.on_done.append(final_reply(call))
        return accepted

    async def _replay_run(call: Call, run: Run) -> dict[str, Any]:
        stored = await store.get_idempotent(run.run_id, 0)
        if run.done.is_set():
            reply_after_first(call, run.result())
        else:
            run.on_done.append(final_reply(call))
        if stored is not None and stored[0] == "agent":
            first: dict[str, Any] = stored[1]  # the original accept, acceptedAt included
            return first
        return {"runId": run.run_id, "status": "accepted", "acceptedAt": run.created_ms}

    async def agent_wait(call: Call, p: AgentWaitParams) -> Any:
        run = await runs.wait(p.runId, p.timeoutMs / 1000)
        if run is not None:
            if not run.done.is_set():
                return {"runId": run.run_id, "status": "timeout"}
            return run.result()
        record = await store.get_run(p.runId)
        if record is None:
            raise RpcError(ErrorCode.NOT_FOUND, f"unknown run: {p.runId}")
        out: dict[str, Any] = {"runId": record.run_id, "status": record.status, "summary": record.summary or ""}
        if record.error:
            out["error"] = record.error
        return out

    async def agent_replay(call: Call, p: AgentReplayParams) -> Any:
        stream = run_stream(p.runId)
        try:
            pubs = node.bus.history(stream, p.afterSeq, p.epoch)
        except ReplayGap as gap:
            raise RpcError(
                ErrorCode.NOT_FOUND,
                f"cannot replay run {p.runId}: {gap.reason}",
                details={"code": "REPLAY_GAP", "runId": p.runId},
            ) from None
        pos = node.bus.position(stream)
        run = runs.get(p.runId)
        return {
            "runId": p.runId,
            "epoch": pos.epoch if pos else None,
            "lastSeq": pos.seq if pos else 0,
            "done": bool(run and run.done.is_set()),
            "events": [{"event": pub.event, "payload": pub.payload} for pub in pubs],
        }

    async def chat_send(call: Call, p: ChatSendParams) -> Any:
        async with exclusive(p.idempotencyKey):
            return await _chat_send(call, p)

    async def _chat_send(call: Call, p: ChatSendParams) -> Any:
        run_id = p.idempotencyKey
        existing = runs.get(run_id)
        if existing is not None:
            # A finished run reports how it ended (ok, aborted, error), not just "done".
            return {"runId": run_id, "status": existing.status.value if existing.done.is_set() else "in_flight"}
        first = await idempotent_replay(call, run_id)
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

    async def send(call: Call, p: SendParams) -> Any:
        async with exclusive(p.idempotencyKey):
            return await _send(call, p)

    async def _send(call: Call, p: SendParams) -> Any:
        key = p.idempotencyKey
        first = await idempotent_replay(call, key)
        if first is not None:
            return first
        session_key = p.sessionKey or p.to or DEFAULT_SESSION
        msg_id = await store.append_message(
            MessageRecord(session_key, "assistant", p.message, now_ms(), key, {"source": "send"})
        )
        runs.reply(key, session_key, p.message, f"send:{call.conn.conn_id}")
        result = {"runId": key, "messageId": str(msg_id), "sessionKey": session_key, "channel": p.channel or "webchat"}
        await store.put_idempotent(key, "send", result, now_ms())
        return result

    async def sessions_list(call: Call, p: SessionsListParams) -> Any:
        sessions = await store.list_sessions(p.limit)
        active = {r.session_key for r in runs.active()}
        return {
            "sessions": [
                {
                    "key": s.key,
                    "createdAt": s.created_ms,
                    "updatedAt": s.updated_ms,
                    "messageCount": s.message_count,
                    "active": s.key in active,
                }
                for s in sessions
            ]
        }

    async def sessions_reset(call: Call, p: SessionKeyParams) -> Any:
        aborted = runs.abort(p.key, reason="session reset")
        if not await store.reset_session(p.key, now_ms()):
            raise RpcError(ErrorCode.NOT_FOUND, f"unknown session: {p.key}")
        return {"ok": True, "key": p.key, "abortedRunIds": aborted}

    async def sessions_delete(call: Call, p: SessionKeyParams) -> Any:
        aborted = runs.abort(p.key, reason="session deleted")
        if not await store.delete_session(p.key):
            raise RpcError(ErrorCode.NOT_FOUND, f"unknown session: {p.key}")
        return {"ok": True, "key": p.key, "abortedRunIds": aborted}

    async def config_get(call: Call, p: EmptyParams) -> Any:
        return {"config": config.public()}

    async def config_set(call: Call, p: ConfigSetParams) -> Any:
        new = p.config if p.config is not None else config.parse_raw(p.raw) if p.raw is not None else None
        if new is None:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: config: provide config or raw")
        return await config.replace(new)

    async def config_patch(call: Call, p: ConfigPatchParams) -> Any:
        patch = p.patch if p.patch is not None else config.parse_raw(p.raw) if p.raw is not None else None
        if patch is None:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: patch: provide patch or raw")
        return await config.patch(patch)

    handlers: dict[str, Handler] = {
        "health": health,
        "status": status,
        "system-presence": system_presence,
        "agent": agent,
        "agent.wait": agent_wait,
        "agent.replay": agent_replay,
        "chat.send": chat_send,
        "chat.history": chat_history,
        "chat.abort": chat_abort,
        "send": send,
        "sessions.list": sessions_list,
        "sessions.reset": sessions_reset,
        "sessions.delete": sessions_delete,
        "config.get": config_get,
        "config.set": config_set,
        "config.patch": config_patch,
    }
    for name, handler in handlers.items():
        d.register(name, handler)
