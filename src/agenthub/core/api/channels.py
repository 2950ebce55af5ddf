"""``send`` and ``channels.*``: messages out through channels, and the channels' state.

``send`` without a channel (or with ``webchat``) posts into a session's
transcript, visible to every operator client; with a platform channel it
delivers through ``Node.outbound`` and fails clearly when the channel is
unknown (INVALID_REQUEST) or not running (UNAVAILABLE). The ``channels.*``
methods (OpenClaw's names and result shapes) go to the ``ChannelControl`` the
composition root puts in ``ApiContext.channels``; the core knows no platform.
"""

from __future__ import annotations

from typing import Any, Protocol

from ...protocol.errors import ErrorCode, RpcError
from ...protocol.methods import (
    ChannelRefParams,
    ChannelsPairingApproveParams,
    ChannelsPairingDismissParams,
    ChannelsPairingListParams,
    ChannelsStatusParams,
    SendParams,
)
from ..node import Node
from ..outbound import OutboundError
from ..rpc import Call
from ..runs import Run, now_ms
from ..sessions import canonical_session_key
from ..store import MessageRecord
from ._context import ApiContext
from .sessions import DEFAULT_SESSION

__all__ = ["WEBCHAT", "ChannelControl", "post_to_session", "register"]

WEBCHAT = "webchat"  # the gateway's own chat: a session transcript, no platform


class ChannelControl(Protocol):
    """What the ``channels.*`` methods need from the channels package (results in OpenClaw's shapes).

    Implementations raise ``RpcError`` for unknown channels, accounts or requests.
    """

    async def status(self, channel: str | None, probe: bool, timeout_s: float) -> dict[str, Any]: ...

    async def start(self, channel: str, account_id: str | None) -> dict[str, Any]: ...

    async def stop(self, channel: str, account_id: str | None) -> dict[str, Any]: ...

    async def logout(self, channel: str, account_id: str | None) -> dict[str, Any]: ...

    async def pairing_list(self, channel: str | None, account_id: str | None) -> dict[str, Any]: ...

    async def pairing_approve(
        self,
        channel: str,
        account_id: str | None,
        request_id: str | None,
        code: str | None,
        notify: bool,
        bootstrap_owner: bool = False,
    ) -> dict[str, Any]: ...

    async def pairing_dismiss(self, channel: str, account_id: str | None, request_id: str) -> dict[str, Any]: ...


async def post_to_session(
    node: Node, session_key: str, text: str, run_id: str, origin: str, meta: dict[str, Any], *, launch: bool = True
) -> tuple[int, Run]:
    """Append an assistant message to a session and announce it as a finished run: its id and the run.

    With ``launch=False`` the run is published only on ``node.runs.launch(run)`` (after a response).
    """
    node.runs.check_message(text)
    session_key = canonical_session_key(session_key)
    message_id = await node.store.append_message(MessageRecord(session_key, "assistant", text, now_ms(), run_id, meta))
    return message_id, await node.runs.reply(run_id, session_key, text, origin, launch=launch)


def _unavailable(exc: OutboundError) -> RpcError:
    reason = getattr(exc, "reason", None)
    if reason == "UNKNOWN_CHANNEL":
        return RpcError(ErrorCode.INVALID_REQUEST, str(exc), details={"reason": reason})
    return RpcError(
        ErrorCode.UNAVAILABLE, str(exc), details={"reason": reason or "CHANNEL_UNAVAILABLE"}, retryable=True
    )


def register(ctx: ApiContext) -> None:
    node = ctx.node
    store = ctx.store

    def control() -> ChannelControl:
        if ctx.channels is None:
            raise RpcError(ErrorCode.UNAVAILABLE, "channels are not enabled on this gateway")
        return ctx.channels

    async def send(call: Call, p: SendParams) -> Any:
        async with ctx.exclusive(p.idempotencyKey):
            first = await ctx.idempotent_replay(p.idempotencyKey)
            if first is not None:
                return first
            if p.channel is None or p.channel == WEBCHAT:
                result = await _send_webchat(call, p)
            else:
                result = await _send_channel(p, p.channel)
            await store.put_idempotent(p.idempotencyKey, "send", result, now_ms())
            return result

    async def _send_webchat(call: Call, p: SendParams) -> dict[str, Any]:
        key = p.idempotencyKey
        session_key = ctx.session_key(p.sessionKey or p.to, default=DEFAULT_SESSION)
        msg_id, run = await post_to_session(
            node, session_key, p.message, key, f"send:{call.conn.conn_id}", {"source": "send"}, launch=False
        )
        call.after_response(lambda: node.runs.launch(run))
        return {"runId": key, "messageId": str(msg_id), "sessionKey": session_key, "channel": WEBCHAT}

    async def _send_channel(p: SendParams, channel: str) -> dict[str, Any]:
        outbound = node.outbound
        if outbound is None or not outbound.has_channel(channel):
            raise RpcError(
                ErrorCode.INVALID_REQUEST, f"unknown channel: {channel}", details={"reason": "UNKNOWN_CHANNEL"}
            )
        if not p.to:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: to: required for a channel send")
        node.runs.check_message(p.message)
        try:
            delivery = await outbound.deliver(channel, p.to, p.message, account=p.accountId)
        except OutboundError as exc:
            raise _unavailable(exc) from None
        result: dict[str, Any] = {"runId": p.idempotencyKey, "messageId": delivery.message_id, "channel": channel}
        result["channelId" if channel in ("slack", "discord") else "chatId"] = delivery.to
        if delivery.account:
            result["accountId"] = delivery.account
        if p.sessionKey:  # mirror what was sent into the session it belongs to, as OpenClaw does
            meta = {"source": "send", "channel": channel, "to": delivery.to, "messageId": delivery.message_id}
            key = ctx.session_key(p.sessionKey)
            await store.append_message(MessageRecord(key, "assistant", p.message, now_ms(), p.idempotencyKey, meta))
            result["sessionKey"] = key
        return result

    async def channels_status(call: Call, p: ChannelsStatusParams) -> Any:
        timeout_s = (p.timeoutMs if p.timeoutMs is not None else 10_000) / 1000
        return await control().status(p.channel, p.probe, timeout_s)

    async def channels_start(call: Call, p: ChannelRefParams) -> Any:
        return await control().start(p.channel, p.accountId or None)

    async def channels_stop(call: Call, p: ChannelRefParams) -> Any:
        return await control().stop(p.channel, p.accountId or None)

    async def channels_logout(call: Call, p: ChannelRefParams) -> Any:
        return await control().logout(p.channel, p.accountId or None)

    async def pairing_list(call: Call, p: ChannelsPairingListParams) -> Any:
        return await control().pairing_list(p.channel, p.accountId)

    async def pairing_approve(call: Call, p: ChannelsPairingApproveParams) -> Any:
        if (p.requestId is None) == (p.code is None):
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: give requestId or code (one of them)")
        return await control().pairing_approve(
            p.channel, p.accountId, p.requestId, p.code, p.notify, p.bootstrapCommandOwner
        )

    async def pairing_dismiss(call: Call, p: ChannelsPairingDismissParams) -> Any:
        return await control().pairing_dismiss(p.channel, p.accountId, p.requestId)

    d = node.dispatcher
    d.register("send", send)
    d.register("channels.status", channels_status)
    d.register("channels.start", channels_start)
    d.register("channels.stop", channels_stop)
    d.register("channels.logout", channels_logout)
    d.register("channels.pairing.list", pairing_list)
    d.register("channels.pairing.approve", pairing_approve)
    d.register("channels.pairing.dismiss", pairing_dismiss)
