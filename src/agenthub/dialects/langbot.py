"""The LangBot dialect (seed 004): pipeline WebSocket chat with streamed reply chunks.

Sans-I/O: ``decode`` turns one client frame into a command (or raises
``LangBotInputError`` with the text of the error frame to send), and the
``encode_*`` functions build server frames. Core ``agent``/``chat`` events are
translated by ``translate``; the socket edge lives in ``web/langbot.py``.

Wire shapes::

    client  {"type": "message", "message": [{"type": "Plain", "text": "hi"}, ...]}
            {"type": "ping"}
    server  {"type": "connected", "data": {"connection_id", "pipeline_uuid", "session_type"}}
            {"type": "response", "data": {"id", "role": "assistant", "content",
                                          "message_chain", "is_final", "timestamp"}}
            {"type": "pong"} | {"type": "broadcast", "data": ...}
            {"type": "error", "data": {"message": "...", "code"?: "...", "retry_after_ms"?: n}}

``code`` and ``retry_after_ms`` appear only on refusals at the door
(``unauthorized``, ``rate_limited``, ``too_many_connections``), sent just
before the socket is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..core.store import MessageRecord
from ..protocol import _json

__all__ = [
    "SESSION_TYPES",
    "LangBotInputError",
    "Ping",
    "UserMessage",
    "decode",
    "encode_broadcast",
    "encode_connected",
    "encode_error",
    "encode_response",
    "history_entry",
    "iso",
    "session_key",
    "translate",
]

SESSION_TYPES = ("person", "group")
PONG = b'{"type":"pong"}'


class LangBotInputError(ValueError):
    """A bad client frame; ``str(exc)`` is the message for the error frame."""


@dataclass(frozen=True, slots=True)
class UserMessage:
    chain: list[dict[str, Any]]
    text: str


@dataclass(frozen=True, slots=True)
class Ping:
    pass


def session_key(pipeline_uuid: str, session_type: str) -> str:
    """The core session of one pipeline and session type (shared by its connections)."""
    return f"langbot:{pipeline_uuid}:{session_type}"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def decode(data: str | bytes) -> UserMessage | Ping:
    """Parse one client frame.

    Raises:
        LangBotInputError: not JSON, not an object, unknown ``type`` or a bad message chain.
    """
    try:
        frame = _json.loads(data)
    except _json.JSONDecodeError:
        raise LangBotInputError("invalid JSON") from None
    if not isinstance(frame, dict):
        raise LangBotInputError("a frame must be a JSON object")
    kind = frame.get("type")
    if kind == "ping":
        return Ping()
    if kind != "message":
        raise LangBotInputError(f"unknown message type: {kind!r}")
    chain = frame.get("message")
    if not isinstance(chain, list) or not chain:
        raise LangBotInputError("'message' must be a non-empty message chain (list of components)")
    parts: list[str] = []
    for component in chain:
        if not isinstance(component, dict) or not isinstance(component.get("type"), str):
            raise LangBotInputError("each message chain component needs a string 'type'")
        if component["type"] == "Plain":
            text = component.get("text")
            if not isinstance(text, str):
                raise LangBotInputError("a Plain component needs a string 'text'")
            parts.append(text)
    text = "".join(parts).strip()
    if not text:
        raise LangBotInputError("the message chain has no Plain text")
    return UserMessage(chain, text)


def _frame(kind: str, data: Any) -> bytes:
    return _json.dumps({"type": kind, "data": data})


def encode_error(message: str, code: str | None = None, retry_after_ms: int | None = None) -> bytes:
    data: dict[str, Any] = {"message": message}
    if code is not None:
        data["code"] = code
    if retry_after_ms is not None:
        data["retry_after_ms"] = retry_after_ms
    return _frame("error", data)


def encode_connected(connection_id: str, pipeline_uuid: str, session_type: str) -> bytes:
    return _frame(
        "connected",
        {"connection_id": connection_id, "pipeline_uuid": pipeline_uuid, "session_type": session_type},
    )


def encode_broadcast(message: Any, ts_ms: int) -> bytes:
    return _frame("broadcast", {"message": message, "timestamp": iso(ts_ms)})


def encode_response(msg_id: int, content: str, is_final: bool, ts_ms: int) -> bytes:
    """One reply chunk; ``content`` is the whole answer so far."""
    return _frame(
        "response",
        {
            "id": msg_id,
            "role": "assistant",
            "content": content,
            "message_chain": [{"type": "Plain", "text": content}],
            "is_final": is_final,
            "timestamp": iso(ts_ms),
        },
    )


def translate(event: str, payload: dict[str, Any], msg_id: int) -> bytes | None:
    """The LangBot frame for one core run event, or None when LangBot has no equivalent.

    Every assistant ``agent`` event becomes a chunk (its text is cumulative); the
    ``chat`` final becomes the ``is_final`` chunk, and errors an error frame.
    """
    if event == "agent":
        data = payload.get("data") or {}
        if payload.get("stream") == "assistant":
            return encode_response(msg_id, str(data.get("text", "")), False, int(payload.get("ts", 0)))
        return None
    if event == "chat":
        state = payload.get("state")
        message = payload.get("message") or {}
        ts = int(message.get("timestamp", 0))
        if state == "final" or state == "aborted":
            parts = message.get("content") or []
            text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
            return encode_response(msg_id, text, True, ts)
        if state == "error":
            return encode_error(str(payload.get("errorMessage") or "run failed"))
    return None


def history_entry(msg: MessageRecord) -> dict[str, Any]:
    """A transcript entry as LangBot's history endpoint shows it (chain kept as sent)."""
    chain = msg.meta.get("message_chain") if isinstance(msg.meta, dict) else None
    return {
        "id": msg.id,
        "role": msg.role,
        "content": msg.text,
        "message_chain": chain if isinstance(chain, list) else [{"type": "Plain", "text": msg.text}],
        "timestamp": iso(msg.ts_ms),
    }
