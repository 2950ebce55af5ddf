"""Who may connect, and with which scopes.

Shared secrets are compared as SHA-256 digests with ``hmac.compare_digest``, so
neither timing nor length leaks. Device records are created silently for
loopback clients (same-host trust, as OpenClaw does).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ..protocol.errors import ErrorCode, HandshakeError
from ..protocol.handshake import Accepted
from ..protocol.methods import READ, SCOPES, WRITE, expand_scopes
from .connection import Principal
from .store import DeviceRecord, Store

__all__ = ["Authenticator", "hash_secret", "secret_matches"]

DEFAULT_OPERATOR_SCOPES = (READ, WRITE)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(candidate: str | None, expected_hash: str | None) -> bool:
    """Constant-time check of a presented secret against a stored SHA-256 hex digest."""
    if candidate is None or expected_hash is None:
        return False
    return hmac.compare_digest(hash_secret(candidate).encode(), expected_hash.encode())


@dataclass(slots=True)
class Authenticator:
    store: Store
    token_hash: str | None

    @property
    def auth_mode(self) -> str:
        return "token" if self.token_hash else "none"

    async def authenticate(self, accepted: Accepted, remote_ip: str, now_ms: int) -> Principal:
        """Check credentials and grant scopes; raises ``HandshakeError`` on refusal."""
        params = accepted.params
        rid = accepted.request_id
        auth = params.auth
        if self.token_hash is not None:
            token = auth.token if auth else None
            device_token = auth.deviceToken if auth else None
            if not token and not device_token:
                raise HandshakeError(
                    ErrorCode.INVALID_REQUEST,
                    "gateway token missing",
                    details={"code": "AUTH_TOKEN_MISSING"},
                    request_id=rid,
                )
            if not secret_matches(token, self.token_hash) and not await self._device_token_ok(
                accepted, device_token
            ):
                raise HandshakeError(
                    ErrorCode.INVALID_REQUEST,
                    "gateway token mismatch",
                    details={"code": "AUTH_TOKEN_MISMATCH"},
                    request_id=rid,
                )
        unknown = [s for s in params.scopes if s not in SCOPES]
        if unknown and params.role == "operator":
            raise HandshakeError(
                ErrorCode.INVALID_REQUEST, f"unknown scope: {unknown[0]}", request_id=rid
            )
        requested = params.scopes or (list(DEFAULT_OPERATOR_SCOPES) if params.role == "operator" else [])
        scopes = expand_scopes(requested) if params.role == "operator" else frozenset()
        if accepted.device_id is not None:
            await self._remember_device(accepted, remote_ip, now_ms)
        client = params.client
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
        )

    async def _device_token_ok(self, accepted: Accepted, device_token: str | None) -> bool:
        if not device_token or accepted.device_id is None:
            return False
        record = await self.store.get_device(accepted.device_id)
        return record is not None and record.status == "paired" and secret_matches(device_token, record.token_hash)

    async def _remember_device(self, accepted: Accepted, remote_ip: str, now_ms: int) -> None:
        assert accepted.device_id is not None and accepted.device_public_key is not None
        params = accepted.params
        record = await self.store.get_device(accepted.device_id)
        if record is None:
            record = DeviceRecord(
                device_id=accepted.device_id,
                public_key=accepted.device_public_key,
                role=params.role,
                scopes=list(params.scopes),
                display_name=params.client.displayName,
                platform=params.client.platform,
                client_id=params.client.id,
                created_ms=now_ms,
                last_seen_ms=now_ms,
            )
        else:
            record.last_seen_ms = now_ms
        await self.store.put_device(record)
