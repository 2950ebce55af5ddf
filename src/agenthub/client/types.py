"""Typed views of what the SDK hands back, for ``typing.cast`` or annotations.

The wire names stay camelCase, as in ``agenthub.protocol``; these mirror the
payloads ``core.runs`` publishes and the ``agent``/``agent.wait`` results.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

__all__ = ["AgentEventPayload", "ChatEventPayload", "ChatMessage", "EventFrame", "RunResult", "TextContent"]


class TextContent(TypedDict):
    type: Literal["text"]
    text: str


class ChatMessage(TypedDict):
    role: str
    content: list[TextContent]
    timestamp: NotRequired[int]


class AgentEventPayload(TypedDict):
    runId: str
    seq: int
    stream: Literal["lifecycle", "assistant", "thinking", "tool"]
    ts: int
    data: dict[str, Any]
    sessionKey: str


class ChatEventPayload(TypedDict):
    runId: str
    sessionKey: str
    seq: int
    state: Literal["delta", "final", "aborted", "error"]
    message: NotRequired[ChatMessage]
    deltaText: NotRequired[str]
    errorMessage: NotRequired[str]


class EventFrame(TypedDict):
    type: Literal["event"]
    event: str
    payload: Any
    seq: NotRequired[int]
    replayed: NotRequired[bool]


class RunResult(TypedDict):
    type: Literal["result"]
    runId: str
    status: str
    summary: NotRequired[str]
    error: NotRequired[str]
