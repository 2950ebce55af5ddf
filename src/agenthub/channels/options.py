"""What each channel account is built from: plain values, resolved from the settings by ``app``.

Channels never import ``agenthub.config`` (as ``web`` does not); the composition
root turns the ``channels`` settings section into these, secrets resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AccessOptions",
    "AccountOptions",
    "ChannelsOptions",
    "DiscordOptions",
    "SlackOptions",
    "TelegramOptions",
]


@dataclass(frozen=True, slots=True)
class AccessOptions:
    """Who may talk to an account, and how its replies are paced."""

    dm_policy: str = "pairing"  # pairing | allowlist | open | disabled
    allow_from: tuple[str, ...] = ()
    require_mention: bool = True
    edit_interval_ms: int = 1000
    max_retry_wait_s: float = 120.0
    typing_interval_ms: int | None = None  # None: the platform has no typing indicator


@dataclass(frozen=True, slots=True)
class AccountOptions:
    account_id: str
    token: str | None = field(default=None, repr=False)
    token_source: str = "none"
    name: str | None = None
    enabled: bool = True
    api_base_url: str = ""
    max_message_chars: int = 4096
    access: AccessOptions = field(default_factory=AccessOptions)
    error: str | None = None  # why the account cannot start (e.g. an unreadable token file)


@dataclass(frozen=True, slots=True)
class TelegramOptions(AccountOptions):
    mode: str = "polling"  # polling | webhook
    poll_timeout_s: int = 30
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SlackOptions(AccountOptions):
    signing_secret: str | None = field(default=None, repr=False)
    events_path: str = "/slack/events"


@dataclass(frozen=True, slots=True)
class DiscordOptions(AccountOptions):
    gateway_url: str = "wss://gateway.discord.gg/"


@dataclass(frozen=True, slots=True)
class ChannelsOptions:
    dm_scope: str = "per-channel-peer"
    pairing_code_ttl_s: int = 3600
    pairing_max_pending: int = 3
    retry_initial_s: float = 1.0
    retry_max_s: float = 300.0
    max_inbound_chars: int = 16_000
    max_queued_runs: int = 3
    webchat: bool = True
    accounts: tuple[AccountOptions, ...] = ()
