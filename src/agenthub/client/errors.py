"""Typed client exceptions, one per wire error code.

::

    GatewayError                      (agenthub.protocol.errors.AgentHubError)
    ├── InvalidRequestError           INVALID_REQUEST
    │   ├── AuthError                 the connect was refused for its credentials
    │   │   ├── AuthTokenMissingError     details.code AUTH_TOKEN_MISSING
    │   │   ├── AuthTokenMismatchError    details.code AUTH_TOKEN_MISMATCH
    │   │   └── DeviceAuthError           details.code DEVICE_AUTH_*
    │   ├── UnknownMethodError        the gateway has no such method
    │   └── NotFoundError             details.reason *_NOT_FOUND (a run, session, device, ...)
    │       └── ReplayGapError        details.code REPLAY_GAP: events left the gateway's retention
    ├── NotPairedError                NOT_PAIRED
    ├── ForbiddenError                FORBIDDEN
    ├── UnavailableError              UNAVAILABLE (retryable: reconnect or retry)
    │   ├── ConnectionLostError       the socket closed while a request was in flight
    │   └── RequestTimeoutError       no answer within the request timeout (also a TimeoutError)
    └── AgentTimeoutError             AGENT_TIMEOUT

As in OpenClaw, a missing thing is not an error code of its own: it is
INVALID_REQUEST whose ``details.reason`` names it (``RUN_NOT_FOUND``, ...).

``error_from_shape(error)`` picks the most specific class for a wire error.
"""

from __future__ import annotations

from typing import Any

from ..protocol.errors import AgentHubError, ErrorCode

__all__ = [
    "AgentTimeoutError",
    "AuthError",
    "AuthTokenMismatchError",
    "AuthTokenMissingError",
    "ConnectionLostError",
    "DeviceAuthError",
    "ForbiddenError",
    "GatewayError",
    "InvalidRequestError",
    "NotFoundError",
    "NotPairedError",
    "ReplayGapError",
    "RequestTimeoutError",
    "UnavailableError",
    "UnknownMethodError",
    "error_from_shape",
]


class GatewayError(AgentHubError):
    code: ErrorCode | str = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        retryable: bool | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms

    @property
    def detail_code(self) -> str | None:
        """``details.code`` (e.g. ``AUTH_TOKEN_MISMATCH``, ``REPLAY_GAP``) when the gateway sent one."""
        if isinstance(self.details, dict):
            code = self.details.get("code")
            return code if isinstance(code, str) else None
        return None


class InvalidRequestError(GatewayError):
    code = ErrorCode.INVALID_REQUEST


class AuthError(InvalidRequestError):
    """The gateway refused the connect's credentials; reconnecting unchanged fails again."""


class AuthTokenMissingError(AuthError):
    pass


class AuthTokenMismatchError(AuthError):
    pass


class DeviceAuthError(AuthError):
    pass


class UnknownMethodError(InvalidRequestError):
    """The gateway does not have this method (an older or smaller gateway)."""


class NotPairedError(GatewayError):
    code = ErrorCode.NOT_PAIRED


class ForbiddenError(GatewayError):
    code = ErrorCode.FORBIDDEN


class UnavailableError(GatewayError):
    code = ErrorCode.UNAVAILABLE


class ConnectionLostError(UnavailableError):
    """The connection closed before the answer came; the client reconnects on its own."""


class RequestTimeoutError(UnavailableError, TimeoutError):
    """No answer within the request timeout."""


class AgentTimeoutError(GatewayError):
    code = ErrorCode.AGENT_TIMEOUT


class NotFoundError(InvalidRequestError):
    """The request named a run, session, device, node or approval the gateway does not have."""


class ReplayGapError(NotFoundError):
    """``agent.replay`` cannot fill the gap: reload state (e.g. ``chat.history``) instead."""


_BY_CODE: dict[str, type[GatewayError]] = {
    cls.code: cls for cls in (InvalidRequestError, NotPairedError, ForbiddenError, UnavailableError, AgentTimeoutError)
}

_BY_DETAIL: dict[str, type[GatewayError]] = {
    "AUTH_TOKEN_MISSING": AuthTokenMissingError,
    "AUTH_TOKEN_MISMATCH": AuthTokenMismatchError,
    "REPLAY_GAP": ReplayGapError,
}


def _reason(details: Any) -> str:
    reason = details.get("reason") if isinstance(details, dict) else None
    return reason if isinstance(reason, str) else ""


def error_from_shape(shape: dict[str, Any]) -> GatewayError:
    """The exception for a wire ``error`` object (ErrorShape)."""
    code = str(shape.get("code", "ERROR"))
    message = str(shape.get("message", code))
    details = shape.get("details")
    detail = details.get("code") if isinstance(details, dict) else None
    cls = _BY_CODE.get(code, GatewayError)
    if isinstance(detail, str) and detail in _BY_DETAIL and issubclass(_BY_DETAIL[detail], cls):
        cls = _BY_DETAIL[detail]
    elif isinstance(detail, str) and detail.startswith("DEVICE_AUTH") and cls is InvalidRequestError:
        cls = DeviceAuthError
    elif cls is InvalidRequestError and message.startswith("unknown method"):
        cls = UnknownMethodError
    elif cls is InvalidRequestError and _reason(details).endswith("_NOT_FOUND"):
        cls = NotFoundError
    return cls(
        message,
        code=code,
        details=details,
        retryable=shape.get("retryable"),
        retry_after_ms=shape.get("retryAfterMs"),
    )
