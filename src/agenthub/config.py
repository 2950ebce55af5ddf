"""Settings: one pydantic-settings model validates the config file, the environment and the flags.

Layers, lowest first (``LAYERS``): the model's defaults, the ``--config`` file
(JSON or TOML), the overrides stored by ``config.set``/``config.patch``, the
environment (``AGENTHUB_...``, nested with ``__``, e.g.
``AGENTHUB_LIMITS__MAX_PAYLOAD``; the older names in ``ENV_ALIASES`` still
work), then command-line flags. ``merge_layers`` merges them and remembers the
layer each value came from, so ``config.get`` and ``agenthub config show`` can
say where a value came from.

Secrets are ``SecretStr`` (never in a log or ``config.get``) and come from the
environment, a flag, or a ``*_file`` setting; they are never stored in the
database (``config.patch`` refuses them, see ``SECRET_PATHS``).
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from .protocol import _json

__all__ = [
    "DEFAULT_HEARTBEAT_PROMPT",
    "ENV_ALIASES",
    "ENV_PREFIX",
    "LAYERS",
    "REDACTED",
    "RESTART_FIELDS",
    "SECRET_PATHS",
    "SECURITY_PATHS",
    "AgentBoxSettings",
    "AnthropicSettings",
    "CanvasSettings",
    "ChannelsSettings",
    "ConfigFileError",
    "CronSettings",
    "DemoSettings",
    "DiscordSettings",
    "GatewaySettings",
    "HeartbeatSettings",
    "HookMapping",
    "HooksSettings",
    "LangBotSettings",
    "Limits",
    "MyAgentSettings",
    "OpenAISettings",
    "OtelSettings",
    "SecuritySettings",
    "SlackSettings",
    "TelegramSettings",
    "WebChatSettings",
    "env_layer",
    "env_names",
    "flatten",
    "is_loopback",
    "load_file",
    "mask_url_password",
    "merge_layers",
    "merge_patch",
    "redact",
    "reference_markdown",
    "security_paths",
    "setting_fields",
    "validation_messages",
    "value_sources",
]

REDACTED = "__REDACTED__"
ENV_PREFIX = "AGENTHUB_"
# Where a value can come from, lowest precedence first.
LAYERS = ("default", "file", "stored", "env", "flag")


def _f(default: Any = None, description: str = "", *, flag: str | None = None, **kw: Any) -> Any:
    """A field with its description and, when the gateway command has one, its flag (``agenthub gateway``)."""
    extra: dict[str, Any] | None = {"flag": flag} if flag else None
    if callable(default):
        return Field(default_factory=default, description=description, json_schema_extra=extra, **kw)
    return Field(default, description=description, json_schema_extra=extra, **kw)


def _read_secret(path: Any, what: str) -> SecretStr:
    """The content of a ``*_file`` secret (one trailing newline removed, as ``echo`` writes it)."""
    p = Path(str(path)).expanduser()
    try:
        text = p.read_text()
    except OSError as exc:
        raise ValueError(f"{what}: cannot read {p}: {exc.strerror or exc}") from None
    value = text[:-1] if text.endswith("\n") else text
    if not value:
        raise ValueError(f"{what}: {p} is empty")
    return SecretStr(value)


def _secret_value(value: Any) -> str | None:
    if value is None:
        return None
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _fill_from_file(data: Any, secret: str, file_field: str) -> Any:
    """``secret`` from ``file_field`` when that is set; both set with different values is an error."""
    if not isinstance(data, dict) or data.get(file_field) in (None, ""):
        return data
    from_file = _read_secret(data[file_field], file_field)
    current = _secret_value(data.get(secret))
    if current is not None and current != from_file.get_secret_value():
        raise ValueError(f"both {secret} and {file_field} are set: keep one")
    return {**data, secret: from_file}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Limits(_Section):
    """Every size, count and time limit, with its default."""

    max_payload: int = _f(1024 * 1024, "largest frame after connect (bytes)", ge=1024)
    max_buffered_bytes: int = _f(
        4 * 1024 * 1024, "per-connection send buffer before 'slow consumer' close (bytes)", ge=4096
    )
    pre_connect_max_bytes: int = _f(64 * 1024, "largest frame before connect (bytes)", ge=1024)
    handshake_timeout_ms: int = _f(10_000, "time allowed to send connect", ge=100)
    tick_interval_ms: int = _f(15_000, "tick event period", ge=100)
    signature_skew_ms: int = _f(120_000, "allowed device signedAt skew", ge=1000)
    history_per_stream: int = _f(10_000, "events kept per run stream for replay", ge=10)
    max_streams: int = _f(2_000, "run streams kept for replay", ge=10)
    history_bytes_per_stream: int = _f(
        4 * 1024 * 1024, "replay history bytes per stream; the oldest events go first", ge=16 * 1024
    )
    history_bytes_total: int = _f(
        64 * 1024 * 1024, "replay history bytes in all; the least recent streams go first", ge=64 * 1024
    )
    max_message_chars: int = _f(100_000, "longest message a run accepts, from any dialect (characters)", ge=1)
    transcript_blocks_chars: int = _f(
        4_000,
        "a turn's thinking, and its tool calls, each kept up to this many characters with the stored answer "
        "(chat.history meta; a 200-message history must fit max_buffered_bytes); 0: not kept",
        ge=0,
    )
    max_inflight_per_connection: int = _f(
        64, "requests a native connection may have unanswered; more get UNAVAILABLE (retryable)", ge=1
    )
    idempotency_ttl_s: int = _f(600, "how long idempotency keys replay", ge=1)
    chat_delta_interval_ms: int = _f(150, "min spacing of chat delta events", ge=0)
    run_timeout_s: int = _f(600, "a run is failed after this long", ge=1)
    database_probe_s: float = _f(
        2, "how often the database is pinged (health shows it; new runs wait while it is down)", gt=0, le=3600
    )
    presence_debounce_ms: int = _f(100, "presence broadcasts are coalesced over this window", ge=0)
    transcript_cache_sessions: int = _f(
        128, "sessions whose recent transcript is kept in memory for chat.history (0: off)", ge=0
    )
    transcript_cache_messages: int = _f(
        200, "newest messages kept per cached session (larger reads go to the store)", ge=1, le=100_000
    )
    log_buffer_bytes: int = _f(
        1024 * 1024, "newest log lines kept in memory for logs.tail (openclaw logs); 0: off", ge=0
    )
    finished_runs: int = _f(
        1_000, "ended runs kept in memory for retries and agent.wait (older ones are read from the store)", ge=1
    )
    finished_runs_bytes: int = _f(
        16 * 1024 * 1024,
        "memory the ended runs kept for retries and agent.wait may hold (answers + overhead); the oldest go first",
        ge=64 * 1024,
    )
    malloc_arenas: int = _f(
        1,
        "glibc malloc arenas the gateway's threads share (set at start; MALLOC_ARENA_MAX wins); a thread's own "
        "arena keeps what it freed out of malloc_trim's reach; 0: glibc's default, 8 per core",
        ge=0,
        le=1024,
    )
    malloc_trim_interval_s: float = _f(
        5,
        "how often memory the gateway freed is handed back to the OS (glibc malloc_trim: its arenas keep what a "
        "burst of load freed); 0: never",
        ge=0,
        le=3600,
    )
    transcript_cache_bytes: int = _f(
        64 * 1024 * 1024, "approximate memory the transcript cache may hold (text + overhead)", ge=0
    )
    header_timeout_s: float = Field(
        10, gt=0, description="a new TCP connection must send a whole HTTP request head within this (slowloris)"
    )
    idle_timeout_s: float = Field(
        75, gt=0, description="an HTTP connection with no request in progress is closed after this (at restart)"
    )
    max_connections: int = Field(
        16_384, ge=1, description="open TCP connections on all listeners; past it new ones get 503 and are closed"
    )
    max_connections_per_listener: int = Field(
        12_288, ge=1, description="open TCP connections on one listener (main, AgentBox, MyAgent port)"
    )


class DemoSettings(_Section):
    """The built-in demo provider (no network)."""

    word_delay_ms: int = _f(20, "pause between streamed words", ge=0, le=10_000)


class _ProviderSettings(_Section):
    api_key: SecretStr | None = _f(None, "API key (secret: environment or api_key_file, never config.patch)")
    api_key_file: Path | None = _f(None, "file holding the API key")

    @model_validator(mode="before")
    @classmethod
    def _key_file(cls, data: Any) -> Any:
        return _fill_from_file(data, "api_key", "api_key_file")


class OpenAISettings(_ProviderSettings):
    """The OpenAI-compatible provider (``provider = "openai"``)."""

    api_key_file: Path | None = _f(None, "file holding the API key", flag="--openai-api-key-file")

    base_url: str = _f("https://api.openai.com/v1", "API base URL (any OpenAI-compatible server)")
    model: str = _f("gpt-4o-mini", "model name")


class AnthropicSettings(_ProviderSettings):
    """The Anthropic provider (``provider = "anthropic"``)."""

    api_key_file: Path | None = _f(None, "file holding the API key", flag="--anthropic-api-key-file")

    base_url: str = _f("https://api.anthropic.com", "API base URL")
    model: str = _f("claude-sonnet-4-5", "model name")


class MyAgentSettings(_Section):
    """The MyAgent dialect (seed 003), served on its own port."""

    port: int | None = _f(None, "MyAgent listener port (off when unset)", flag="--myagent-port", ge=0, le=65535)
    host: str | None = _f(None, "MyAgent bind address (default: the gateway's host)")
    state_secret_key: SecretStr | None = _f(
        None, "HMAC key for exported session state (secret)", flag="--myagent-secret"
    )
    state_secret_key_file: Path | None = _f(None, "file holding state_secret_key", flag="--myagent-secret-file")
    retention_s: int = _f(3600, "how long a session's events stay replayable", ge=1)
    state_ttl_s: int = _f(7 * 86400, "how long an exported state can be restored", ge=1)
    confirm_timeout_s: float = _f(300, "wait for user.response before failing a step", gt=0)

    @model_validator(mode="before")
    @classmethod
    def _key_file(cls, data: Any) -> Any:
        return _fill_from_file(data, "state_secret_key", "state_secret_key_file")


class AgentBoxSettings(_Section):
    """The AgentBox dialect (seed 002): always on the main listener, and on its own port with ``--agentbox``."""

    enabled: bool = _f(
        False, "also serve AgentBox on its own port (agentbox.port, the seed's 18080)", flag="--agentbox"
    )
    port: int = _f(
        18080,
        "the AgentBox port (0 picks a free one); setting it turns the port on",
        flag="--agentbox-port",
        ge=0,
        le=65535,
    )
    stats_interval_s: float = _f(
        10, "period of the 'stats' system topic's snapshots (0: only on demand)", ge=0, le=86_400
    )

    @model_validator(mode="before")
    @classmethod
    def _port_turns_on(cls, data: Any) -> Any:
        """``--agentbox-port N`` alone turns the port on (as before ``--agentbox``); an unset port is the default."""
        if not isinstance(data, dict) or "port" not in data:
            return data
        data = dict(data)
        if data["port"] is None:
            del data["port"]  # an older stored or file config's "off"
        else:
            data.setdefault("enabled", True)
        return data


class LangBotSettings(_Section):
    """The LangBot dialect (seed 004), on the main listener."""

    heartbeat_interval_s: float = _f(30, "ping period; 2 silent periods close", gt=0)
    max_images: int = _f(4, "Image components in one message (more are refused)", ge=0, le=64)
    max_image_bytes: int = _f(
        5 * 1024 * 1024,
        "decoded size of one base64 Image component (the frame limit, limits.max_payload, also holds)",
        ge=1024,
    )


class SecuritySettings(_Section):
    """Authentication modes, pairing, browser origins, TLS and abuse limits."""

    auth_mode: Literal["auto", "none", "token", "password", "trusted-proxy"] = _f(
        "auto", "auto: password if set, else token if set, else none (loopback only)", flag="--auth"
    )
    password: SecretStr | None = _f(None, "shared password for auth_mode password (secret)", flag="--password")
    password_file: Path | None = _f(None, "file holding the password", flag="--password-file")
    trusted_proxy_header: str = _f(
        "x-forwarded-user", "header carrying the proxied identity", flag="--trusted-proxy-header"
    )
    trusted_proxies: list[str] = _f(
        list, "proxies (addresses or networks) trusted for the identity and X-Forwarded-For", flag="--trusted-proxy"
    )
    require_pairing: bool = _f(False, "unknown devices need approval even on loopback", flag="--require-pairing")
    device_cache_size: int = _f(4096, "paired device records kept in memory", ge=1)
    allowed_origins: list[str] = _f(
        list, "browser origins allowed to open a WebSocket (default: the gateway's own)", flag="--allowed-origin"
    )
    tls_cert: Path | None = _f(None, "PEM certificate (chain): serve wss:// and https://", flag="--tls-cert")
    tls_key: Path | None = _f(None, "PEM private key for tls_cert", flag="--tls-key")
    auth_max_failures: int = _f(10, "failed auths per IP within auth_window_ms before lockout", ge=1)
    auth_window_ms: int = _f(60_000, "window for counting failed auths", ge=1000)
    auth_lockout_ms: int = _f(60_000, "lockout after too many failed auths (retryAfterMs)", ge=100)
    max_unauthorized_calls: int = _f(10, "FORBIDDEN answers in a row before a 1008 close", ge=1)
    max_preauth_per_ip: int = _f(
        64, "sockets per IP without a proven credential (before connect/auth, or anonymous)", ge=1
    )
    approval_timeout_ms: int = _f(60_000, "dangerous node commands are denied after this", ge=100)
    langbot_default_public: bool | None = _f(
        None,
        "the LangBot 'default' pipeline takes sockets without a credential (unset: only when the gateway has no auth)",
    )
    metrics_public: bool = _f(
        False,
        "serve /metrics without the gateway credential (for scrapers that cannot send a Bearer token)",
        flag="--metrics-public",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        """Origins are listed one by one: a wildcard would let every web page act as the user."""
        for origin in origins:
            if "*" in origin or origin.strip().lower() in ("", "null"):
                raise ValueError(f"{origin!r}: list each allowed origin explicitly (scheme://host:port), no wildcards")
        return origins

    @model_validator(mode="before")
    @classmethod
    def _password_file(cls, data: Any) -> Any:
        return _fill_from_file(data, "password", "password_file")

    def resolved_auth_mode(self, token: SecretStr | None) -> str:
        if self.auth_mode != "auto":
            return self.auth_mode
        if self.password is not None:
            return "password"
        return "token" if token is not None else "none"


class RedisSettings(_Section):
    """Tuning of the shared Redis (``redis_url``) that several gateway processes use together."""

    prefix: str = _f("agenthub", "key prefix, so several gateways can share one Redis", min_length=1, max_length=64)
    node_ttl_ms: int = _f(
        10_000, "a process that stops renewing its heartbeat this long is dead: its runs end as errors", ge=1000
    )
    rpc_timeout_s: float = _f(5, "wait for another process to answer a forwarded abort or wait", gt=0, le=600)
    publish_timeout_s: float = _f(
        5, "while Redis is unreachable, events wait this long before going to local clients only", gt=0, le=600
    )
    stream_ttl_s: int = _f(3600, "a stream's replay history expires this long after its last event", ge=10)
    firehose_len: int = _f(100_000, "entries kept in the shared log every process reads (MAXLEN ~)", ge=1000)
    max_pending: int = _f(100_000, "events queued for Redis per process before they go to local clients only", ge=100)
    lock_ttl_ms: int = _f(30_000, "lease of a cross-process lock (idempotency keys)", ge=1000)


class OtelSettings(_Section):
    """OpenTelemetry traces (``pip install 'agenthub[otel]'``): a span per RPC and per run.

    Spans go to an OTLP/HTTP collector configured the OpenTelemetry way
    (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ...); an
    embedding program that installed its own tracer provider keeps it.
    """

    enabled: bool = _f(False, "export OpenTelemetry traces (needs the otel extra)", flag="--otel")
    service_name: str = _f("agenthub", "the service.name resource attribute of the spans", min_length=1)


class CronSettings(_Section):
    """Scheduled jobs (``cron.*``): see README "Scheduled runs" for the missed-run policy."""

    enabled: bool = Field(True, description="fire jobs on schedule (jobs can be stored either way)")
    max_jobs: int = Field(200, ge=1, le=100_000, description="jobs the gateway keeps")
    max_concurrent_runs: int = Field(
        4, ge=1, le=1000, description="scheduled runs (cron and heartbeat) in flight at once; the rest wait"
    )
    min_interval_ms: int = Field(1000, ge=100, description="shortest accepted period of an every/cron schedule")
    missed_run_policy: Literal["run-once", "skip"] = Field(
        "run-once", description="jobs due while the gateway was down: run once after start, or skip to the next slot"
    )
    catchup_delay_ms: int = Field(2000, ge=0, description="delay after start before a missed job runs")
    runs_per_job: int = Field(200, ge=1, le=100_000, description="run history entries kept per job")


DEFAULT_HEARTBEAT_PROMPT = (
    "Heartbeat: read the system events below, if any, and report anything that needs attention. "
    "If nothing needs attention, reply HEARTBEAT_OK."
)


class HeartbeatSettings(_Section):
    """Periodic agent turns whose reply is delivered only when it says something (HEARTBEAT_OK rule)."""

    interval_s: int = Field(0, ge=0, description="seconds between heartbeat turns per session (0: off)")
    sessions: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        default_factory=lambda: ["main"], max_length=64, description="sessions that get heartbeat turns"
    )
    prompt: str = Field(DEFAULT_HEARTBEAT_PROMPT, min_length=1, max_length=20_000)
    ack_max_chars: int = Field(
        300, ge=0, le=10_000, description="a reply starting or ending with HEARTBEAT_OK and at most this long is silent"
    )
    target: str | None = Field(None, max_length=128, description="channel that receives non-silent replies")
    to: str | None = Field(None, max_length=512, description="conversation on that channel")
    account_id: str | None = Field(None, max_length=128)
    timeout_s: int = Field(600, ge=1, description="a heartbeat turn is aborted after this long")
    max_pending_events: int = Field(20, ge=1, le=1000, description="queued system events kept per session")
    max_event_chars: int = Field(2000, ge=1, le=100_000, description="longest system event text")
    max_event_sessions: int = Field(1000, ge=1, le=1_000_000, description="sessions with queued system events")


class HookMapping(_Section):
    """``POST <hooks.path>/<name>``: a named hook mapped to an agent turn or a wake."""

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    action: Literal["agent", "wake"] = "agent"
    message_template: str = Field("", max_length=20_000, description="agent input; {{payload.x}} is replaced")
    text_template: str = Field("", max_length=20_000, description="wake text; {{payload.x}} is replaced")
    session_key: str | None = Field(None, max_length=512, description="fixed session (default: a new hook:<id>)")
    wake_mode: Literal["now", "next-heartbeat"] = "now"
    deliver: bool = Field(False, description="deliver the reply to channel/to")
    channel: str | None = Field(None, max_length=128)
    to: str | None = Field(None, max_length=512)


class HooksSettings(_Section):
    """Inbound webhooks (OpenClaw's ``hooks``): outside systems start runs or wake the agent."""

    enabled: bool = Field(False, description="serve POST <path>/wake, <path>/agent and mapped hooks")
    token: SecretStr | None = Field(None, description="hook token (or AGENTHUB_HOOKS_TOKEN); never the gateway token")
    token_file: Path | None = Field(None, description="file holding the hook token")
    token_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the hook token (keeps only the hash at rest)"
    )
    path: str = Field("/hooks", pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$", max_length=128)
    max_body_bytes: int = Field(256 * 1024, ge=64, le=64 * 1024 * 1024, description="largest request body")
    default_session_key: str | None = Field(None, max_length=512, description="session for agent hooks")
    allow_request_session_key: bool = Field(False, description="let callers pick sessionKey in the body")
    mappings: list[HookMapping] = Field(default_factory=list, max_length=256)


class CanvasSettings(_Section):
    """The canvas host: agent-editable HTML with live reload, on its own port."""

    enabled: bool = Field(False, description="serve the canvas folder")
    port: int = Field(18793, ge=0, le=65535)
    host: str | None = Field(None, description="bind address (default: the gateway's host)")
    root: Path | None = Field(None, description="the canvas folder (default: <data_dir>/canvas)")
    max_file_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="largest file served or written by the agent")
    max_live_clients: int = Field(64, ge=1, le=100_000, description="open live-reload sockets")
    force_polling: bool = Field(False, description="poll the folder instead of using OS file events")
    poll_delay_ms: int = Field(300, ge=50, description="polling period when force_polling is set")


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


