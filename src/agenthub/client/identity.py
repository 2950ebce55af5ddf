"""A client's device identity: an Ed25519 key pair kept in the data dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..protocol.device import b64url_encode, device_id_for, sign_payload, signature_payload

__all__ = ["DeviceIdentity"]


@dataclass(frozen=True)
class DeviceIdentity:
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> DeviceIdentity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> DeviceIdentity:
        """Read the key file, or create it readable by the owner only."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 key")
            return cls(key)
        ident = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = ident.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return ident

    @property
    def public_key_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def device_id(self) -> str:
        return device_id_for(self.public_key_raw)

    def sign_connect(
        self,
        *,
        nonce: str,
        signed_at_ms: int,
        client_id: str,
        client_mode: str,
        role: str,
        scopes: list[str],
        token: str,
        platform: str,
        device_family: str | None = None,
    ) -> dict[str, object]:
        """The ``device`` object of connect params, signed in the v3 form."""
        payload = signature_payload(
            version="v3",
            device_id=self.device_id,
            client_id=client_id,
            client_mode=client_mode,
            role=role,
            scopes=scopes,
            signed_at_ms=signed_at_ms,
            token=token,
            nonce=nonce,
            platform=platform,
            device_family=device_family,
        )
        return {
            "id": self.device_id,
            "publicKey": b64url_encode(self.public_key_raw),
            "signature": sign_payload(self.private_key, payload),
            "signedAt": signed_at_ms,
            "nonce": nonce,
        }
