"""The three wire frames (req / res / event) as one tagged union, and their codec.

Inbound frames are validated by pydantic straight from the JSON text; outbound
frames are plain dicts encoded by orjson, since the gateway builds them itself.
Only ``FrameError`` escapes ``decode``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from . import _json
from .errors import FrameError

__all__ = [
    "ErrorShape",
    "EventFrame",
    "Frame",
    "RequestFrame",
    "ResponseFrame",
    "StateVersion",
    "decode",
    "describe_validation_error",
    "encode_error",
    "encode_event",
    "encode_response",
    "event_prefix",
    "finish_event",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestFrame(_Strict):
    type: Literal["req"]
    id: Annotated[str, Field(min_length=1, max_length=256)]
    method: Annotated[str, Field(min_length=1, max_length=256)]
    params: Any = None
    traceparent: Annotated[str, Field(max_length=128)] | None = None


class ErrorShape(_Strict):
    code: Annotated[str, Field(min_length=1)]
    message: Annotated[str, Field(min_length=1)]
    details: Any = None
    retryable: bool | None = None
    retryAfterMs: Annotated[int, Field(ge=0)] | None = None


class ResponseFrame(_Strict):
    type: Literal["res"]
    id: Annotated[str, Field(min_length=1)]
    ok: bool
    payload: Any = None
    error: ErrorShape | None = None


class StateVersion(_Strict):
    presence: Annotated[int, Field(ge=0)]
    health: Annotated[int, Field(ge=0)]


class EventFrame(_Strict):
    type: Literal["event"]
    event: Annotated[str, Field(min_length=1)]
    payload: Any = None
    seq: Annotated[int, Field(ge=0)] | None = None
    stateVersion: StateVersion | None = None


Frame = Annotated[RequestFrame | ResponseFrame | EventFrame, Field(discriminator="type")]
_FRAME: TypeAdapter[RequestFrame | ResponseFrame | EventFrame] = TypeAdapter(Frame)


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """Name the first offending field, e.g. ``invalid params: message: Field required``."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(root)"
    if err["type"] == "json_invalid":
        return "invalid JSON"
    return f"{prefix}{loc}: {err['msg']}"


def _request_id_of(data: str | bytes) -> str | None:
    try:
        obj = _json.loads(data)
    except _json.JSONDecodeError:
        return None
    if isinstance(obj, dict) and obj.get("type") == "req":
        rid = obj.get("id")
        if isinstance(rid, str) and 0 < len(rid) <= 256:
            return rid
    return None


def decode(data: str | bytes) -> RequestFrame | ResponseFrame | EventFrame:
    """Parse one text frame.

    Raises:
        FrameError: not JSON, or not a valid frame; ``request_id`` is set when
            the text is a request whose id could still be read.
    """
    try:
        return _FRAME.validate_json(data)
    except ValidationError as exc:
        message = describe_validation_error(exc, "invalid frame: ")
        raise FrameError(message, _request_id_of(data) if message != "invalid JSON" else None) from None
    except (ValueError, RecursionError):  # pragma: no cover - pydantic reports these as json_invalid
        raise FrameError("invalid JSON") from None


def encode_response(request_id: str, payload: Any) -> bytes:
    return _json.dumps({"type": "res", "id": request_id, "ok": True, "payload": payload})


def encode_error(request_id: str, error: dict[str, Any]) -> bytes:
    return _json.dumps({"type": "res", "id": request_id, "ok": False, "error": error})


def event_prefix(event: str, payload: Any, state_version: dict[str, int] | None = None) -> bytes:
    """Encode an event once for every receiver, leaving the per-connection ``seq`` open.

    ``finish_event(prefix, seq)`` closes it; that is a byte concatenation, not a
    JSON encode, so fan-out to N clients costs one encode.
    """
    frame: dict[str, Any] = {"type": "event", "event": event, "payload": payload}
    if state_version is not None:
        frame["stateVersion"] = state_version
    return _json.dumps(frame)[:-1]


def finish_event(prefix: bytes, seq: int) -> bytes:
    return b'%b,"seq":%d}' % (prefix, seq)


def encode_event(event: str, payload: Any, seq: int, state_version: dict[str, int] | None = None) -> bytes:
    return finish_event(event_prefix(event, payload, state_version), seq)
