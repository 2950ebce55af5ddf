"""The ``channels.*`` methods' side in this package: OpenClaw's result shapes over the registry.

Implements ``core.api.channels.ChannelControl``; the core's handlers only pass
their params through. Errors are ``RpcError`` with OpenClaw's codes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..core.dm_access import PairingRequest
from ..core.outbound import OutboundError
from ..core.runs import now_ms
from ..protocol.errors import ErrorCode, RpcError
from .base import Channel
from .pairing import PairingService
from .registry import LABELS, ChannelManager
from .streaming import deliver_text

if TYPE_CHECKING:
    from ..core.api.channels import ChannelControl

__all__ = ["APPROVED_MESSAGE", "ChannelControlApi"]

APPROVED_MESSAGE = "agenthub: your access was approved. Send a message to start."


def _iso(ms: int) -> str:
    """JavaScript's ``toISOString()`` format, as OpenClaw's pairing rows carry."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _invalid(message: str, reason: str | None = None) -> RpcError:
    return RpcError(ErrorCode.INVALID_REQUEST, message, details={"reason": reason} if reason else None)


class ChannelControlApi:
    """``channels.status|start|stop|logout`` and ``channels.pairing.*`` for one gateway."""

    def __init__(self, manager: ChannelManager, pairing: PairingService) -> None:
        self.manager = manager
        self.pairing = pairing

    def _known(self, channel: str) -> None:
        if channel not in self.manager.channel_ids():
            raise _invalid(f"unknown channel: {channel}", "UNKNOWN_CHANNEL")

    def _account(self, channel: str, account_id: str | None, action: str) -> Channel:
        self._known(channel)
        chan = self.manager.get(channel, account_id)
        if chan is None:
            raise _invalid(f"unknown account {account_id} of channel {channel}", "UNKNOWN_ACCOUNT")
        if chan is self.manager.webchat:
            raise _invalid(f"channel {channel} does not support {action}")
        return chan

    async def status(self, channel: str | None, probe: bool, timeout_s: float) -> dict[str, Any]:
        if channel is not None:
            self._known(channel)
        probes = await self.manager.probe(channel, timeout_s) if probe else None
        return self.manager.status(channel, probes)

    async def start(self, channel: str, account_id: str | None) -> dict[str, Any]:
        chan = self._account(channel, account_id, "start")
        was_running = chan.status.running
        try:
            await self.manager.start_account(channel, chan.account_id)
        except OutboundError as exc:
            return {
                "channel": channel,
                "accountId": chan.account_id,
                "started": False,
                "outcome": {"status": "skipped", "reason": "unconfigured", "message": str(exc)},
            }
        outcome = {"status": "retry", "reason": "task-owned"} if was_running else {"status": "handed-off"}
        return {"channel": channel, "accountId": chan.account_id, "started": chan.status.running, "outcome": outcome}

    async def stop(self, channel: str, account_id: str | None) -> dict[str, Any]:
        chan = self._account(channel, account_id, "stop")
        await self.manager.stop_account(channel, chan.account_id)
        return {"channel": channel, "accountId": chan.account_id, "stopped": not chan.status.running}

    async def logout(self, channel: str, account_id: str | None) -> dict[str, Any]:
        """Stop the account until ``channels.start``; its token lives in the config, so nothing is cleared."""
        chan = self._account(channel, account_id, "logout")
        await self.manager.stop_account(channel, chan.account_id)
        chan.status.logged_out = True
        return {"channel": channel, "accountId": chan.account_id, "cleared": False, "loggedOut": True}

    # -- DM pairing ----------------------------------------------------------------
    def _pairing_accounts(self, channel: str | None, account_id: str | None) -> list[Channel]:
        if channel is not None:
            self._known(channel)
        found = [
            chan
            for cid in self.manager.channel_ids()
            if channel is None or cid == channel
            for chan in self.manager.accounts(cid)
            if chan is not self.manager.webchat
            and chan.access.dm_policy == "pairing"
            and chan.status.configured
            and (account_id is None or chan.account_id == account_id)
        ]
        if channel is not None and not found:
            raise _invalid(
                f"channel account does not use DM pairing: {channel}:{account_id or 'default'}", "NOT_PAIRING"
            )
        return found

    def _request_view(self, chan: Channel, request: PairingRequest) -> dict[str, Any]:
        view: dict[str, Any] = {
            "requestId": request.request_id,
            "channel": chan.id,
            "channelLabel": LABELS.get(chan.id, chan.id),
            "accountId": chan.account_id,
            "senderId": request.sender_id,
            "senderLabel": f"{LABELS.get(chan.id, chan.id)} id",
            "createdAt": _iso(request.created_ms),
            "lastSeenAt": _iso(request.last_seen_ms),
            "expiresAt": _iso(request.created_ms + self.pairing.ttl_ms),
            "notifySupported": True,
        }
        if chan.status.name:
            view["accountLabel"] = chan.status.name
        meta = {k: v for k, v in request.meta.items() if v}
        if meta:
            view["metadata"] = meta
        return view

    async def pairing_list(self, channel: str | None, account_id: str | None) -> dict[str, Any]:
        accounts = self._pairing_accounts(channel, account_id)
        requests: list[dict[str, Any]] = []
        for chan in accounts:
            for request in await self.pairing.pending(chan.id, chan.account_id, now_ms()):
                requests.append(self._request_view(chan, request))
        return {
            "accounts": [
                {
                    "channel": chan.id,
                    "channelLabel": LABELS.get(chan.id, chan.id),
                    "accountId": chan.account_id,
                    **({"accountLabel": chan.status.name} if chan.status.name else {}),
                    "notifySupported": True,
                }
                for chan in accounts
            ],
            "requests": requests,
            "commandOwnerConfigured": False,
            "limits": {"pendingPerAccount": self.pairing.max_pending, "ttlMs": self.pairing.ttl_ms},
        }

    async def _find(
        self, channel: str, account_id: str | None, request_id: str | None, code: str | None
    ) -> tuple[Channel, PairingRequest]:
        for chan in self._pairing_accounts(channel, account_id):
            request = await self.pairing.find(chan.id, chan.account_id, now_ms(), request_id=request_id, code=code)
            if request is not None:
                return chan, request
        raise _invalid("pending DM access request no longer exists", "PAIRING_REQUEST_NOT_FOUND")

    async def pairing_approve(
        self,
        channel: str,
        account_id: str | None,
        request_id: str | None,
        code: str | None,
        notify: bool,
        bootstrap_owner: bool = False,
    ) -> dict[str, Any]:
        """Allow the sender; agenthub has no command owners, so an owner bootstrap is ``unavailable``."""
        chan, request = await self._find(channel, account_id, request_id, code)
        if not await self.pairing.approve(request, now_ms()):
            raise _invalid("pending DM access request no longer exists", "PAIRING_REQUEST_NOT_FOUND")
        notification = "not-requested"
        if notify:
            notification = await self._notify(chan, request)
        return {
            "requestId": request.request_id,
            "senderId": request.sender_id,
            "notification": notification,
            "commandOwnerBootstrap": "unavailable" if bootstrap_owner else "not-requested",
        }

    async def _notify(self, chan: Channel, request: PairingRequest) -> str:
        to = request.meta.get("peerId") or request.sender_id
        try:
            await deliver_text(chan.conversation(to), APPROVED_MESSAGE, chan.access.max_retry_wait_s)
        except Exception:
            return "failed"
        chan.status.last_outbound_at = now_ms()
        return "sent"

    async def pairing_dismiss(self, channel: str, account_id: str | None, request_id: str) -> dict[str, Any]:
        _, request = await self._find(channel, account_id, request_id, None)
        if not await self.pairing.dismiss(request):
            raise _invalid("pending DM access request no longer exists", "PAIRING_REQUEST_NOT_FOUND")
        return {"requestId": request.request_id, "senderId": request.sender_id}


if TYPE_CHECKING:

    def _conforms(api: ChannelControlApi) -> ChannelControl:
        return api
