"""The MyAgent dialect (seed 003): ``event``-style JSON messages over a plain WebSocket.

Sans-I/O: ``decode`` turns one client frame into a command dataclass (or raises
``MyAgentInputError`` carrying the ``system.error`` text), ``translate`` maps a
core run event to MyAgent events, and ``sign_state``/``verify_state`` handle
the HMAC-SHA256 session snapshots. Sockets, sessions and replay are in
``web/myagent.py``.

Downstream messages have the shape::

    {"event": "agent.final_answer", "event_id": "s_1a2b.AbCdEfGh.7", "seq": 7,
     "session_id": "s_1a2b", "step_id": null, "timestamp": "...", "content": ..., "metadata": {...}}

``seq`` is the bus seq of the session's stream ``myagent:<session_id>`` and
``event_id`` is ``<session>.<epoch>.<seq>``; messages outside any session
(``system.connected``, errors about a frame) carry ``seq`` 0 and a ``conn.`` id.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..protocol import _json

__all__ = [
    "Ack",
    "CreateSession",
    "MyAgentInputError",
    "Reconnect",
    "ReconnectWithState",
    "RequestState",
    "SolveTasks",
    "StateError",
    "UserMessage",
    "UserResponse",
    "decode",
    "message",
    "parse_event_id",
    "session_key",
    "session_stream",
    "sign_state",
    "translate",
    "verify_state",
]

STATE_VERSION = 1


class MyAgentInputError(ValueError):
    """A bad client frame: ``str(exc)`` is the ``system.error`` content."""

    def __init__(self, text: str, session_id: str | None = None) -> None:
        super().__init__(text)
        self.session_id = session_id


class StateError(ValueError):
    """An exported state that is tampered with, expired or malformed."""


@dataclass(frozen=True, slots=True)
class CreateSession:
    pass


@dataclass(frozen=True, slots=True)
class UserMessage:
    session_id: str
    content: str


@dataclass(frozen=True, slots=True)
class Ack:
    session_id: str | None
    last_seq: int | None
    last_event_id: str | None


@dataclass(frozen=True, slots=True)
class Reconnect:
    session_id: str
    last_seq: int | None
    last_event_id: str | None


@dataclass(frozen=True, slots=True)
class RequestState:
    session_id: str


@dataclass(frozen=True, slots=True)
class ReconnectWithState:
    signed_state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SolveTasks:
    session_id: str
    tasks: list[dict[str, Any]]
    question: str | None = None
    plan_summary: str | None = None


@dataclass(frozen=True, slots=True)
class UserResponse:
    session_id: str | None
    step_id: str
    confirmed: bool
    extra: dict[str, Any] = field(default_factory=dict)


Command = CreateSession | UserMessage | Ack | Reconnect | RequestState | ReconnectWithState | SolveTasks | UserResponse


def session_key(session_id: str) -> str:
    """The core session behind a MyAgent session."""
    return f"myagent:{session_id}"


def session_stream(session_id: str) -> str:
    """The bus stream whose seq is the MyAgent ``seq`` of that session."""
    return f"myagent:{session_id}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def message(
    event: str,
    session_id: str | None,
    content: Any,
    metadata: dict[str, Any] | None = None,
    step_id: str | None = None,
) -> dict[str, Any]:
    """A downstream message without ``seq``/``event_id`` (the publisher adds them)."""
    return {
        "event": event,
        "session_id": session_id,
        "step_id": step_id,
        "timestamp": now_iso(),
        "content": content,
        "metadata": metadata or {},
    }


def parse_event_id(event_id: str) -> tuple[str, str, int] | None:
    """``(session_id, epoch, seq)`` of a session event id, None for anything else."""
    parts = event_id.rsplit(".", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])


def _str(frame: dict[str, Any], key: str, sid: str | None) -> str:
    value = frame.get(key)
    if not isinstance(value, str) or not value.strip():
        raise MyAgentInputError(f"'{key}' is required and must be a non-empty string", sid)
    return value


def _position(obj: dict[str, Any], sid: str | None) -> tuple[int | None, str | None]:
    seq = obj.get("last_seq")
    eid = obj.get("last_event_id")
    if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
        raise MyAgentInputError("'last_seq' must be a non-negative integer", sid)
    if eid is not None and not isinstance(eid, str):
        raise MyAgentInputError("'last_event_id' must be a string", sid)
    return seq, eid


def decode(data: str | bytes) -> Command:
    """Parse one client frame.

    Raises:
        MyAgentInputError: not JSON, not an object, unknown ``event`` or missing fields.
    """
    try:
        frame = _json.loads(data)
    except _json.JSONDecodeError:
        raise MyAgentInputError("invalid JSON") from None
    if not isinstance(frame, dict):
        raise MyAgentInputError("a message must be a JSON object")
    event = frame.get("event")
    raw_sid = frame.get("session_id")
    sid = raw_sid if isinstance(raw_sid, str) and raw_sid else None
    content = frame.get("content")
    body = content if isinstance(content, dict) else {}
    if event == "user.create_session":
        return CreateSession()
    if event == "user.message":
        return UserMessage(_str(frame, "session_id", sid), _str(frame, "content", sid))
    if event == "user.ack":
        seq, eid = _position(body, sid)
        if seq is None and eid is None:
            raise MyAgentInputError("user.ack needs content.last_event_id or content.last_seq", sid)
        return Ack(sid, seq, eid)
    if event == "user.reconnect":
        seq, eid = _position({**frame, **body}, sid)
        return Reconnect(_str(frame, "session_id", sid), seq, eid)
    if event == "user.request_state":
        return RequestState(_str(frame, "session_id", sid))
    if event == "user.reconnect_with_state":
        state = frame.get("signed_state", body.get("signed_state"))
        if not isinstance(state, dict):
            raise MyAgentInputError("'signed_state' (an object from agent.state_exported) is required", sid)
        return ReconnectWithState(state)
    if event == "user.solve_tasks":
        tasks = body.get("tasks")
        if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
            raise MyAgentInputError("content.tasks must be a non-empty list of task objects", sid)
        question, summary = body.get("question"), body.get("plan_summary")
        return SolveTasks(
            _str(frame, "session_id", sid),
            tasks,
            question if isinstance(question, str) else None,
            summary if isinstance(summary, str) else None,
        )
    if event == "user.response":
        step_id = frame.get("step_id", body.get("step_id"))
        confirmed = body.get("confirmed", frame.get("confirmed"))
        if not isinstance(step_id, str) or not step_id:
            raise MyAgentInputError("user.response needs 'step_id'", sid)
        if not isinstance(confirmed, bool):
            raise MyAgentInputError("user.response needs content.confirmed (true or false)", sid)
        return UserResponse(sid, step_id, confirmed, body)
    if not isinstance(event, str):
        raise MyAgentInputError("'event' is required", sid)
    raise MyAgentInputError(f"unknown event: {event}", sid)


def _text(result: Any) -> str:
    return result if isinstance(result, str) else _json.dumps_str(result)


def translate(event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The MyAgent message (without session numbering) for one core run event, if any."""
    data = payload.get("data") or {}
    run_id = payload.get("runId")
    meta: dict[str, Any] = {"run_id": run_id}
    if event == "agent":
        stream = payload.get("stream")
        if stream == "lifecycle" and data.get("phase") == "start":
            return message("agent.thinking", None, "Processing your request...", meta, run_id)
        if stream == "thinking":
            return message("agent.thinking", None, data.get("delta", ""), meta, run_id)
        if stream == "tool" and data.get("phase") == "start":
            meta |= {
                "tool_name": data.get("name"),
                "tool_args": data.get("args"),
                "tool_call_id": data.get("toolCallId"),
            }
            return message("agent.tool_call", None, f"Calling tool {data.get('name')}", meta, run_id)
        if stream == "tool" and data.get("phase") == "result":
            meta |= {
                "tool_name": data.get("name"),
                "tool_call_id": data.get("toolCallId"),
                "is_error": bool(data.get("isError")),
            }
            return message("agent.tool_result", None, _text(data.get("result")), meta, run_id)
        return None
    if event == "chat":
        state = payload.get("state")
        msg = payload.get("message") or {}
        text = "".join(p.get("text", "") for p in msg.get("content") or [] if isinstance(p, dict))
        if state == "delta":
            return message("agent.partial_answer", None, payload.get("deltaText", ""), meta, run_id)
        if state == "final":
            return message("agent.final_answer", None, text, meta, run_id)
        if state == "aborted":
            return message("agent.interrupted", None, "The run was interrupted.", meta | {"partial": text}, run_id)
        if state == "error":
            return message("agent.error", None, str(payload.get("errorMessage") or "run failed"), meta, run_id)
    return None


