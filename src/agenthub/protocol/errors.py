"""Error codes, close codes and the exception tree.

::

    AgentHubError
    ├── ProtocolError        the peer broke the protocol: close with ``close_code``
    │   ├── FrameError       a frame that is not JSON or not a valid frame
    │   └── HandshakeError   a ``connect`` that cannot be accepted
    └── RpcError             one request failed: answer with an error frame

Close codes, and what a client should do on each (as centrifuge's disconnect.go):

- 1000 NORMAL, 1001 GOING_AWAY, 1012 SERVICE_RESTART: reconnect (after backoff).
- 1011 INTERNAL_ERROR: reconnect with backoff; the detail is never sent.
- 1002 PROTOCOL_ERROR (version mismatch), 1008 POLICY_VIOLATION (auth, pairing,
  wrong first frame, slow consumer), 1009 MESSAGE_TOO_BIG: fix the client or
  its credentials first; reconnecting unchanged fails again. The one exception
  is 1008 "slow consumer", after which a client may reconnect and replay.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

__all__ = [
    "AgentHubError",
    "CloseCode",
    "ErrorCode",
    "FrameError",
    "HandshakeError",
    "ProtocolError",
    "RpcError",
    "not_found",
]


class ErrorCode(StrEnum):
    """OpenClaw's error codes. A missing thing is INVALID_REQUEST with ``details.reason``
    naming what was not found (``not_found()``), as OpenClaw answers it."""

    INVALID_REQUEST = "INVALID_REQUEST"
    NOT_PAIRED = "NOT_PAIRED"
    FORBIDDEN = "FORBIDDEN"
    UNAVAILABLE = "UNAVAILABLE"
    AGENT_TIMEOUT = "AGENT_TIMEOUT"


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012


class AgentHubError(Exception):
    """Root of every error agenthub raises on purpose."""


class ProtocolError(AgentHubError):
    """The peer broke the protocol; the connection closes with ``close_code``."""

    def __init__(self, reason: str, close_code: CloseCode = CloseCode.POLICY_VIOLATION) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code


class FrameError(ProtocolError):
    """Not JSON, or JSON that is not a valid frame. ``request_id`` is kept when readable."""

    def __init__(self, reason: str, request_id: str | None = None) -> None:
        super().__init__(reason, CloseCode.POLICY_VIOLATION)
        self.request_id = request_id


class HandshakeError(ProtocolError):
    """A rejected ``connect``: answered with an error response, then closed."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        close_code: CloseCode = CloseCode.POLICY_VIOLATION,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message, close_code)
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.retry_after_ms = retry_after_ms


class RpcError(AgentHubError):
    """One request failed. Handlers raise it; only ``core.rpc`` renders it as a frame."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms

    @property
    def reason(self) -> str | None:
        """``details.reason`` (e.g. ``APPROVAL_NOT_FOUND``), when the error names one."""
        value = (self.details or {}).get("reason")
        return value if isinstance(value, str) else None

    def to_shape(self) -> dict[str, Any]:
        """The wire ``error`` object (ErrorShape)."""
        shape: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.details is not None:
            shape["details"] = self.details
        if self.retryable is not None:
            shape["retryable"] = self.retryable
        if self.retry_after_ms is not None:
            shape["retryAfterMs"] = self.retry_after_ms
        return shape


def not_found(message: str, reason: str, **details: Any) -> RpcError:
    """A request naming something the gateway does not have: INVALID_REQUEST, ``details.reason``."""
    return RpcError(ErrorCode.INVALID_REQUEST, message, details={"reason": reason, **details})
