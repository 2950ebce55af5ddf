"""Typed client exceptions, one per wire error code."""

from __future__ import annotations

from typing import Any

from ..protocol.errors import AgentHubError, ErrorCode

__all__ = [
    "AgentTimeoutError",
    "ForbiddenError",
    "GatewayError",
    "InvalidRequestError",
    "NotFoundError",
    "NotPairedError",
    "UnavailableError",
    "error_from_shape",
]


class GatewayError(AgentHubError):
    code: ErrorCode | str = "ERROR"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None,
                 retryable: bool | None = None, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.retryable = retryable
        self.retry_after_ms = retry_after_ms


class InvalidRequestError(GatewayError):
    code = ErrorCode.INVALID_REQUEST


class NotPairedError(GatewayError):
    code = ErrorCode.NOT_PAIRED


class ForbiddenError(GatewayError):
    code = ErrorCode.FORBIDDEN


class UnavailableError(GatewayError):
    code = ErrorCode.UNAVAILABLE


class AgentTimeoutError(GatewayError):
    code = ErrorCode.AGENT_TIMEOUT


class NotFoundError(GatewayError):
    code = ErrorCode.NOT_FOUND


_BY_CODE: dict[str, type[GatewayError]] = {
    cls.code: cls
    for cls in (InvalidRequestError, NotPairedError, ForbiddenError, UnavailableError, AgentTimeoutError,
                NotFoundError)
}


def error_from_shape(shape: dict[str, Any]) -> GatewayError:
    code = str(shape.get("code", "ERROR"))
    cls = _BY_CODE.get(code, GatewayError)
    return cls(
        str(shape.get("message", code)),
        code=code,
        details=shape.get("details"),
        retryable=shape.get("retryable"),
        retry_after_ms=shape.get("retryAfterMs"),
    )
