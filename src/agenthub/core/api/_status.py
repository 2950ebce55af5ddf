"""The part of ``status`` OpenClaw's CLI reads (``openclaw status``, ``status --json``, ``status --all``).

Only what agenthub knows is filled in: its version, its sessions (count and the
most recent, without token counts it does not track), and empty channel, task
and queue summaries (agenthub runs no background tasks and queues no system
events). No heartbeat runs, so the agent's heartbeat is reported disabled.
"""

from __future__ import annotations

from typing import Any

from ... import __version__
from ..runs import now_ms
from ..sessions import DEFAULT_AGENT_ID, parse_session_key
from ._context import ApiContext
from .sessions import session_id_of

__all__ = ["RECENT_SESSIONS", "openclaw_status"]

RECENT_SESSIONS = 10  # sessions listed under sessions.recent, as OpenClaw lists them
_TASK_STATUSES = ("queued", "running", "succeeded", "failed", "timed_out", "cancelled", "lost")
_TASK_RUNTIMES = ("subagent", "acp", "cli", "cron")
_AUDIT_CODES = (
    "stale_queued",
    "stale_running",
    "lost",
    "delivery_failed",
    "missing_cleanup",
    "inconsistent_timestamps",
)


async def openclaw_status(ctx: ApiContext) -> dict[str, Any]:
    store = ctx.store
    now = now_ms()
    records = await store.list_sessions(RECENT_SESSIONS)
    count = await store.count_sessions()
    provider, model = ctx.model_ref()
    recent: list[dict[str, Any]] = [
        {
            "agentId": parse_session_key(r.key).agent_id or DEFAULT_AGENT_ID,
            "key": r.key,
            "kind": "direct",
            "sessionId": session_id_of(r),
            "updatedAt": r.updated_ms,
            "age": max(0, now - r.updated_ms),
            "model": f"{provider}/{model}",
            "totalTokens": None,
            "totalTokensFresh": False,
            "remainingTokens": None,
            "percentUsed": None,
            "contextTokens": None,
            "flags": [],
        }
        for r in records
    ]
    return {
        "runtimeVersion": __version__,
        "heartbeat": {
            "defaultAgentId": DEFAULT_AGENT_ID,
            "agents": [
                {
                    "agentId": DEFAULT_AGENT_ID,
                    "enabled": False,
                    "every": "disabled",
                    "everyMs": None,
                    "waitingForRoute": False,
                }
            ],
        },
        "channelSummary": [],
        "queuedSystemEvents": [],
        "tasks": {
            "total": 0,
            "active": 0,
            "terminal": 0,
            "failures": 0,
            "byStatus": dict.fromkeys(_TASK_STATUSES, 0),
            "byRuntime": dict.fromkeys(_TASK_RUNTIMES, 0),
        },
        "taskAudit": {"total": 0, "warnings": 0, "errors": 0, "byCode": dict.fromkeys(_AUDIT_CODES, 0)},
        "sessions": {
            "paths": [],
            "count": count,
            "defaults": {"model": f"{provider}/{model}", "contextTokens": None},
            "recent": recent,
            "byAgent": [{"agentId": DEFAULT_AGENT_ID, "path": None, "count": count, "recent": recent}],
        },
    }
