"""Core events as AgentBox sees them: task events from owned runs, system events, encoded once.

A task IS a core run (``task_id`` = run id); a follow-up turn is the run
``<task_id>.<n>`` in the same core session, so its topic is derived from its
id. Runs without an owner (operator runs) are never shown to AgentBox users.
Each run event is offered on two channels: ``task`` (topic: the task id) and
``session`` (topic: the AgentBox session id of the run's core session
``agentbox:<user_id>:<session_id>``). System events travel on the bus as
``agentbox.system`` publications (see ``Tasks.emit``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...core.bus import Publication
from .frames import encode

__all__ = [
    "STATS_TOPIC",
    "SYSTEM_EVENT",
    "SYSTEM_TOPICS",
    "TASK_STATUS",
    "Prepared",
    "prepare",
    "session_key",
    "session_of",
    "task_topic",
]

SYSTEM_EVENT = "agentbox.system"  # bus event name of system events (native clients ignore it)
STATS_TOPIC = "stats"
SYSTEM_TOPICS = {
    "tasks": "task.created",
    "agents": "agent.created",
    "sessions": "session.created",
    "batches": "batch.created",
    "alerts": "alert",
    STATS_TOPIC: "stats",  # not published on the bus: each socket gets its own snapshot (see stats.py)
}
# Core run status -> AgentBox task status.
TASK_STATUS = {
    "queued": "queued",
    "running": "running",
    "ok": "completed",
    "error": "failed",
    "timeout": "failed",
    "aborted": "cancelled",
}


def session_key(user_id: str, session_id: str) -> str:
    """The core session of one user's AgentBox session: one user cannot even name another's."""
    return f"agentbox:{user_id}:{session_id}"


def session_of(key: object, owner: str) -> str | None:
    """The AgentBox session id of a core session key, when that session is ``owner``'s."""
    prefix = f"agentbox:{owner}:"
    return key[len(prefix) :] if isinstance(key, str) and key.startswith(prefix) else None


def owner_from_session_key(key: object) -> str | None:
    """The user of an AgentBox session key (``agentbox:<user>:<session>``), else None."""
    if not isinstance(key, str) or not key.startswith("agentbox:"):
        return None
    user, sep, _ = key[len("agentbox:") :].partition(":")
    return user if sep and user else None


def task_topic(run_id: str) -> str:
    """Follow-up turns are ``<task_id>.<n>``: their events belong to the task's topic."""
    return run_id.partition(".")[0]


def _translate_run(pub: Publication) -> tuple[str, dict[str, Any]] | None:
    p = pub.payload
    run_id = p.get("runId", "")
    base = {"task_id": task_topic(run_id), "turn_id": run_id}
    if pub.event == "agent":
        stream, data = p.get("stream"), p.get("data") or {}
        if stream == "lifecycle" and data.get("phase") == "start":
            return "task.started", base
        if stream == "assistant":
            return "agent.message", {**base, "content": data.get("delta", ""), "text": data.get("text", "")}
        if stream == "thinking":
            return "agent.thinking", {**base, "content": data.get("delta", ""), "text": data.get("text", "")}
        if stream == "tool":
            out = {**base, "phase": data.get("phase"), "name": data.get("name"), "tool_call_id": data.get("toolCallId")}
            if "args" in data:
                out["args"] = data["args"]
            if "result" in data:
                out["result"] = data["result"]
                out["is_error"] = bool(data.get("isError"))
            return "agent.tool_call", out
        return None
    state = p.get("state")
    if state == "final":
        return "task.completed", {**base, "result": _message_text(p.get("message"))}
    if state == "aborted":
        return "task.cancelled", {**base, "partial": _message_text(p.get("message"))}
    if state == "error":
        return "task.failed", {**base, "error": p.get("errorMessage") or "task failed"}
    return None


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    return "".join(c.get("text", "") for c in message.get("content") or () if isinstance(c, dict))


@dataclass(slots=True)
class Prepared:
    """One publication as AgentBox sees it; its frame is encoded at most once per channel."""

    owner: str | None  # None: every user (alerts)
    event_type: str
    data: dict[str, Any]
    topics: dict[str, str]  # channel -> topic
    _frames: dict[str, bytes] = field(default_factory=dict)

    def frame(self, channel: str) -> bytes:
        data = self._frames.get(channel)
        if data is None:
            payload = {"channel": channel, "topic": self.topics[channel], "event_type": self.event_type}
            data = self._frames[channel] = encode("event", {**payload, "data": self.data})
        return data


def prepare(pub: Publication, owner_of: Callable[[str], str | None]) -> Prepared | None:
    """The AgentBox event of a publication, or None when AgentBox users never see it."""
    p = pub.payload
    if pub.event == SYSTEM_EVENT:
        return Prepared(p["owner"], p["event_type"], p["data"], {"system": p["topic"]})
    if pub.event not in ("agent", "chat") or not pub.stream.startswith("run:"):
        return None
    run_id = p.get("runId", "")
    owner = owner_of(run_id)
    if owner is None:  # a run of another gateway process (live, or its history read back): the key names the user
        owner = owner_from_session_key(p.get("sessionKey"))
    translated = _translate_run(pub) if owner is not None else None
    if owner is None or translated is None:
        return None
    event_type, data = translated
    topics = {"task": task_topic(run_id)}
    session_id = session_of(p.get("sessionKey"), owner)
    if session_id is not None:
        topics["session"] = session_id
    return Prepared(owner, event_type, data, topics)
