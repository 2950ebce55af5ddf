"""The Python SDK: ``async with GatewayClient(url, token=...) as gw: await gw.call("health")``."""

from .connection import RECONNECTED, GatewayClient
from .errors import (
    AgentTimeoutError,
    AuthError,
    AuthTokenMismatchError,
    AuthTokenMissingError,
    ConnectionLostError,
    DeviceAuthError,
    ForbiddenError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    NotPairedError,
    ReplayGapError,
    RequestTimeoutError,
    UnavailableError,
    UnknownMethodError,
)
from .identity import DeviceIdentity
from .types import AgentEventPayload, ChatEventPayload, RunResult

__all__ = [
    "RECONNECTED",
    "AgentEventPayload",
    "AgentTimeoutError",
    "AuthError",
    "AuthTokenMismatchError",
    "AuthTokenMissingError",
    "ChatEventPayload",
    "ConnectionLostError",
    "DeviceAuthError",
    "DeviceIdentity",
    "ForbiddenError",
    "GatewayClient",
    "GatewayError",
    "InvalidRequestError",
    "NotFoundError",
    "NotPairedError",
    "ReplayGapError",
    "RequestTimeoutError",
    "RunResult",
    "UnavailableError",
    "UnknownMethodError",
]
