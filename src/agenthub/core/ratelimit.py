"""Abuse limits at the door: failed auth per IP, and unauthenticated sockets per IP.

``AuthLimiter`` counts failed authentications per remote IP in a sliding window;
past ``max_failures`` the IP is locked out for ``lockout_ms`` and every
credential check is refused with a retry-after (no credential is even checked,
so guessing costs the attacker the lockout). The gateway has exactly one, and
every credential check on every port goes through ``AuthLimiter.attempt``:
native ``connect``, LangBot and MyAgent sockets, AgentBox ``auth`` and API
keys, and the REST routes. A guess on one route therefore counts on all of them.
``PreAuthCounter`` caps the sockets one IP may hold open without having proven
a credential. Both take the time as a number, so their tests need no clock;
memory is bounded by ``max_ips``.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["AuthLimiter", "AuthLockedOut", "PreAuthCounter", "SecurityLimits"]

T = TypeVar("T")


@dataclass(slots=True)
class SecurityLimits:
    """The named settings (``security.*`` in config) the node applies."""

    auth_max_failures: int = 10
    auth_window_ms: int = 60_000
    auth_lockout_ms: int = 60_000
    max_unauthorized_calls: int = 10
    max_preauth_per_ip: int = 64


@dataclass(slots=True)
class _Entry:
    failures: deque[int] = field(default_factory=deque)
    locked_until: int = 0


class AuthLockedOut(Exception):
    """This IP failed too often: refused without checking, for ``retry_after_ms``."""

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"too many failed authentication attempts; retry in {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class AuthLimiter:
    def __init__(self, limits: SecurityLimits, max_ips: int = 10_000) -> None:
        self.limits = limits
        self.max_ips = max_ips
        self._ips: OrderedDict[str, _Entry] = OrderedDict()

    def retry_after(self, ip: str, now_ms: int) -> int:
        """Milliseconds this IP must wait before trying again (0: go ahead)."""
        entry = self._ips.get(ip)
        if entry is None or entry.locked_until <= now_ms:
            return 0
        return entry.locked_until - now_ms

    def failed(self, ip: str, now_ms: int) -> int:
        """Record one failure; returns the lockout in ms if this failure caused one, else 0."""
        entry = self._ips.get(ip)
        if entry is None:
            entry = self._ips[ip] = _Entry()
            while len(self._ips) > self.max_ips:
                self._ips.popitem(last=False)
        else:
            self._ips.move_to_end(ip)
        window_start = now_ms - self.limits.auth_window_ms
        while entry.failures and entry.failures[0] <= window_start:
            entry.failures.popleft()
        entry.failures.append(now_ms)
        if len(entry.failures) >= self.limits.auth_max_failures:
            entry.failures.clear()
            entry.locked_until = now_ms + self.limits.auth_lockout_ms
            return self.limits.auth_lockout_ms
        return 0

    def succeeded(self, ip: str) -> None:
        entry = self._ips.get(ip)
        if entry is not None and entry.locked_until == 0:
            del self._ips[ip]

    async def attempt(
        self,
        ip: str,
        now_ms: int,
        check: Callable[[], Awaitable[T]],
        is_failure: Callable[[Exception], bool],
    ) -> T:
        """Run one credential ``check`` for ``ip`` under the lockout.

        A locked-out IP gets ``AuthLockedOut`` before ``check`` runs. When
        ``check`` raises an exception that ``is_failure`` calls a failed guess,
        the failure is counted, and if it starts a lockout ``AuthLockedOut``
        replaces it; other exceptions pass through uncounted. A success
        forgets the IP's earlier failures.
        """
        wait = self.retry_after(ip, now_ms)
        if wait:
            raise AuthLockedOut(wait)
        try:
            result = await check()
        except Exception as exc:
            if is_failure(exc):
                wait = self.failed(ip, now_ms)
                if wait:
                    raise AuthLockedOut(wait) from exc
            raise
        self.succeeded(ip)
        return result


class PreAuthCounter:
    """Sockets per IP that have proven no credential yet.

    Native and AgentBox sockets hold a slot until their handshake succeeds;
    LangBot and MyAgent sockets admitted without a credential (a public
    pipeline, a gateway without auth) hold one for as long as they stay open.
    """

    def __init__(self, limits: SecurityLimits) -> None:
        self.limits = limits
        self._open: dict[str, int] = {}

    def try_enter(self, ip: str) -> bool:
        n = self._open.get(ip, 0)
        if n >= self.limits.max_preauth_per_ip:
            return False
        self._open[ip] = n + 1
        return True

    def leave(self, ip: str) -> None:
        n = self._open.get(ip, 0) - 1
        if n <= 0:
            self._open.pop(ip, None)
        else:
            self._open[ip] = n

    def count(self, ip: str) -> int:
        return self._open.get(ip, 0)
