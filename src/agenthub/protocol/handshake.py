"""The server side of the connect handshake, sans I/O.

The socket glue creates a ``ServerHandshake``, sends ``challenge()``, and feeds
it the first frame with ``receive_connect(text, now_ms)``. It answers with an
``Accepted`` (the validated params and negotiated protocol) or raises
``HandshakeError`` carrying the error to send and the close code. Token and
pairing checks need the gateway's state and live in ``core.auth``.
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass
from enum import Enum

from pydantic import ValidationError

from .device import b64url_decode, device_id_for, signature_payload, verify_signature
from .errors import CloseCode, ErrorCode, FrameError, HandshakeError
from .frames import RequestFrame, decode, describe_validation_error
from .methods import ConnectParams

__all__ = [
    "SUPPORTED_PROTOCOLS",
    "Accepted",
    "HandshakeLimits",
    "HandshakeState",
    "ServerHandshake",
    "auth_failure_details",
]

SUPPORTED_PROTOCOLS = (3, 4)


class HandshakeState(Enum):
    AWAITING_CONNECT = "awaiting_connect"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class HandshakeLimits:
    max_frame_bytes: int = 64 * 1024
    signature_skew_ms: int = 120_000


@dataclass(frozen=True, slots=True)
class Accepted:
    request_id: str
    params: ConnectParams
    protocol: int
    device_id: str | None
    device_public_key: str | None


def _invalid(message: str, request_id: str | None, code: str | None = None, **close: CloseCode) -> HandshakeError:
    details = {"code": code} if code else None
    return HandshakeError(
        ErrorCode.INVALID_REQUEST,
        message,
        details=details,
        request_id=request_id,
        close_code=close.get("close_code", CloseCode.POLICY_VIOLATION),
    )


class ServerHandshake:
    """One connection's handshake state machine; no clock, no socket."""

    def __init__(self, now_ms: int, limits: HandshakeLimits | None = None, nonce: str | None = None) -> None:
        self.limits = limits or HandshakeLimits()
        self.nonce = nonce or secrets.token_urlsafe(24)
        self.issued_at_ms = now_ms
        self.state = HandshakeState.AWAITING_CONNECT

    def challenge(self) -> dict[str, object]:
        """The payload of the ``connect.challenge`` event sent on open."""
        return {"nonce": self.nonce, "ts": self.issued_at_ms}

    def receive_connect(self, data: str | bytes, now_ms: int) -> Accepted:
        """Validate the first client frame.

        Raises:
            HandshakeError: with the error response (if a request id exists)
                and the close code; the state becomes REJECTED.
        """
        if self.state is not HandshakeState.AWAITING_CONNECT:
            raise RuntimeError(f"expected {HandshakeState.AWAITING_CONNECT}, got {self.state}")
        try:
            accepted = self._check(data, now_ms)
        except HandshakeError:
            self.state = HandshakeState.REJECTED
            raise
        self.state = HandshakeState.ACCEPTED
        return accepted

    def _check(self, data: str | bytes, now_ms: int) -> Accepted:
        if len(data) > self.limits.max_frame_bytes:
            raise HandshakeError(
                ErrorCode.INVALID_REQUEST, "frame too large before connect", close_code=CloseCode.MESSAGE_TOO_BIG
            )
        try:
            frame = decode(data)
        except FrameError as exc:
            raise _invalid(f"first frame must be a connect request: {exc.reason}", exc.request_id) from None
        if not isinstance(frame, RequestFrame):
            raise _invalid("first frame must be a connect request", None)
        rid = frame.id
        if frame.method != "connect":
            raise _invalid(f"first request must be connect, got {frame.method}", rid)
        try:
            params = ConnectParams.model_validate(frame.params if frame.params is not None else {})
        except ValidationError as exc:
            raise _invalid(describe_validation_error(exc, "invalid connect params: "), rid) from None
        protocol = self._negotiate(params, rid)
        device_id, public_key = self._check_device(params, now_ms, rid)
        return Accepted(rid, params, protocol, device_id, public_key)

    @staticmethod
    def _negotiate(params: ConnectParams, rid: str) -> int:
        low = max(params.minProtocol, SUPPORTED_PROTOCOLS[0])
        high = min(params.maxProtocol, SUPPORTED_PROTOCOLS[-1])
        if low > high:
            raise _invalid("protocol mismatch", rid, close_code=CloseCode.PROTOCOL_ERROR)
        return high

    def _check_device(self, params: ConnectParams, now_ms: int, rid: str) -> tuple[str | None, str | None]:
        device = params.device
        if device is None:
            return None, None
        try:
            raw = b64url_decode(device.publicKey)
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != 32 or device_id_for(raw) != device.id.lower():
            raise _invalid("device id does not match public key", rid, "DEVICE_AUTH_ID_MISMATCH")
        if not secrets.compare_digest(device.nonce.encode(), self.nonce.encode()):
            raise _invalid("device nonce does not match challenge", rid, "DEVICE_AUTH_NONCE_MISMATCH")
        if abs(now_ms - device.signedAt) > self.limits.signature_skew_ms:
            raise _invalid("device signature is stale", rid, "DEVICE_AUTH_STALE")
        auth = params.auth
        token = (auth.token or auth.deviceToken or "") if auth else ""
        common = {
            "device_id": device.id.lower(),
            "client_id": params.client.id,
            "client_mode": params.client.mode,
            "role": params.role,
            "scopes": list(params.scopes),
            "signed_at_ms": device.signedAt,
            "token": token,
            "nonce": device.nonce,
        }
        payloads = [
            signature_payload(
                version="v3",
                platform=params.client.platform,
                device_family=params.client.deviceFamily,
                **common,  # type: ignore[arg-type]
            ),
            signature_payload(version="v2", **common),  # type: ignore[arg-type]
        ]
        if not verify_signature(raw, device.signature, payloads):
            raise _invalid("device signature invalid", rid, "DEVICE_AUTH_SIGNATURE")
        return device.id.lower(), device.publicKey


