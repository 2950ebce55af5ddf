"""Messaging channels: Telegram, Slack, Discord and WebChat, each a client of the core.

``build_channels`` makes the whole set from ``ChannelsOptions``: the accounts,
the conversation router, DM pairing, and the ``ChannelManager`` the node uses
as its ``Outbound``. Platform modules are imported only when an account of
theirs is configured, so a gateway without Telegram never loads its library.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.dm_access import PairingStore
from ..core.node import Node
from .base import Channel
from .control import ChannelControlApi
from .conversations import ConversationRouter, SlashCommands
from .options import AccountOptions, ChannelsOptions, DiscordOptions, SlackOptions, TelegramOptions
from .pairing import PairingService
from .registry import ChannelManager

__all__ = ["ChannelSet", "build_channels"]


@dataclass(slots=True)
class ChannelSet:
    manager: ChannelManager
    control: ChannelControlApi
    pairing: PairingService


def _platform(options: AccountOptions) -> Channel:
    if isinstance(options, TelegramOptions):
        from .telegram import TelegramChannel

        return TelegramChannel(options)
    if isinstance(options, SlackOptions):
        from .slack import SlackChannel

        return SlackChannel(options)
    if isinstance(options, DiscordOptions):
        from .discord import DiscordChannel

        return DiscordChannel(options)
    raise TypeError(f"no channel for {type(options).__name__}")


def build_channels(
    node: Node, options: ChannelsOptions, store: PairingStore, commands: SlashCommands | None = None
) -> ChannelSet:
    """Every configured account, wired to the node; call ``manager.start()`` to connect them."""
    pairing = PairingService(store, ttl_ms=options.pairing_code_ttl_s * 1000, max_pending=options.pairing_max_pending)
    router = ConversationRouter(
        node,
        pairing,
        dm_scope=options.dm_scope,
        max_inbound_chars=options.max_inbound_chars,
        max_queued_runs=options.max_queued_runs,
        commands=commands,
    )
    webchat = None
    if options.webchat:
        from .webchat import WebChatChannel

        webchat = WebChatChannel(node)
    secrets = [
        s
        for a in options.accounts
        for s in (a.token, getattr(a, "signing_secret", None), getattr(a, "webhook_secret", None))
        if s
    ]
    manager = ChannelManager(
        [_platform(a) for a in options.accounts],
        router,
        secrets=secrets,
        retry_initial_s=options.retry_initial_s,
        retry_max_s=options.retry_max_s,
        webchat=webchat,
    )
    return ChannelSet(manager, ChannelControlApi(manager, pairing), pairing)
