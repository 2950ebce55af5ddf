"""DM pairing: who may talk to the bot, and the codes unknown senders get.

OpenClaw's rules: a code is 8 characters from an alphabet without look-alikes
(no 0, O, 1, I), expires after an hour, is sent only when a request is created,
and each channel account holds at most 3 pending requests. An operator approves
by request id (``channels.pairing.approve``, as the Control UI does) or by the
code the sender got (``agenthub channels approve telegram CODE``). Only the
SHA-256 of a code is stored, and codes are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..core.dm_access import PairingRequest, PairingStore

__all__ = ["CODE_ALPHABET", "CODE_LENGTH", "PairingService", "new_code"]

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


class PairingService:
    """Approved senders (cached per account) and pending requests, over a ``PairingStore``."""

    def __init__(self, store: PairingStore, *, ttl_ms: int = 3_600_000, max_pending: int = 3) -> None:
        self.store = store
        self.ttl_ms = ttl_ms
        self.max_pending = max_pending
        self._allowed: dict[tuple[str, str], set[str]] = {}

    async def is_approved(self, channel: str, account_id: str, sender_id: str) -> bool:
        key = (channel, account_id)
        cached = self._allowed.get(key)
        if cached is None:
            cached = self._allowed[key] = await self.store.allowed_senders(channel, account_id)
        return sender_id in cached

    async def request(
        self, channel: str, account_id: str, sender_id: str, now_ms: int, meta: dict[str, str] | None = None
    ) -> str | None:
        """The code to send to an unknown sender, or None when none is due.

        None when the sender already has a pending request (its code was sent
        when it was created) or when the account's pending requests are full.
        """
        await self.store.purge_pending(now_ms - self.ttl_ms)
        pending = await self.store.pending(channel, account_id)
        for request in pending:
            if request.sender_id == sender_id:
                await self.store.touch_pending(request.request_id, now_ms)
                return None
        if len(pending) >= self.max_pending:
            return None
        code = new_code()
        await self.store.put_pending(
            PairingRequest(
                request_id=secrets.token_urlsafe(24),
                channel=channel,
                account_id=account_id,
                sender_id=sender_id,
                code_hash=_code_hash(code),
                created_ms=now_ms,
                last_seen_ms=now_ms,
                meta=dict(meta or {}),
            )
        )
        return code

    async def pending(self, channel: str | None, account_id: str | None, now_ms: int) -> list[PairingRequest]:
        await self.store.purge_pending(now_ms - self.ttl_ms)
        return await self.store.pending(channel, account_id)

    async def find(
        self,
        channel: str,
        account_id: str | None,
        now_ms: int,
        *,
        request_id: str | None = None,
        code: str | None = None,
    ) -> PairingRequest | None:
        """The live request with this id, or whose code matches (constant-time)."""
        wanted = _code_hash(code) if code else None
        for request in await self.pending(channel, account_id, now_ms):
            if request_id is not None and hmac.compare_digest(request.request_id, request_id):
                return request
            if wanted is not None and hmac.compare_digest(request.code_hash, wanted):
                return request
        return None

    async def approve(self, request: PairingRequest, now_ms: int) -> bool:
        """Allow the request's sender; False if another call took the request first."""
        taken = await self.store.take_pending(request.request_id)
        if taken is None:
            return False
        await self.store.add_allowed(taken.channel, taken.account_id, taken.sender_id, now_ms)
        cached = self._allowed.get((taken.channel, taken.account_id))
        if cached is not None:  # else the next check loads it, this sender included
            cached.add(taken.sender_id)
        return True

    async def dismiss(self, request: PairingRequest) -> bool:
        return await self.store.take_pending(request.request_id) is not None
