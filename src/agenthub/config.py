"""Settings: every limit is a named setting with a default.

Precedence, lowest first: defaults, the ``--config`` file (JSON or TOML), the
overrides stored by ``config.set``/``config.patch``, then environment and CLI
flags. Secrets are ``SecretStr`` so they never reach a log or ``config.get``.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .protocol import _json

__all__ = [
    "REDACTED",
    "AgentBoxSettings",
    "AnthropicSettings",
    "ChannelsSettings",
    "DemoSettings",
    "DiscordSettings",
    "GatewaySettings",
    "LangBotSettings",
    "Limits",
    "MyAgentSettings",
    "OpenAISettings",
    "SecuritySettings",
    "SlackSettings",
    "TelegramSettings",
    "WebChatSettings",
    "is_loopback",
    "load_file",
    "merge_patch",
    "redact",
]

REDACTED = "__REDACTED__"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Limits(_Section):
    max_payload: int = Field(1024 * 1024, ge=1024, description="largest frame after connect (bytes)")
    max_buffered_bytes: int = Field(
        4 * 1024 * 1024, ge=4096, description="per-connection send buffer before 'slow consumer' close"
    )
    pre_connect_max_bytes: int = Field(64 * 1024, ge=1024, description="largest frame before connect")
    handshake_timeout_ms: int = Field(10_000, ge=100, description="time allowed to send connect")
    tick_interval_ms: int = Field(15_000, ge=100, description="tick event period")
    signature_skew_ms: int = Field(120_000, ge=1000, description="allowed device signedAt skew")
    history_per_stream: int = Field(10_000, ge=10, description="events kept per run stream for replay")
    max_streams: int = Field(2_000, ge=10, description="run streams kept for replay")
    idempotency_ttl_s: int = Field(600, ge=1, description="how long idempotency keys replay")
    chat_delta_interval_ms: int = Field(150, ge=0, description="min spacing of chat delta events")
    run_timeout_s: int = Field(600, ge=1, description="a run is failed after this long")
    presence_debounce_ms: int = Field(100, ge=0, description="presence broadcasts are coalesced over this window")
    transcript_cache_sessions: int = Field(
        128, ge=0, description="sessions whose recent transcript is kept in memory for chat.history (0: off)"
    )
    transcript_cache_messages: int = Field(
        200, ge=1, le=100_000, description="newest messages kept per cached session (larger reads go to the store)"
    )
    transcript_cache_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="approximate memory the transcript cache may hold (text + overhead)"
    )


class DemoSettings(_Section):
    word_delay_ms: int = Field(20, ge=0, le=10_000)


class OpenAISettings(_Section):
    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"


class AnthropicSettings(_Section):
    base_url: str = "https://api.anthropic.com"
    api_key: SecretStr | None = None
    model: str = "claude-sonnet-4-5"


class MyAgentSettings(_Section):
    """The MyAgent dialect (seed 003), served on its own port."""

    port: int | None = Field(None, ge=0, le=65535, description="MyAgent listener port (off when unset)")
    host: str | None = Field(None, description="MyAgent bind address (default: the gateway's host)")
    state_secret_key: SecretStr | None = Field(None, description="HMAC key for exported session state")
    retention_s: int = Field(3600, ge=1, description="how long a session's events stay replayable")
    state_ttl_s: int = Field(7 * 86400, ge=1, description="how long an exported state can be restored")
    confirm_timeout_s: float = Field(300, gt=0, description="wait for user.response before failing a step")


class AgentBoxSettings(_Section):
    """The AgentBox dialect (seed 002): always on the main listener, optionally on its own port too."""

    port: int | None = Field(None, ge=0, le=65535, description="extra AgentBox listener port (off when unset)")


class LangBotSettings(_Section):
    """The LangBot dialect (seed 004), on the main listener."""

    heartbeat_interval_s: float = Field(30, gt=0, description="ping period; 2 silent periods close")


class SecuritySettings(_Section):
    """Authentication modes, pairing, browser origins, TLS and abuse limits."""

    auth_mode: Literal["auto", "none", "token", "password", "trusted-proxy"] = Field(
        "auto", description="auto: password if set, else token if set, else none (loopback only)"
    )
    password: SecretStr | None = Field(None, description="shared password for auth_mode password")
    trusted_proxy_header: str = Field("x-forwarded-user", description="header carrying the proxied identity")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="proxies (addresses or networks) trusted for the identity and X-Forwarded-For"
    )
    require_pairing: bool = Field(False, description="unknown devices need approval even on loopback")
    device_cache_size: int = Field(4096, ge=1, description="paired device records kept in memory")
    allowed_origins: list[str] = Field(
        default_factory=list, description="browser origins allowed to open a WebSocket (default: the gateway's own)"
    )
    tls_cert: Path | None = Field(None, description="PEM certificate: serve wss:// and https://")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert")
    auth_max_failures: int = Field(10, ge=1, description="failed auths per IP within auth_window_ms before lockout")
    auth_window_ms: int = Field(60_000, ge=1000, description="window for counting failed auths")
    auth_lockout_ms: int = Field(60_000, ge=100, description="lockout after too many failed auths (retryAfterMs)")
    max_unauthorized_calls: int = Field(10, ge=1, description="FORBIDDEN answers in a row before a 1008 close")
    max_preauth_per_ip: int = Field(64, ge=1, description="sockets per IP that have not completed connect")
    approval_timeout_ms: int = Field(60_000, ge=100, description="dangerous node commands are denied after this")

    def resolved_auth_mode(self, token: SecretStr | None) -> str:
        if self.auth_mode != "auto":
            return self.auth_mode
        if self.password is not None:
            return "password"
        return "token" if token is not None else "none"


# -- messaging channels (agenthub.channels) ---------------------------------------------------
# One section per platform. The section's own fields are its "default" account; ``accounts``
# adds named accounts, each overriding the section's fields it sets (OpenClaw's layout).
# A platform runs when its section is present in the config and a token resolves (config,
# ``*_file``, then the platform's environment variable, read only when the section is present).

DmPolicy = Literal["pairing", "allowlist", "open", "disabled"]
DmScope = Literal["main", "per-peer", "per-channel-peer", "per-account-channel-peer"]


class _ChannelAccount(_Section):
    """Access and pacing settings every platform account has."""

    enabled: bool = Field(True, description="start this account with the gateway")
    name: str | None = Field(None, description="display name in channels.status")
    dm_policy: DmPolicy = Field(
        "pairing",
        description="unknown direct-message senders: pairing (get a code an operator approves), "
        "allowlist (allow_from only), open (anyone), disabled (ignore direct messages)",
    )
    allow_from: list[str] = Field(default_factory=list, description="sender or chat ids always allowed ('*': anyone)")
    require_mention: bool = Field(True, description="in groups and channels, answer only when mentioned")
    edit_interval_ms: int = Field(1000, ge=100, le=60_000, description="min spacing of edits to one streamed reply")
    max_retry_wait_s: float = Field(
        120, gt=0, le=3600, description="longest rate-limit wait (429 retry_after) honoured before giving up"
    )

    @field_validator("allow_from", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        """Chat ids are numbers in TOML and JSON; keep them as text, as the platforms send them."""
        if isinstance(value, list | tuple):
            return [str(item) for item in value]
        return value


# Settings that belong to one account only: a named account never inherits them from the section.
_OWN_FIELDS = frozenset(
    {"bot_token", "bot_token_file", "signing_secret", "webhook_url", "webhook_secret", "events_path", "name"}
)


def _account_map(section: _ChannelAccount, accounts: Mapping[str, _ChannelAccount]) -> dict[str, Any]:
    """The section's accounts by id: ``default`` from the section itself, named ones overriding it.

    ``default`` exists when no named account is configured, when one is named
    ``default``, or when the section has its own token; a named account
    inherits the section's settings it does not set, except credentials.
    """
    cls = type(next(iter(accounts.values()))) if accounts else None
    own = section.model_dump(exclude={"accounts"}, exclude_unset=True)
    shared = {k: v for k, v in own.items() if k not in _OWN_FIELDS}
    out: dict[str, Any] = {}
    has_token = bool(own.get("bot_token") or own.get("bot_token_file"))
    if not accounts or "default" in accounts or has_token:
        extra = accounts["default"].model_dump(exclude_unset=True) if "default" in accounts else {}
        out["default"] = type(section).model_validate({**own, **extra})
    for name, account in accounts.items():
        if name != "default" and cls is not None:
            out[name] = cls.model_validate({**shared, **account.model_dump(exclude_unset=True)})
    return out


def _secret_from(
    value: SecretStr | None, file: Path | None, env: Mapping[str, str], env_key: str | None
) -> tuple[str | None, str]:
    """A secret and where it came from (OpenClaw's ``tokenSource``: config, file, env or none)."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value(), "config"
    if file is not None:
        text = file.expanduser().read_text().strip()
        if text:
            return text, "file"
    if env_key and env.get(env_key):
        return env[env_key], "env"
    return None, "none"


class TelegramAccountSettings(_ChannelAccount):
    """A Telegram bot (python-telegram-bot), long polling by default."""

    bot_token: SecretStr | None = Field(None, description="BotFather token (or bot_token_file, or TELEGRAM_BOT_TOKEN)")
    bot_token_file: Path | None = Field(None, description="file holding the bot token")
    api_base_url: str = Field("https://api.telegram.org", description="Bot API server (a local one in tests)")
    mode: Literal["polling", "webhook"] = Field("polling", description="how updates arrive")
    poll_timeout_s: int = Field(30, ge=0, le=50, description="getUpdates long-poll timeout")
    webhook_url: str | None = Field(
        None, description="public https URL Telegram posts to (webhook mode); it must reach /telegram/<account>/webhook"
    )
    webhook_secret: SecretStr | None = Field(None, description="X-Telegram-Bot-Api-Secret-Token of webhook posts")
    typing_interval_ms: int = Field(4000, ge=500, le=60_000, description="sendChatAction typing period during a run")
    max_message_chars: int = Field(4096, ge=16, le=4096, description="a longer reply is split into several messages")

    def token(self, env: Mapping[str, str], env_key: str | None) -> tuple[str | None, str]:
        return _secret_from(self.bot_token, self.bot_token_file, env, env_key)


class TelegramSettings(TelegramAccountSettings):
    accounts: dict[str, TelegramAccountSettings] = Field(default_factory=dict, description="named extra accounts")

    def all_accounts(self) -> dict[str, TelegramAccountSettings]:
        return _account_map(self, self.accounts)


class SlackAccountSettings(_ChannelAccount):
    """A Slack app (slack-bolt) receiving the Events API over HTTP on the gateway."""

    bot_token: SecretStr | None = Field(None, description="xoxb- bot token (or bot_token_file, or SLACK_BOT_TOKEN)")
    bot_token_file: Path | None = Field(None, description="file holding the bot token")
    signing_secret: SecretStr | None = Field(None, description="app signing secret (or SLACK_SIGNING_SECRET)")
    api_base_url: str = Field("https://slack.com/api/", description="Web API base (a local one in tests)")
    events_path: str | None = Field(
        None, description="Events API request URL path on the gateway (default /slack/events, /slack/<account>/events)"
    )
    max_message_chars: int = Field(4000, ge=16, le=40_000, description="a longer reply is split into several messages")

    def token(self, env: Mapping[str, str], env_key: str | None) -> tuple[str | None, str]:
        return _secret_from(self.bot_token, self.bot_token_file, env, env_key)

    def secret(self, env: Mapping[str, str], env_key: str | None) -> tuple[str | None, str]:
        return _secret_from(self.signing_secret, None, env, env_key)


class SlackSettings(SlackAccountSettings):
    accounts: dict[str, SlackAccountSettings] = Field(default_factory=dict, description="named extra accounts")

    def all_accounts(self) -> dict[str, SlackAccountSettings]:
        return _account_map(self, self.accounts)


class DiscordAccountSettings(_ChannelAccount):
    """A Discord bot (discord.py) on the gateway WebSocket, message content intent on."""

    bot_token: SecretStr | None = Field(None, description="bot token (or bot_token_file, or DISCORD_BOT_TOKEN)")
    bot_token_file: Path | None = Field(None, description="file holding the bot token")
    api_base_url: str = Field("https://discord.com/api/v10", description="REST base (one per process: discord.py)")
    gateway_url: str = Field("wss://gateway.discord.gg/", description="gateway WebSocket (one per process)")
    max_message_chars: int = Field(2000, ge=16, le=2000, description="a longer reply is split into several messages")

    def token(self, env: Mapping[str, str], env_key: str | None) -> tuple[str | None, str]:
        return _secret_from(self.bot_token, self.bot_token_file, env, env_key)


class DiscordSettings(DiscordAccountSettings):
    accounts: dict[str, DiscordAccountSettings] = Field(default_factory=dict, description="named extra accounts")

    def all_accounts(self) -> dict[str, DiscordAccountSettings]:
        return _account_map(self, self.accounts)


class WebChatSettings(_Section):
    """The gateway's own browser chat, listed in channels.status like the other channels."""

    enabled: bool = True


class ChannelsSettings(_Section):
    """Messaging channels: sessions, pairing and the platforms."""

    dm_scope: DmScope = Field(
        "per-channel-peer",
        description="direct-message sessions: main (one shared), per-peer, per-channel-peer, per-account-channel-peer",
    )
    pairing_code_ttl_s: int = Field(3600, ge=60, description="an unapproved pairing code expires after this")
    pairing_max_pending: int = Field(3, ge=1, le=100, description="pending pairing requests per channel account")
    retry_initial_s: float = Field(1.0, gt=0, le=60, description="first wait before restarting a failed channel")
    retry_max_s: float = Field(300.0, gt=0, description="longest wait between restarts of a failed channel")
    max_inbound_chars: int = Field(16_000, ge=1, le=200_000, description="longer inbound messages are cut")
    max_queued_runs: int = Field(
        3, ge=1, le=100, description="runs a chat may have waiting or going; more messages are turned away"
    )
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    webchat: WebChatSettings = Field(default_factory=WebChatSettings)

    def present(self, platform: str) -> bool:
        """Whether the config names this platform (only then are its env variables read)."""
        return platform in self.model_fields_set


# Keys whose values are secrets anywhere under ``channels`` (redacted in config.get and logs).
CHANNEL_SECRET_KEYS = frozenset({"bot_token", "signing_secret", "webhook_secret", "app_token"})


class GatewaySettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(18789, ge=0, le=65535)
    data_dir: Path = Path("~/.agenthub")
    token: SecretStr | None = None
    provider: Literal["demo", "openai", "anthropic"] = "demo"
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    limits: Limits = Field(default_factory=Limits)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    anthropic: AnthropicSettings = Field(default_factory=AnthropicSettings)
    myagent: MyAgentSettings = Field(default_factory=MyAgentSettings)
    langbot: LangBotSettings = Field(default_factory=LangBotSettings)
    agentbox: AgentBoxSettings = Field(default_factory=AgentBoxSettings)
    dev: bool = Field(False, description="development mode: allows an ephemeral MyAgent state key")
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    channels: ChannelsSettings = Field(default_factory=ChannelsSettings)

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def auth_mode(self) -> str:
        return "token" if self.token is not None else "none"

    def public_dict(self) -> dict[str, Any]:
        """The config with every secret replaced by ``REDACTED`` (for config.get and logs)."""
        return redact(self.model_dump(mode="json"), self)


# Restart-only fields: config.set may store them, but they apply at next start.
RESTART_FIELDS = frozenset(
    {"host", "port", "data_dir", "log_format", "log_level", "myagent", "dev", "agentbox", "security", "channels"}
)


def redact(data: dict[str, Any], settings: GatewaySettings) -> dict[str, Any]:
    out = dict(data)
    if settings.token is not None:
        out["token"] = REDACTED
    if settings.security.password is not None:
        out["security"] = {**(out.get("security") or {}), "password": REDACTED}
    for section in ("openai", "anthropic"):
        sec = dict(out.get(section) or {})
        if sec.get("api_key"):
            sec["api_key"] = REDACTED
        out[section] = sec
    myagent = dict(out.get("myagent") or {})
    if myagent.get("state_secret_key"):
        myagent["state_secret_key"] = REDACTED
        out["myagent"] = myagent
    if "channels" in out:
        out["channels"] = _redact_keys(out["channels"], CHANNEL_SECRET_KEYS)
    return out


def _redact_keys(data: Any, keys: frozenset[str]) -> Any:
    """``data`` with every non-empty value under one of ``keys`` replaced, at any depth."""
    if isinstance(data, dict):
        return {k: REDACTED if k in keys and v else _redact_keys(v, keys) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact_keys(v, keys) for v in data]
    return data


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def load_file(path: Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into a plain dict."""
    text = path.read_text()
    if path.suffix == ".toml":
        return tomllib.loads(text)
    data = _json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: config must be an object")
    return data


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
