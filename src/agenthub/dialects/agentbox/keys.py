"""AgentBox API keys (``ab_<key_id>_<secret>``): minted, hashed at rest, checked under the auth limiter."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from ...core.node import Node
from ...core.ratelimit import AuthLockedOut
from ...core.runs import now_ms
from ...core.secrets import hash_secret, secret_matches
from ...core.store import ApiKeyRecord, Store
from .frames import AgentBoxError, Code

__all__ = ["KEY_PREFIX", "USER_ID", "User", "authenticate_key", "checked_key", "hash_key", "new_api_key"]

KEY_PREFIX = "ab_"
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


def hash_key(key: str) -> str:
    """What ``api_keys.key_hash`` stores: the key's SHA-256 (``core.secrets``)."""
    return hash_secret(key)


def new_api_key(user_id: str, scopes: list[str], created_ms: int) -> tuple[str, ApiKeyRecord]:
    """A fresh ``ab_<key_id>_<secret>`` key and the record that stores only its hash."""
    if not USER_ID.match(user_id):
        raise ValueError(f"invalid user id {user_id!r}: use letters, digits and _.@- (max 128)")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return key, ApiKeyRecord(key_id, user_id, hash_key(key), sorted(set(scopes)), created_ms)


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    scopes: frozenset[str]
    key_id: str

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes


async def authenticate_key(store: Store, token: object) -> User:
    """Look the key up by its id, then compare hashes in constant time."""
    if not isinstance(token, str) or not token.startswith(KEY_PREFIX) or len(token) < 20 or token[15] != "_":
        raise AgentBoxError(Code.AUTH_FAILED, "invalid API key")
    record = await store.get_api_key(token[3:15])
    if record is None or not secret_matches(token, record.key_hash):
        raise AgentBoxError(Code.AUTH_FAILED, "invalid API key")
    if record.revoked_ms is not None:
        raise AgentBoxError(Code.AUTH_FAILED, "API key revoked")
    return User(record.user_id, frozenset(record.scopes), record.key_id)


async def checked_key(node: Node, ip: str, token: object, request_id: str | None = None) -> User:
    """``authenticate_key`` under the gateway's one auth limiter (shared with every other port and route).

    A wrong or revoked key counts as a failed guess for ``ip``; past the limit,
    and for as long as the lockout lasts, the answer is ``rate_limited`` with
    ``retry_after_ms`` and no key is even looked up.
    """
    try:
        return await node.auth.limiter.attempt(
            ip,
            now_ms(),
            lambda: authenticate_key(node.store, token),
            lambda exc: isinstance(exc, AgentBoxError) and exc.code is Code.AUTH_FAILED,
        )
    except AuthLockedOut as exc:
        raise AgentBoxError(
            Code.RATE_LIMITED, "too many failed authentication attempts", request_id, exc.retry_after_ms
        ) from None
    except AgentBoxError as exc:
        exc.request_id = exc.request_id or request_id
        raise