# agenthub's auth failure code -> OpenClaw's ``authReason`` and the next step its clients take.
_AUTH_FAILURES: dict[str, tuple[str, str]] = {
    "AUTH_TOKEN_MISSING": ("token_missing", "update_auth_configuration"),
    "AUTH_TOKEN_MISMATCH": ("token_mismatch", "update_auth_credentials"),
    "AUTH_DEVICE_TOKEN_MISMATCH": ("device_token_mismatch", "update_auth_credentials"),
    "AUTH_PASSWORD_MISSING": ("password_missing", "update_auth_configuration"),
    "AUTH_PASSWORD_MISMATCH": ("password_mismatch", "update_auth_credentials"),
    "AUTH_PROXY_IDENTITY_MISSING": ("trusted_proxy_missing_header", "review_auth_configuration"),
    "AUTH_RATE_LIMITED": ("rate_limited", "wait_then_retry"),
}


def auth_failure_details(code: str, params: ConnectParams | None) -> dict[str, object]:
    """``details`` of a refused credential, with OpenClaw's recovery hints.

    ``canRetryWithDeviceToken`` is true only when a device that sent the shared
    token (and no device token) may retry with the device token it was issued:
    OpenClaw's CLI then reconnects with its stored token by itself.
    """
    reason, next_step = _AUTH_FAILURES.get(code, ("unauthorized", "review_auth_configuration"))
    auth = params.auth if params is not None else None
    can_retry = (
        code == "AUTH_TOKEN_MISMATCH"
        and params is not None
        and params.device is not None
        and auth is not None
        and bool(auth.token)
        and not auth.deviceToken
    )
    return {
        "code": code,
        "authReason": reason,
        "canRetryWithDeviceToken": can_retry,
        "recommendedNextStep": "retry_with_device_token" if can_retry else next_step,
    }
