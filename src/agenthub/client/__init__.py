"""The Python SDK: ``async with GatewayClient(url, token=...) as gw: await gw.call("health")``."""

from .connection import GatewayClient
from .errors import (
    AgentTimeoutError,
    ForbiddenError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    NotPairedError,
    UnavailableError,
)
from .identity import DeviceIdentity

__all__ = [
    "AgentTimeoutError",
    "DeviceIdentity",
    "ForbiddenError",
    "GatewayClient",
    "GatewayError",
    "InvalidRequestError",
    "NotFoundError",
    "NotPairedError",
    "UnavailableError",
]