class GatewaySettings(BaseSettings):
    """Every setting of the gateway. Validated from the merged layers (``merge_layers``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="forbid",
        validate_assignment=True,
    )

    host: str = _f("127.0.0.1", "bind address (not loopback: needs authentication)", flag="--host")
    port: int = _f(18789, "main port (0 picks a free one)", flag="--port", ge=0, le=65535)
    data_dir: Path = _f(Path("~/.agenthub"), "state directory (created 0700; one gateway at a time)", flag="--data-dir")
    database_url: str | None = _f(
        None,
        "SQLAlchemy URL of the database, e.g. postgresql+asyncpg://user:pw@host:5432/agenthub "
        "(default: SQLite, agenthub.db in the data dir)",
        flag="--database-url",
    )
    database_pool_size: int = _f(10, "connections in a database server's pool", ge=1, le=1000)
    database_timeout_s: float = _f(
        10, "wait for a pooled database connection, or to connect, before failing", gt=0, le=600
    )
    redis_url: str | None = _f(
        None,
        "Redis URL shared by several gateway processes, e.g. redis://host:6379/0 "
        "(default: none, the gateway is one process)",
        flag="--redis-url",
    )
    workers: int | None = _f(
        None,
        "gateway processes serving one port (SO_REUSEPORT); default: the number of cores with redis_url, else 1",
        flag="--workers",
        ge=1,
        le=256,
    )
    redis: RedisSettings = _f(RedisSettings, "the shared Redis (with redis_url)")
    token: SecretStr | None = _f(None, "shared gateway token (secret)", flag="--token")
    token_file: Path | None = _f(None, "file holding the gateway token", flag="--token-file")
    provider: Literal["demo", "openai", "anthropic"] = _f("demo", "agent provider", flag="--provider")
    log_format: Literal["text", "json"] = _f("text", "log line format", flag="--log-format")
    log_level: str = _f("INFO", "log level (DEBUG, INFO, WARNING, ERROR)", flag="--log-level")
    limits: Limits = _f(Limits, "sizes, counts and times")
    demo: DemoSettings = _f(DemoSettings, "the demo provider")
    openai: OpenAISettings = _f(OpenAISettings, "the OpenAI provider")
    anthropic: AnthropicSettings = _f(AnthropicSettings, "the Anthropic provider")
    myagent: MyAgentSettings = _f(MyAgentSettings, "the MyAgent dialect")
    langbot: LangBotSettings = _f(LangBotSettings, "the LangBot dialect")
    agentbox: AgentBoxSettings = _f(AgentBoxSettings, "the AgentBox dialect")
    dev: bool = _f(False, "development mode: allows an ephemeral MyAgent state key", flag="--dev")
    security: SecuritySettings = _f(SecuritySettings, "authentication, origins, TLS and abuse limits")
    cron: CronSettings = _f(CronSettings, "scheduled jobs")
    heartbeat: HeartbeatSettings = _f(HeartbeatSettings, "heartbeat turns")
    hooks: HooksSettings = _f(HooksSettings, "inbound webhooks")
    canvas: CanvasSettings = _f(CanvasSettings, "the canvas host")
    otel: OtelSettings = _f(OtelSettings, "OpenTelemetry traces")
    channels: ChannelsSettings = _f(ChannelsSettings, "messaging channels (Telegram, Slack, Discord, WebChat)")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Validation sees only the merged layers: the environment is one explicit layer (``env_layer``),
        # so an embedding program's Gateway(...) is not changed by stray variables behind its back.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _token_file(cls, data: Any) -> Any:
        return _fill_from_file(data, "token", "token_file")

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def resolved_workers(self) -> int:
        """``workers``, or its default: every core when Redis is shared, else one process."""
        if self.workers is not None:
            return self.workers
        return (os.cpu_count() or 1) if self.redis_url else 1

    @property
    def auth_mode(self) -> str:
        return "token" if self.token is not None else "none"

    def public_dict(self) -> dict[str, Any]:
        """The config with every secret replaced by ``REDACTED`` (for config.get and logs)."""
        return redact(self.model_dump(mode="json"), self)


# Restart-only fields: config.set may store them, but they apply at next start.
RESTART_FIELDS = frozenset(
    {
        "host",
        "port",
        "data_dir",
        "database_url",
        "database_pool_size",
        "database_timeout_s",
        "redis_url",
        "workers",
        "redis",
        "log_format",
        "log_level",
        "myagent",
        "dev",
        "agentbox",
        "security",
        "hooks",
        "canvas",
        "channels",
        "otel",
    }
)

# Secrets and the files that hold them: never stored by config.patch, always redacted.
SECRET_PATHS: dict[str, str] = {
    "token": "token_file",
    "security.password": "security.password_file",
    "openai.api_key": "openai.api_key_file",
    "anthropic.api_key": "anthropic.api_key_file",
    "myagent.state_secret_key": "myagent.state_secret_key_file",
    "hooks.token": "hooks.token_file",
}

# Changes to these are logged at WARNING when made at run time, and checked again at start.
SECURITY_PATHS = (
    "host",
    "port",
    "dev",
    "database_url",
    "redis_url",
    "security.",
    "myagent.port",
    "myagent.host",
    "agentbox.enabled",
    "agentbox.port",
    "hooks.",
    "canvas.",
)

# Older variable names, still honoured where the canonical AGENTHUB_... one is not set.
ENV_ALIASES: dict[str, str] = {
    "AGENTHUB_GATEWAY_TOKEN": "token",
    "AGENTHUB_GATEWAY_TOKEN_FILE": "token_file",
    "AGENTHUB_GATEWAY_PASSWORD": "security.password",
    "AGENTHUB_GATEWAY_PASSWORD_FILE": "security.password_file",
    "OPENAI_API_KEY": "openai.api_key",
    "OPENAI_API_KEY_FILE": "openai.api_key_file",
    "OPENAI_BASE_URL": "openai.base_url",
    "AGENTHUB_OPENAI_MODEL": "openai.model",
    "ANTHROPIC_API_KEY": "anthropic.api_key",
    "ANTHROPIC_API_KEY_FILE": "anthropic.api_key_file",
    "ANTHROPIC_BASE_URL": "anthropic.base_url",
    "AGENTHUB_ANTHROPIC_MODEL": "anthropic.model",
    "AGENTHUB_MYAGENT_SECRET": "myagent.state_secret_key",
    "AGENTHUB_HOOKS_TOKEN": "hooks.token",
}


class ConfigFileError(ValueError):
    """The config file cannot be read or parsed (the message names the file and the place)."""


def redact(data: dict[str, Any], settings: GatewaySettings | None = None) -> dict[str, Any]:
    """``data`` (a dumped config) with every secret replaced by ``REDACTED`` and URL passwords masked."""
    out: dict[str, Any] = _copy(data)
    for path in SECRET_PATHS:
        parent, _, key = path.rpartition(".")
        section = out.get(parent) if parent else out
        if isinstance(section, dict) and section.get(key) not in (None, ""):
            section[key] = REDACTED
    for key in ("database_url", "redis_url"):
        url = out.get(key)
        if isinstance(url, str):
            out[key] = mask_url_password(url)
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


def _copy(data: Any) -> Any:
    return {k: _copy(v) for k, v in data.items()} if isinstance(data, dict) else data


def mask_url_password(url: str) -> str:
    """``scheme://user:secret@host/db`` as ``scheme://user:***@host/db`` (a database URL in logs and config.get).

    A ``password=`` query parameter (which drivers also accept) is masked too.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and all(key != "password" for key, _ in query):
        return url
    if parts.password is not None:
        userinfo, _, hostinfo = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hostinfo}")
    if any(key == "password" for key, _ in query):
        masked = [(key, "***" if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe="*/"))
    # Not urlunsplit: it drops the "//" of an empty host (postgresql:///db?host=/run/postgresql).
    query_part = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path}{query_part}"


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


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and scalars are leaves, empty objects vanish."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):  # an empty object sets nothing
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def merge_layers(layers: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge the named layers (in ``LAYERS`` order) and say, per dotted path, which layer set it last."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in LAYERS:
        layer = layers.get(name) or {}
        merged = merge_patch(merged, layer)
        for path in flatten(layer):
            sources[path] = name
    return merged, sources


def value_sources(settings: GatewaySettings, sources: dict[str, str]) -> dict[str, str]:
    """The layer of every leaf of ``settings`` ("default" when no layer set it).

    A secret read from its ``*_file`` setting is reported as coming from that file's layer.
    """
    out: dict[str, str] = {}
    for path in flatten(settings.model_dump(mode="json")):
        src = sources.get(path)
        if src is None:  # a whole section (or list) set at once, e.g. {"limits": {...}} via env JSON
            src = next((s for p, s in sources.items() if path.startswith(p + ".")), None)
        file_path = SECRET_PATHS.get(path)
        if src is None and file_path is not None and file_path in sources:
            src = f"{sources[file_path]} ({file_path.rpartition('.')[2]})"
        out[path] = src or "default"
    return out


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, key = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[key] = value


def _has_path(data: dict[str, Any], path: str) -> bool:
    cur: Any = data
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False
        cur = cur[part]
    return True


def env_layer(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The environment's settings: ``AGENTHUB_...`` (pydantic-settings), then the older ``ENV_ALIASES``.

    Reads ``os.environ`` (``environ`` only feeds the aliases; tests set real variables).
    """
    env = dict(os.environ) if environ is None else environ
    data: dict[str, Any] = EnvSettingsSource(GatewaySettings)()
    for name, path in ENV_ALIASES.items():
        value = env.get(name)
        if value and not _has_path(data, path):
            _set_path(data, path, value)
    return data


def env_names(path: str) -> list[str]:
    """The environment variables that set ``path`` (canonical first)."""
    names = [ENV_PREFIX + path.replace(".", "__").upper()]
    names += [alias for alias, target in ENV_ALIASES.items() if target == path]
    return names


def load_file(path: Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into a plain dict; ``ConfigFileError`` names the file and the place."""
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise ConfigFileError(f"config file {path}: {exc.strerror or exc}") from None
    if Path(path).suffix == ".toml":
        try:
            return dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigFileError(f"config file {path}: {exc}") from None
    try:
        data = _json.loads(text) if text.strip() else {}
    except _json.JSONDecodeError as exc:
        raise ConfigFileError(f"config file {path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {path}: must be a JSON object")
    return data


def validation_messages(exc: ValidationError) -> list[str]:
    """One ``dotted.path: message`` line per error."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        out.append(f"{loc}: {msg}")
    return out


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def setting_fields(
    model: type[BaseModel] = GatewaySettings, prefix: str = ""
) -> Iterator[tuple[str, FieldInfo, type[BaseModel]]]:
    """Every leaf setting as (dotted path, field, owning model), in declaration order."""
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from setting_fields(ann, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", info, model


def _type_name(info: FieldInfo) -> str:
    text = str(info.annotation)
    for noise in ("typing.", "pathlib.", "pydantic.types.", "<class '", "'>"):
        text = text.replace(noise, "")
    return text.replace("Literal[", "one of [").replace(" | ", " or ")


def _default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if value is None:
        return "unset"
    return f"`{_json.dumps_str(value if not isinstance(value, Path) else str(value))}`"


def reference_markdown() -> str:
    """The configuration reference (``docs/config.md``), generated from the model."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `agenthub config reference`; do not edit by hand. -->",
        "",
        "Every setting can be given, lowest precedence first, as its default, in the `--config` file",
        "(JSON or TOML, nested as below), as a stored override (`config.set`/`config.patch`, not for",
        "secrets), in the environment, or as a flag of `agenthub gateway` where it has one.",
        "`agenthub config show` prints the effective value of each and where it came from;",
        "`agenthub config validate` checks a file and the environment; `agenthub config schema`",
        "prints the JSON Schema.",
        "",
        "Environment variables are `AGENTHUB_` and the setting's path in capitals, nested with `__`",
        "(`limits.max_payload` is `AGENTHUB_LIMITS__MAX_PAYLOAD`); lists and objects take JSON.",
        "Older names are still honoured where the canonical one is unset.",
        "",
        "Secrets (the token, the password, provider keys, the MyAgent state key) are never stored",
        "by `config.patch`: give them in the environment, as a flag, or in a file named by the",
        "matching `*_file` setting (`--token-file`, `--password-file`, `openai.api_key_file`, ...).",
        "",
    ]
    section = None
    for path, info, owner in setting_fields():
        head = path.rpartition(".")[0] or "gateway"
        if head != section:
            section = head
            doc = next(iter((owner.__doc__ or "").strip().splitlines()), "") if owner is not GatewaySettings else ""
            lines += ["", f"## `{head}`" if head != "gateway" else "## Top level", ""]
            if doc:
                lines += [doc, ""]
            lines += ["| setting | type | default | environment | flag | description |", "|---|---|---|---|---|---|"]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        flag = f"`{extra['flag']}`" if extra.get("flag") else ""
        env = "<br>".join(f"`{n}`" for n in env_names(path))
        desc = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{path}` | {_type_name(info)} | {_default_text(info)} | {env} | {flag} | {desc} |")
    return "\n".join(lines) + "\n"


def security_paths(paths: Iterable[str]) -> list[str]:
    """The security-relevant ones among dotted ``paths``."""
    return [p for p in paths if any(p == s or (s.endswith(".") and p.startswith(s)) for s in SECURITY_PATHS)]
