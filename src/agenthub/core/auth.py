"""Who may connect, and with which scopes.

Shared secrets are compared as SHA-256 digests in constant time
(``core.secrets``), so neither timing nor length leaks. Devices are admitted by
``core.pairing`` (silent on loopback first sight, as OpenClaw does; an approval
otherwise). Every credential check, here and at the dialect edges, runs under
the one ``AuthLimiter`` this object carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..protocol.errors import ErrorCode, HandshakeError
from ..protocol.handshake import Accepted, auth_failure_details
from ..protocol.methods import NODE, READ, WRITE, ConnectParams, expand_scopes, is_operator_scope
from .connection import Principal
from .ratelimit import AuthLimiter, AuthLockedOut, SecurityLimits
from .secrets import hash_secret, secret_matches
from .store import Store

if TYPE_CHECKING:
    from .pairing import PairingService

# hash_secret and secret_matches live in core.secrets; re-exported for callers that import them from here.
__all__ = ["Authenticator", "hash_secret", "secret_matches"]

DEFAULT_OPERATOR_SCOPES = (READ, WRITE)


@dataclass(slots=True)
class Authenticator:
    store: Store
    token_hash: str | None
    pairing: PairingService
    limiter: AuthLimiter = field(default_factory=lambda: AuthLimiter(SecurityLimits()))
    password_hash: str | None = None
    trusted_proxy_header: str | None = None

    @property
    def auth_mode(self) -> str:
        if self.trusted_proxy_header:
            return "trusted-proxy"
        if self.password_hash:
            return "password"
        return "token" if self.token_hash else "none"

    @property
    def requires_credential(self) -> bool:
        """False only in auth mode ``none`` (loopback-only gateways), where every client is trusted."""
        return self.auth_mode != "none"

    def gateway_secret_ok(self, presented: str | None) -> bool:
        """The gateway's shared secret: the password in password mode, else the token (constant time)."""
        if self.password_hash is not None:
            return secret_matches(presented, self.password_hash)
        return secret_matches(presented, self.token_hash)

    async def authenticate(
        self, accepted: Accepted, remote_ip: str, now_ms: int, proxy_user: str | None = None
    ) -> Principal:
        """Check credentials and grant scopes; raises ``HandshakeError`` on refusal.

        Failed credential checks count against the remote IP; a locked-out IP is
        refused before any check, with ``retryAfterMs``.
        """
        try:
            return await self.limiter.attempt(
                remote_ip,
                now_ms,
                lambda: self._authenticate(accepted, remote_ip, now_ms, proxy_user),
                _is_guess,
            )
        except AuthLockedOut as exc:
            raise _rate_limited(accepted.request_id, exc.retry_after_ms) from None

    async def _authenticate(self, accepted: Accepted, remote_ip: str, now_ms: int, proxy_user: str | None) -> Principal:
        params = accepted.params
        rid = accepted.request_id
        auth = params.auth
        device_token = auth.deviceToken if auth else None
        via_device_token = bool(device_token) and await self._device_token_ok(accepted, device_token)
        if via_device_token:
            pass
        elif self.trusted_proxy_header:
            if not proxy_user:
                raise _auth_error(rid, "trusted proxy identity missing", "AUTH_PROXY_IDENTITY_MISSING", params)
        elif self.password_hash is not None:
            password = auth.password if auth else None
            if not password:
                raise _auth_error(rid, "gateway password missing", "AUTH_PASSWORD_MISSING", params)
            if not secret_matches(password, self.password_hash):
                raise _auth_error(rid, "gateway password mismatch", "AUTH_PASSWORD_MISMATCH", params)
        elif self.token_hash is not None:
            token = auth.token if auth else None
            if not token and not device_token:
                raise _auth_error(rid, "gateway token missing", "AUTH_TOKEN_MISSING", params)
            if not secret_matches(token, self.token_hash):
                code = "AUTH_DEVICE_TOKEN_MISMATCH" if device_token and not token else "AUTH_TOKEN_MISMATCH"
                raise _auth_error(rid, "gateway token mismatch", code, params)
        elif device_token:
            raise _auth_error(rid, "device token mismatch", "AUTH_DEVICE_TOKEN_MISMATCH", params)
        invalid = [s for s in params.scopes if not is_operator_scope(s)]
        if invalid and params.role == "operator":
            raise HandshakeError(ErrorCode.INVALID_REQUEST, f"unknown scope: {invalid[0]}", request_id=rid)
        requested = params.scopes or (list(DEFAULT_OPERATOR_SCOPES) if params.role == "operator" else [])
        if params.role != "operator":
            requested = []
        scopes = expand_scopes(requested) if params.role == "operator" else frozenset({NODE})
        issued: str | None = None
        if accepted.device_id is not None:
            issued = await self.pairing.admit(
                accepted,
                list(requested),
                remote_ip,
                now_ms,
                via_device_token=via_device_token,
                proxied=proxy_user is not None,
            )
        client = params.client
        extra: dict[str, object] = {"permissions": dict(params.permissions or {})}
        if issued is not None:
            extra["deviceToken"] = issued
            extra["deviceTokenIssuedMs"] = now_ms
        return Principal(
            role=params.role,
            scopes=scopes,
            client_id=client.id,
            client_mode=client.mode,
            client_version=client.version,
            platform=client.platform,
            display_name=client.displayName,
            device_family=client.deviceFamily,
            instance_id=client.instanceId,
            device_id=accepted.device_id,
            caps=tuple(params.caps),
            commands=tuple(params.commands or ()),
            user_id=proxy_user,
            extra=extra,
        )

    async def _device_token_ok(self, accepted: Accepted, device_token: str | None) -> bool:
        if not device_token or accepted.device_id is None:
            return False
        return await self.pairing.verify_token(accepted.device_id, accepted.params.role, device_token)


def _is_guess(exc: Exception) -> bool:
    """A refused credential (``AUTH_*`` codes) counts against the IP; other refusals do not."""
    return isinstance(exc, HandshakeError) and str((exc.details or {}).get("code", "")).startswith("AUTH_")


def _auth_error(rid: str, message: str, code: str, params: ConnectParams) -> HandshakeError:
    details = auth_failure_details(code, params)
    return HandshakeError(ErrorCode.INVALID_REQUEST, message, details=details, request_id=rid)


def _rate_limited(rid: str, retry_after_ms: int) -> HandshakeError:
    return HandshakeError(
        ErrorCode.UNAVAILABLE,
        "too many failed authentication attempts",
        details={**auth_failure_details("AUTH_RATE_LIMITED", None), "retryAfterMs": retry_after_ms},
        request_id=rid,
        retry_after_ms=retry_after_ms,
    )
