"""``sessions.*``: the conversations the gateway keeps, in OpenClaw's shapes.

Rows carry what OpenClaw's clients read (``key``, ``sessionId``, ``kind``,
``agentId``, ``updatedAt``, ...); fields agenthub cannot fill truthfully (token
counts, costs) are left out. ``sessionId`` is a stable UUID of the stored
session (its key and creation time), which the OpenClaw CLI needs before it
deletes or archives a session. Every key goes through ``core.sessions``.
"""

from __future__ import annotations

import uuid
from typing import Any

from ...protocol.errors import ErrorCode, RpcError, not_found
from ...protocol.methods import (
    ADMIN,
    MAX_SESSIONS_LIST,
    AgentParams,
    SessionKeyParams,
    SessionsCompactParams,
    SessionsDeleteParams,
    SessionsListParams,
    SessionsMessagesParams,
    SessionsPatchParams,
    SessionsPreviewParams,
    SessionsResolveParams,
    SessionsSubscribeParams,
)
from ..rpc import Call
from ..runs import Run, now_ms
from ..sessions import DEFAULT_AGENT_ID, MAIN_KEY, parse_session_key, session_defaults
from ..store import SessionRecord
from ._context import ApiContext

__all__ = ["DEFAULT_SESSION", "agent_session_key", "register", "session_defaults_view", "session_id_of", "session_row"]

DEFAULT_SESSION = MAIN_KEY
_SESSION_ID_NS = uuid.UUID("5f0c3a8e-7d0b-4c1e-9a57-6a2f0e8b1c44")
# sessions.patch fields kept in the session's metadata (the rest of OpenClaw's patch has no meaning here).
_PATCHABLE = ("label", "icon", "color", "category", "pinned", "unread", "statusNote")


def session_id_of(record: SessionRecord) -> str:
    """A stable identity of one stored session: the same key re-created later gets another."""
    return str(uuid.uuid5(_SESSION_ID_NS, f"{record.key}\x00{record.created_ms}"))


def _kind(key: str) -> str:
    return key if key in ("global", "unknown") else "direct"


def session_row(
    record: SessionRecord,
    meta: dict[str, Any],
    active: list[Run],
    model: tuple[str, str],
) -> dict[str, Any]:
    """One ``SessionRow`` as OpenClaw lists it (plus agenthub's ``messageCount``)."""
    parsed = parse_session_key(record.key)
    row: dict[str, Any] = {
        "key": record.key,
        "sessionId": session_id_of(record),
        "kind": _kind(record.key),
        "agentId": parsed.agent_id or DEFAULT_AGENT_ID,
        "isMain": parsed.is_main,
        "chatType": "direct",
        "createdAt": record.created_ms,
        "updatedAt": record.updated_ms,
        "messageCount": record.message_count,
        "modelProvider": model[0],
        "model": model[1],
        "hasActiveRun": bool(active),
        "active": bool(active),  # agenthub's own name for hasActiveRun (its UI and SDK read it)
        "activeRunIds": [r.run_id for r in active],
    }
    if active:
        row["status"] = "running"
    if record.last_run_id:
        row["lastRunId"] = record.last_run_id
    label = meta.get("label")
    row["displayName"] = label if isinstance(label, str) and label else parsed.rest
    for name in _PATCHABLE:
        value = meta.get(name)
        if value is not None:
            row[name] = value
    archived_at = meta.get("archivedAt")
    row["archived"] = isinstance(archived_at, int)
    if isinstance(archived_at, int):
        row["archivedAt"] = archived_at
    return row


def session_defaults_view(ctx: ApiContext) -> dict[str, Any]:
    """``defaults`` of ``sessions.list`` and ``chat.startup``; the Control UI reads ``modelSelectionTarget``."""
    provider, model = ctx.model_ref()
    return {
        **session_defaults(),
        "modelProvider": provider,
        "model": model,
        "contextTokens": None,
        # agenthub does not persist model choices into its config: a pick applies to the session.
        "modelSelectionTarget": "session",
    }


