"""Settings: every limit is a named setting with a default.

Precedence, lowest first: defaults, the ``--config`` file (JSON or TOML), the
overrides stored by ``config.set``/``config.patch``, then environment and CLI
flags. Secrets are ``SecretStr`` so they never reach a log or ``config.get``.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .protocol import _json

__all__ = [
    "REDACTED",
    "AgentBoxSettings",
    "AnthropicSettings",
    "DemoSettings",
    "GatewaySettings",
    "LangBotSettings",
    "Limits",
    "MyAgentSettings",
    "OpenAISettings",
    "SecuritySettings",
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
    log_buffer_bytes: int = Field(
        1024 * 1024, ge=0, description="newest log lines kept in memory for logs.tail (openclaw logs); 0: off"
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
    {"host", "port", "data_dir", "log_format", "log_level", "myagent", "dev", "agentbox", "security"}
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
    return out


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
