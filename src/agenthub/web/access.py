"""Credentials at the HTTP edge: the one check the dialect routes share.

The native protocol proves who it is inside its ``connect`` frame; the LangBot
and MyAgent sockets and the LangBot REST routes have no such frame, so they
present the gateway's secret (the token, or the password in password mode) or
a per-resource key (a LangBot pipeline key) on the request itself: as
``Authorization: Bearer <secret>``, or, on WebSocket upgrades only (browsers
cannot set headers there), as ``?token=<secret>``. Behind ``--auth
trusted-proxy`` a trusted proxy's identity header counts as a credential.

Every check runs under the gateway's one ``AuthLimiter`` (``node.auth.limiter``):
a wrong secret is a failed guess for the client IP, whichever port or route it
came through, and a locked-out IP is refused before anything is compared.
A socket admitted *without* a credential (a public pipeline, a gateway without
auth) holds one of its IP's pre-auth slots (``security.max_preauth_per_ip``,
the native port's cap) for as long as it stays open.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from ..core.node import Node
from ..core.ratelimit import AuthLockedOut, PreAuthCounter
from ..core.runs import now_ms
from ..core.secrets import secret_matches
from .origin import proxy_identity

__all__ = [
    "CLOSE_TOO_MANY",
    "CLOSE_UNAUTHORIZED",
    "AccessDenied",
    "Admission",
    "Gatekeeper",
    "presented_secret",
    "retry_after_header",
]

CLOSE_UNAUTHORIZED = 4401  # WebSocket close code: no valid credential (HTTP 401 in the 4xxx range)
CLOSE_TOO_MANY = 4429  # WebSocket close code: locked out, or too many unauthenticated sockets


class AccessDenied(Exception):
    """A request refused at the edge; each dialect renders it its own way (frame or HTTP status)."""

    def __init__(self, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.code = code  # "unauthorized" | "rate_limited" | "too_many_connections"
        self.message = message
        self.retry_after_ms = retry_after_ms

    @property
    def http_status(self) -> int:
        return 401 if self.code == "unauthorized" else 429

    @property
    def close_code(self) -> int:
        return CLOSE_UNAUTHORIZED if self.code == "unauthorized" else CLOSE_TOO_MANY

    def headers(self) -> dict[str, str]:
        return retry_after_header(self.retry_after_ms) if self.retry_after_ms is not None else {}


class _Mismatch(Exception):
    """A presented secret matched nothing: a failed guess."""


def retry_after_header(retry_after_ms: int) -> dict[str, str]:
    """``Retry-After`` in whole seconds, rounded up (HTTP has no milliseconds)."""
    return {"Retry-After": str(max(1, -(-retry_after_ms // 1000)))}


def presented_secret(request: web.Request, *, allow_query: bool) -> str | None:
    """``Authorization: Bearer <secret>``, else (when allowed) the ``token`` query parameter."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    if allow_query:
        return request.query.get("token") or None
    return None


@dataclass(slots=True)
class Admission:
    """An admitted socket; ``release()`` (idempotent) frees its pre-auth slot when it closes."""

    ip: str
    slots: PreAuthCounter | None = None  # set when the socket holds a pre-auth slot (admitted anonymously)

    @property
    def anonymous(self) -> bool:
        return self.slots is not None

    def release(self) -> None:
        if self.slots is not None:
            self.slots.leave(self.ip)
            self.slots = None


class Gatekeeper:
    """Checks the credentials requests present, under the node's auth limiter and pre-auth cap."""

    def __init__(self, node: Node, trusted_proxies: Sequence[str]) -> None:
        self.node = node
        self.trusted_proxies = list(trusted_proxies)

    def proxy_user(self, request: web.Request) -> str | None:
        """The identity a trusted proxy vouched for (``--auth trusted-proxy`` only)."""
        header = self.node.auth.trusted_proxy_header
        return proxy_identity(request, header, self.trusted_proxies) if header else None

    async def check(self, request: web.Request, *, key_hash: str | None = None, allow_query: bool = False) -> bool:
        """True when the request proves a credential, False when it presents none.

        Accepted: the gateway's secret, the secret whose hash is ``key_hash``,
        or a trusted proxy's identity. Raises ``AccessDenied`` for a wrong
        secret (counted as a failed guess) or a locked-out IP.
        """
        if self.proxy_user(request) is not None:
            return True
        secret = presented_secret(request, allow_query=allow_query)
        if secret is None:
            return False
        auth = self.node.auth

        async def verify() -> None:
            if not (auth.gateway_secret_ok(secret) or secret_matches(secret, key_hash)):
                raise _Mismatch

        try:
            await auth.limiter.attempt(request.remote or "", now_ms(), verify, lambda e: isinstance(e, _Mismatch))
        except AuthLockedOut as exc:
            raise AccessDenied("rate_limited", "too many failed authentication attempts", exc.retry_after_ms) from None
        except _Mismatch:
            raise AccessDenied("unauthorized", "invalid credential") from None
        return True

    async def admit(self, request: web.Request, *, anonymous_ok: bool, key_hash: str | None = None) -> Admission:
        """Admit a WebSocket: with a valid credential, or anonymously where allowed and under the per-IP cap."""
        ip = request.remote or ""
        if await self.check(request, key_hash=key_hash, allow_query=True):
            return Admission(ip)
        if not anonymous_ok:
            raise AccessDenied(
                "unauthorized", "credential required: send ?token=<token or key> or Authorization: Bearer <...>"
            )
        slots = self.node.preauth
        if not slots.try_enter(ip):
            raise AccessDenied("too_many_connections", "too many unauthenticated connections")
        return Admission(ip, slots)

    async def require_admin(self, request: web.Request) -> None:
        """REST administration: the gateway's secret as Bearer; without gateway auth, loopback callers only."""
        if not self.node.auth.requires_credential:
            if _is_loopback(request.remote or ""):
                return
            raise AccessDenied("unauthorized", "admin token required")
        if not await self.check(request):
            raise AccessDenied("unauthorized", "admin token required")


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False
