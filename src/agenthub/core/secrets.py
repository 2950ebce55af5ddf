"""Shared secrets at rest and on comparison: one SHA-256 digest, one constant-time check.

Every credential the gateway stores (the gateway token and password, device
tokens, AgentBox API keys, LangBot pipeline keys) is kept only as the hex
SHA-256 of the secret, and a presented secret is hashed and compared with
``hmac.compare_digest``, so neither timing nor length leaks. It sits below
``core.auth`` and ``core.pairing`` so both can use it without importing each
other. (The module name shadows the stdlib ``secrets`` only for relative
imports inside ``core``; the stdlib stays reachable as ``import secrets``.)
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["hash_secret", "secret_matches"]


def hash_secret(secret: str) -> str:
    """The hex SHA-256 digest stored in place of ``secret``."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(candidate: str | None, expected_hash: str | None) -> bool:
    """Constant-time check of a presented secret against a stored SHA-256 hex digest."""
    if candidate is None or expected_hash is None:
        return False
    return hmac.compare_digest(hash_secret(candidate).encode(), expected_hash.encode())
