"""``sessions.*``: the conversations the gateway keeps."""

from __future__ import annotations

from typing import Any

from ...protocol.errors import ErrorCode, RpcError
from ...protocol.methods import SessionKeyParams, SessionsListParams
from ..rpc import Call
from ..runs import now_ms
from ._context import ApiContext

__all__ = ["DEFAULT_SESSION", "register"]

DEFAULT_SESSION = "main"


def register(ctx: ApiContext) -> None:
    runs = ctx.runs
    store = ctx.store

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

    d = ctx.node.dispatcher
    d.register("sessions.list", sessions_list)
    d.register("sessions.reset", sessions_reset)
    d.register("sessions.delete", sessions_delete)
