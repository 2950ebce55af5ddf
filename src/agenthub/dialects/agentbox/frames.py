"""AgentBox wire shapes: the ``{id, type, payload, timestamp}`` envelope, payload models, errors.

A reply carries the ``id`` of the request it answers; a failure is ``{id,
type: "error", payload: {message, code}}``. The payload models here validate
both the socket's requests and the REST bodies (``web/agentbox.py``), so a task
created over either path passes the same checks.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...core.runs import now_ms
from ...protocol import _json
from ...protocol.frames import describe_validation_error

__all__ = [
    "AgentBoxError",
    "AuthPayload",
    "Code",
    "CreateAgent",
    "CreateAlert",
    "CreateBatch",
    "CreateSession",
    "CreateTask",
    "Envelope",
    "SubscribePayload",
    "TaskActionPayload",
    "decode",
    "encode",
    "parse",
]

M = TypeVar("M", bound=BaseModel)
# A prompt as both paths take it; the core's limits.max_message_chars applies on top.
Prompt = Annotated[str, Field(min_length=1, max_length=100_000)]
Name = Annotated[str, Field(min_length=1, max_length=256)]


class Code(StrEnum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    UNAUTHORIZED = "unauthorized"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    INTERNAL = "internal"


_HTTP_STATUS = {
    Code.BAD_REQUEST: 400,
    Code.UNKNOWN_TYPE: 400,
    Code.UNAUTHORIZED: 401,
    Code.AUTH_FAILED: 401,
    Code.RATE_LIMITED: 429,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.INTERNAL: 500,
}


class AgentBoxError(Exception):
    """One request failed; rendered as an ``error`` frame (WS) or a JSON error body (REST)."""

    def __init__(
        self, code: Code, message: str, request_id: str | None = None, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after_ms = retry_after_ms

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code.value}
        if self.retry_after_ms is not None:
            body["retry_after_ms"] = self.retry_after_ms
        return body


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Envelope(_Payload):
    id: Annotated[str, Field(max_length=256)] | None = None
    type: Annotated[str, Field(min_length=1, max_length=64)]
    payload: dict[str, Any] = Field(default_factory=dict)
    timestamp: int | float | None = None


class AuthPayload(_Payload):
    token: str
    device_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class SubscribePayload(_Payload):
    """``task`` topics are task ids, ``session`` topics session ids, ``system`` topics names."""

    channel: Literal["task", "session", "system"]
    topics: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=1000)] = []


class TaskActionPayload(_Payload):
    task_id: Annotated[str, Field(min_length=1, max_length=256)]
    action: Literal["cancel", "append_turn"]
    data: str | None = None


class CreateTask(_Payload):
    """``POST /api/v1/tasks`` and the socket's ``create_task``."""

    prompt: Prompt
    agent: str | None = None
    session_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class CreateSession(_Payload):
    title: str | None = None


class CreateAgent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    name: Name


class CreateBatch(_Payload):
    prompts: Annotated[list[Prompt], Field(min_length=1, max_length=100)]
    agent: str | None = None


class CreateAlert(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    message: Annotated[str, Field(min_length=1, max_length=10_000)]
    level: str = "info"


def parse(model: type[M], data: Any, request_id: str | None = None) -> M:
    """Validate a payload; the first bad field becomes a ``bad_request`` message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AgentBoxError(Code.BAD_REQUEST, describe_validation_error(exc, "invalid payload: "), request_id) from None


def decode(data: str | bytes) -> Envelope:
    """Parse one inbound frame. Only ``AgentBoxError`` escapes (with the request id when readable)."""
    try:
        obj = _json.loads(data)
    except _json.JSONDecodeError:
        raise AgentBoxError(Code.BAD_REQUEST, "invalid JSON") from None
    if not isinstance(obj, dict):
        raise AgentBoxError(Code.BAD_REQUEST, "a message must be a JSON object")
    rid = obj.get("id")
    return parse(Envelope, obj, rid if isinstance(rid, str) else None)


def encode(type_: str, payload: Any, request_id: str | None = None) -> bytes:
    msg: dict[str, Any] = {"type": type_, "payload": payload, "timestamp": now_ms()}
    if request_id is not None:
        msg["id"] = request_id
    return _json.dumps(msg)