def _signature(state: dict[str, Any], key: bytes) -> str:
    canonical = _json.dumps_pretty(state).encode()  # key-sorted, so byte-stable
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def sign_state(state: dict[str, Any], key: bytes) -> dict[str, Any]:
    """Wrap a snapshot with its HMAC-SHA256 signature."""
    return {"state": state, "signature": _signature(state, key), "algorithm": "HMAC-SHA256"}


def verify_state(signed: dict[str, Any], key: bytes, now_ms: int) -> dict[str, Any]:
    """The snapshot inside ``signed`` if its signature is valid and it has not expired.

    Raises:
        StateError: malformed, tampered with, or past ``expires_ms``.
    """
    state, signature = signed.get("state"), signed.get("signature")
    if not isinstance(state, dict) or not isinstance(signature, str):
        raise StateError("signed_state must be {state, signature}")
    if not hmac.compare_digest(_signature(state, key), signature):
        raise StateError("state signature is invalid (tampered with, or signed with another key)")
    if state.get("version") != STATE_VERSION:
        raise StateError("unsupported state version")
    expires = state.get("expires_ms")
    if not isinstance(expires, int) or expires < now_ms:
        raise StateError("state has expired")
    messages = state.get("messages")
    if not isinstance(messages, list) or not isinstance(state.get("step"), int):
        raise StateError("state is missing messages or step")
    return state