async def agent_session_key(ctx: ApiContext, p: AgentParams) -> str:
    """The session an ``agent`` call runs in: its ``sessionKey``, else the session ``sessionId`` names,
    else the agent's main session (OpenClaw's selectors)."""
    if p.sessionKey or p.sessionId is None:
        return ctx.session_key(p.sessionKey, p.agentId)
    for record in await ctx.store.list_sessions(MAX_SESSIONS_LIST):
        if session_id_of(record) == p.sessionId:
            return record.key
    raise not_found(f"no session has sessionId {p.sessionId}", "SESSION_NOT_FOUND", sessionId=p.sessionId)


def register(ctx: ApiContext) -> None:
    runs = ctx.runs
    store = ctx.store
    subs = ctx.subscriptions

    def active_by_key() -> dict[str, list[Run]]:
        out: dict[str, list[Run]] = {}
        for run in runs.active():
            out.setdefault(run.session_key, []).append(run)
        return out

    async def rows_for(records: list[SessionRecord]) -> list[dict[str, Any]]:
        metas = await store.get_session_meta([r.key for r in records])
        active = active_by_key()
        model = ctx.model_ref()
        return [session_row(r, metas.get(r.key, {}), active.get(r.key, []), model) for r in records]

    async def row_of(key: str) -> dict[str, Any] | None:
        record = await store.get_session(key)
        if record is None:
            return None
        return (await rows_for([record]))[0]

    async def require(key: str, expected_session_id: str | None = None) -> SessionRecord:
        record = await store.get_session(key)
        if record is None:
            raise not_found(f"unknown session: {key}", "SESSION_NOT_FOUND", key=key)
        if expected_session_id is not None and expected_session_id != session_id_of(record):
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                f"session {key} changed: expected sessionId {expected_session_id}",
                details={"reason": "session-changed", "key": key, "sessionId": session_id_of(record)},
            )
        return record

    async def list_result(p: SessionsListParams) -> dict[str, Any]:
        # agenthub never spawns child sessions, so a list of some session's children is empty.
        records = [] if p.spawnedBy is not None else await store.list_sessions(MAX_SESSIONS_LIST)
        metas = await store.get_session_meta()  # only sessions that were ever patched have any
        agent = p.agentId.strip().lower() if p.agentId is not None else None
        since = now_ms() - p.activeMinutes * 60_000 if p.activeMinutes is not None else None
        needle = p.search.lower() if p.search else None

        def keep(r: SessionRecord) -> bool:
            meta = metas.get(r.key, {})
            archived = isinstance(meta.get("archivedAt"), int)
            return (
                (agent is None or (parse_session_key(r.key).agent_id or DEFAULT_AGENT_ID) == agent)
                and (p.includeGlobal or r.key != "global")
                and (p.includeUnknown or r.key != "unknown")
                and (since is None or r.updated_ms >= since)
                and (p.archived == "all" or archived is (p.archived is True))
                and (p.label is None or meta.get("label") == p.label)
                and (needle is None or needle in r.key.lower() or needle in str(meta.get("label", "")).lower())
            )

        matching = [r for r in records if keep(r)]
        page = matching[p.offset : p.offset + p.limit]
        active = active_by_key()
        model = ctx.model_ref()
        rows = [session_row(r, metas.get(r.key, {}), active.get(r.key, []), model) for r in page]
        if p.includeLastMessage:
            for row in rows:
                last = await store.history(row["key"], 1)
                if last:
                    row["lastMessagePreview"] = last[-1].text[:200]
        result: dict[str, Any] = {
            "ts": now_ms(),
            "path": None,
            "count": len(rows),
            "totalCount": len(matching),
            "limitApplied": p.limit,
            "offset": p.offset,
            "hasMore": p.offset + len(rows) < len(matching),
            "defaults": defaults(),
            "sessions": rows,
        }
        if result["hasMore"]:
            result["nextOffset"] = p.offset + len(rows)
        return result

    def defaults() -> dict[str, Any]:
        return session_defaults_view(ctx)

    async def sessions_list(call: Call, p: SessionsListParams) -> Any:
        return await list_result(p)

    async def sessions_subscribe(call: Call, p: SessionsSubscribeParams) -> Any:
        subs.subscribe_changes(call.conn)
        if not p.model_fields_set:
            return {"subscribed": True}
        return {"subscribed": True, "list": await list_result(p)}

    async def messages_subscribe(call: Call, p: SessionsMessagesParams) -> Any:
        key = ctx.session_key(p.key, p.agentId)
        if not subs.subscribe_messages(call.conn, key):
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                f"too many session subscriptions (max {subs.max_sessions_per_conn} per connection)",
                details={"reason": "SUBSCRIPTION_LIMIT"},
            )
        return {"subscribed": True, "key": key}

    async def messages_unsubscribe(call: Call, p: SessionsMessagesParams) -> Any:
        key = ctx.session_key(p.key, p.agentId)
        subs.unsubscribe_messages(call.conn, key)
        return {"subscribed": False, "key": key}

    async def sessions_preview(call: Call, p: SessionsPreviewParams) -> Any:
        previews: list[dict[str, Any]] = []
        for raw in p.keys:
            key = ctx.session_key(raw)
            if await store.get_session(key) is None:
                previews.append({"key": raw, "status": "missing", "items": []})
                continue
            items = [
                {"role": m.role, "text": m.text[: p.maxChars]}
                for m in await store.history(key, p.limit)
                if m.role in ("user", "assistant")
            ]
            previews.append({"key": key, "status": "ok" if items else "empty", "items": items})
        return {"ts": now_ms(), "previews": previews}

    async def sessions_describe(call: Call, p: SessionKeyParams) -> Any:
        key = ctx.session_key(p.key, p.agentId)
        return {"session": await row_of(key)}  # null for a session that does not exist (as OpenClaw)

    async def sessions_resolve(call: Call, p: SessionsResolveParams) -> Any:
        if p.key is not None:
            key = ctx.session_key(p.key, p.agentId)
            if await store.get_session(key) is not None or not p.allowMissing:
                return {"ok": True, "key": key, "agentId": parse_session_key(key).agent_id or DEFAULT_AGENT_ID}
            return {"ok": False}
        records = await store.list_sessions(MAX_SESSIONS_LIST)
        if p.sessionId is not None:
            found = [r.key for r in records if session_id_of(r) == p.sessionId]
        elif p.label is not None:
            metas = await store.get_session_meta([r.key for r in records])
            found = [r.key for r in records if metas.get(r.key, {}).get("label") == p.label]
        else:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: provide key, sessionId or label")
        if len(found) == 1:
            key = found[0]
            return {"ok": True, "key": key, "agentId": parse_session_key(key).agent_id or DEFAULT_AGENT_ID}
        if not found and p.allowMissing:
            return {"ok": False}
        raise RpcError(
            ErrorCode.INVALID_REQUEST,
            "no session matches" if not found else "more than one session matches",
            details={"reason": "SESSION_NOT_FOUND" if not found else "SESSION_AMBIGUOUS", "candidates": found[:10]},
        )

    async def sessions_patch(call: Call, p: SessionsPatchParams) -> Any:
        key = ctx.session_key(p.key, p.agentId)
        unsupported = sorted(p.model_extra or {})
        if unsupported:
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                f"invalid params: sessions.patch cannot set {', '.join(unsupported)} on agenthub "
                "(it runs the configured agent; only labels, pins and archiving are kept)",
                details={"reason": "UNSUPPORTED_FIELD", "fields": unsupported},
            )
        record = await require(key, p.expectedSessionId)
        meta = dict((await store.get_session_meta([key])).get(key, {}))
        for name in _PATCHABLE:
            if name in p.model_fields_set:
                value = getattr(p, name)
                if value is None:
                    meta.pop(name, None)
                else:
                    meta[name] = value
        aborted: list[str] = []
        if p.archived is True and "archivedAt" not in meta:
            aborted = await runs.abort(key, reason="session archived")
            meta["archivedAt"] = now_ms()
        elif p.archived is False:
            meta.pop("archivedAt", None)
        await store.put_session_meta(key, meta, now_ms())
        row = (await rows_for([record]))[0]
        subs.sessions_changed("patch", key, agentId=row["agentId"], session=row)
        return {"ok": True, "key": key, "entry": row, "abortedRunIds": aborted}

    async def sessions_reset(call: Call, p: SessionKeyParams) -> Any:
        key = ctx.session_key(p.key, p.agentId)
        await require(key, p.expectedSessionId)
        aborted = await runs.abort(key, reason="session reset")
        await store.reset_session(key, now_ms())
        row = await row_of(key)
        subs.sessions_changed("reset", key, agentId=parse_session_key(key).agent_id or DEFAULT_AGENT_ID)
        return {"ok": True, "key": key, "entry": row, "abortedRunIds": aborted}

    async def sessions_delete(call: Call, p: SessionsDeleteParams) -> Any:
        key = ctx.session_key(p.key, p.agentId)
        if not p.archivedOnly and not call.conn.has_scope(ADMIN):
            raise RpcError(
                ErrorCode.FORBIDDEN,
                f"missing scope: {ADMIN}",
                details={"code": "MISSING_SCOPE", "missingScope": ADMIN, "requiredScopes": [ADMIN]},
            )
        record = await require(key, p.expectedSessionId)
        if p.archivedOnly:
            meta = (await store.get_session_meta([key])).get(key, {})
            if not isinstance(meta.get("archivedAt"), int):
                raise RpcError(
                    ErrorCode.INVALID_REQUEST,
                    f"session {key} is not archived",
                    details={"reason": "SESSION_NOT_ARCHIVED", "key": key},
                )
        aborted = await runs.abort(key, reason="session deleted")
        deleted = await store.delete_session(key)
        subs.sessions_changed(
            "delete",
            key,
            agentId=parse_session_key(key).agent_id or DEFAULT_AGENT_ID,
            sessionId=session_id_of(record),
        )
        return {"ok": True, "key": key, "deleted": deleted, "abortedRunIds": aborted}

    async def sessions_compact(call: Call, p: SessionsCompactParams) -> Any:
        key = ctx.session_key(p.key, p.agentId)
        record = await require(key)
        if p.maxLines is None:
            return {
                "ok": True,
                "key": key,
                "compacted": False,
                "reason": "agenthub keeps transcripts verbatim and has no summarizer; pass maxLines to keep "
                "only the newest messages",
            }
        if runs.active(key):
            raise RpcError(
                ErrorCode.UNAVAILABLE,
                f"session {key} has a run in progress; compact it when the run ends",
                details={"reason": "SESSION_BUSY"},
                retryable=True,
            )
        removed = await store.trim_session(key, p.maxLines)
        if not removed:
            return {"ok": True, "key": key, "compacted": False, "reason": f"{record.message_count} message(s) kept"}
        subs.sessions_changed("compact", key, agentId=parse_session_key(key).agent_id or DEFAULT_AGENT_ID)
        return {"ok": True, "key": key, "compacted": True, "kept": min(p.maxLines, record.message_count)}

    d = ctx.node.dispatcher
    d.register("sessions.list", sessions_list)
    d.register("sessions.subscribe", sessions_subscribe)
    d.register("sessions.messages.subscribe", messages_subscribe)
    d.register("sessions.messages.unsubscribe", messages_unsubscribe)
    d.register("sessions.preview", sessions_preview)
    d.register("sessions.describe", sessions_describe)
    d.register("sessions.resolve", sessions_resolve)
    d.register("sessions.patch", sessions_patch)
    d.register("sessions.reset", sessions_reset)
    d.register("sessions.delete", sessions_delete)
    d.register("sessions.compact", sessions_compact)
