"""Settings: every limit is a named setting with a default.

Precedence, lowest first: defaults, the ``--config`` file (JSON or TOML), the
overrides stored by ``config.set``/``config.patch``, then environment and CLI
flags. Secrets are ``SecretStr`` so they never reach a log or ``config.get``.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .protocol import _json

__all__ = [
    "DEFAULT_HEARTBEAT_PROMPT",
    "REDACTED",
    "AgentBoxSettings",
    "AnthropicSettings",
    "CanvasSettings",
    "CronSettings",
    "DemoSettings",
    "GatewaySettings",
    "HeartbeatSettings",
    "HookMapping",
    "HooksSettings",
    "LangBotSettings",
    "Limits",
    "MyAgentSettings",
    "OpenAISettings",
    "SecuritySettings",
    "is_loopback",
    "load_file",
    "mask_url_password",
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
    history_bytes_per_stream: int = Field(
        4 * 1024 * 1024, ge=16 * 1024, description="replay history bytes per stream; the oldest events go first"
    )
    history_bytes_total: int = Field(
        64 * 1024 * 1024, ge=64 * 1024, description="replay history bytes in all; the least recent streams go first"
    )
    max_message_chars: int = Field(
        100_000, ge=1, description="longest message a run accepts, from any dialect (characters)"
    )
    max_inflight_per_connection: int = Field(
        64, ge=1, description="requests a native connection may have unanswered; more get UNAVAILABLE (retryable)"
    )
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
    max_preauth_per_ip: int = Field(
        64, ge=1, description="sockets per IP without a proven credential (before connect/auth, or anonymous)"
    )
    approval_timeout_ms: int = Field(60_000, ge=100, description="dangerous node commands are denied after this")
    langbot_default_public: bool | None = Field(
        None,
        description="the LangBot 'default' pipeline takes sockets without a credential "
        "(unset: only when the gateway has no auth)",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        """Origins are listed one by one: a wildcard would let every web page act as the user."""
        for origin in origins:
            if "*" in origin or origin.strip().lower() in ("", "null"):
                raise ValueError(f"{origin!r}: list each allowed origin explicitly (scheme://host:port), no wildcards")
        return origins

    def resolved_auth_mode(self, token: SecretStr | None) -> str:
        if self.auth_mode != "auto":
            return self.auth_mode
        if self.password is not None:
            return "password"
        return "token" if token is not None else "none"


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


class GatewaySettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(18789, ge=0, le=65535)
    data_dir: Path = Path("~/.agenthub")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database, e.g. postgresql+asyncpg://user:pw@host:5432/agenthub "
        "(default: SQLite, agenthub.db in the data dir)",
    )
    database_pool_size: int = Field(10, ge=1, le=1000, description="connections in a database server's pool")
    database_timeout_s: float = Field(
        10, gt=0, le=600, description="wait for a pooled database connection, or to connect, before failing"
    )
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
    cron: CronSettings = Field(default_factory=CronSettings)
    heartbeat: HeartbeatSettings = Field(default_factory=HeartbeatSettings)
    hooks: HooksSettings = Field(default_factory=HooksSettings)
    canvas: CanvasSettings = Field(default_factory=CanvasSettings)

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
    {
        "host",
        "port",
        "data_dir",
        "database_url",
        "database_pool_size",
        "database_timeout_s",
        "log_format",
        "log_level",
        "myagent",
        "dev",
        "agentbox",
        "security",
        "hooks",
        "canvas",
    }
)


def redact(data: dict[str, Any], settings: GatewaySettings) -> dict[str, Any]:
    out = dict(data)
    if settings.token is not None:
        out["token"] = REDACTED
    if out.get("database_url"):
        out["database_url"] = mask_url_password(out["database_url"])
    if settings.security.password is not None:
        out["security"] = {**(out.get("security") or {}), "password": REDACTED}
    for section in ("openai", "anthropic"):
        sec = dict(out.get(section) or {})
        if sec.get("api_key"):
            sec["api_key"] = REDACTED
        out[section] = sec
    if settings.hooks.token is not None:
        out["hooks"] = {**(out.get("hooks") or {}), "token": REDACTED}
    myagent = dict(out.get("myagent") or {})
    if myagent.get("state_secret_key"):
        myagent["state_secret_key"] = REDACTED
        out["myagent"] = myagent
    return out


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
