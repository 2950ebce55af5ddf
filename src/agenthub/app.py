"""The composition root: builds every component from settings and wires them. Wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import ValidationError

from .agents import build_runtime
from .agents.canvas import CanvasWriteTool
from .agents.tools import default_tools
from .channels import ChannelSet, build_channels
from .channels.options import (
    AccessOptions,
    AccountOptions,
    ChannelsOptions,
    DiscordOptions,
    SlackOptions,
    TelegramOptions,
)
from .config import (
    CHANNEL_SECRET_KEYS,
    REDACTED,
    RESTART_FIELDS,
    SECRET_PATHS,
    GatewaySettings,
    env_names,
    flatten,
    is_loopback,
    mask_url_password,
    merge_layers,
    merge_patch,
    security_paths,
    value_sources,
)
from .core.allocator import trim_periodically
from .core.api import register_handlers
from .core.approvals import ApprovalService, node_tools, register_approval_handlers
from .core.auth import Authenticator
from .core.bus import EventBus, MemoryBus
from .core.cluster import Cluster, LocalCluster
from .core.dm_access import MemoryPairingStore, PairingStore
from .core.logbuffer import LogBuffer
from .core.node import Node, NodeLimits
from .core.node_pairing import register_node_pairing_handlers
from .core.nodes import NodeRegistry, register_node_handlers
from .core.observe import Observer, Observers
from .core.outbound import Outbound
from .core.pairing import PairingService, register_pairing_handlers
from .core.ratelimit import AuthLimiter, SecurityLimits
from .core.runs import RunManager, now_ms
from .core.runtime import AgentRuntime
from .core.scheduler import CronConfig, CronStore, HeartbeatConfig, MemoryCronStore, Scheduler
from .core.secrets import hash_secret
from .core.store import Store
from .core.transcripts import TranscriptCache
from .datadir import DataDirBusyError, DataDirLock, lock_holder, secure_dir, secure_file
from .protocol import _json
from .protocol.errors import ErrorCode, RpcError
from .protocol.frames import describe_validation_error
from .storage.channels import SqlChannelStore
from .storage.cron import SqlCronStore
from .storage.redis_bus import RedisBus, RedisBusLimits
from .storage.redis_cluster import RedisAuthLimiter, RedisCluster
from .storage.sql import SqlStore, open_error
from .web import agentbox as agentbox_edge
from .web import hooks as hooks_edge
from .web import langbot as langbot_edge
from .web import myagent as myagent_edge
from .web import openapi as openapi_edge
from .web import ui as ui_edge
from .web.access import AccessDenied, Gatekeeper
from .web.canvas import CanvasAuth, CanvasHost
from .web.edge import Edge
from .web.http import GatewayCollector, healthz, metrics_handler
from .web.listener import ConnectionDoor, DoorLimits, GuardedSite, fit_to_descriptors, peer_gone_middleware
from .web.metrics import GatewayMetrics
from .web.origin import forwarded_middleware, origin_middleware, proxy_identity
from .web.ws import FrameCounters, native_handler

# Edge modules mounted on the gateway, in order: each is ``mount(edge: Edge) -> None``.
MOUNTS: list[Callable[[Edge], None]] = [
    agentbox_edge.mount,
    langbot_edge.mount,
    myagent_edge.mount,
    ui_edge.mount,
    hooks_edge.mount,
    openapi_edge.mount,
]

__all__ = ["ConfigError", "Gateway", "SettingsService", "check_startup"]

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """The gateway refuses to start with these settings."""


def _restore_redacted(new: Any, old: Any) -> Any:
    """A client echoing ``__REDACTED__`` back means "keep the secret I cannot see"."""
    if isinstance(new, dict):
        old_d = old if isinstance(old, dict) else {}
        out = {}
        for key, value in new.items():
            if value == REDACTED:
                if key in old_d:
                    out[key] = old_d[key]
                continue
            out[key] = _restore_redacted(value, old_d.get(key))
        return out
    return new


def _secret_hint(path: str) -> str:
    file_path = SECRET_PATHS.get(path, path)
    names = env_names(path.removesuffix("_file") if path.endswith("_file") else path)
    return f"set {' or '.join(names[:2])}, or {file_path} in the config file, and restart"


def _without_secrets(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config`` minus every secret and secret file (the stored layer never holds one)."""
    flat = flatten(config)
    banned = {*SECRET_PATHS, *SECRET_PATHS.values()}
    channel_keys = {*CHANNEL_SECRET_KEYS, *(f"{key}_file" for key in CHANNEL_SECRET_KEYS)}
    found = [
        p
        for p in flat
        if flat[p] not in (None, "")
        and (p in banned or (p.startswith("channels.") and p.rpartition(".")[2] in channel_keys))
    ]
    out = _restore_redacted(config, {})  # a copy
    for path in found:
        *parents, key = path.split(".")
        section: Any = out
        for name in parents:
            section = section.get(name) if isinstance(section, dict) else None
        if isinstance(section, dict):
            section.pop(key, None)
    return out, found


def check_startup(settings: GatewaySettings, sources: dict[str, str]) -> None:
    """The rules checked on the effective settings before any port opens (``ConfigError`` if broken)."""
    mode = settings.security.resolved_auth_mode(settings.token)
    unauthenticated = mode == "none" or (mode == "token" and settings.token is None)
    # The MyAgent port binds its own host: the same rule holds there.
    myagent_host = settings.myagent.host if settings.myagent.port is not None else None
    for host, path in ((settings.host, "host"), (myagent_host, "myagent.host")):
        if host is None or is_loopback(host) or not unauthenticated:
            continue
        why = ""
        stored = [p for p in (path, "security.auth_mode") if sources.get(p) == "stored"]
        if stored:
            why = (
                f" ({' and '.join(stored)} come from a stored override set with config.patch: start with "
                f'--host 127.0.0.1 and clear it with config.patch {{"{stored[0].split(".")[0]}": null}})'
            )
        raise ConfigError(f"refusing to bind {host} without a token (--token or AGENTHUB_GATEWAY_TOKEN){why}")
    if settings.myagent.port is not None and settings.myagent.state_secret_key is None and not settings.dev:
        raise ConfigError(
            "refusing to serve MyAgent without a fixed state key "
            "(--myagent-secret or AGENTHUB_MYAGENT_SECRET), unless --dev is given"
        )


class SettingsService:
    """Owns the effective settings: defaults < file < stored overrides < environment < flags.

    ``config.set``/``config.patch`` write the stored layer. It never holds a secret, and it
    cannot turn authentication off when the environment or a flag gives a credential: the
    operator's command line wins over what an admin stored over RPC.
    """

    def __init__(
        self,
        base: dict[str, Any],
        overrides: dict[str, Any],
        store: Store | None,
        *,
        env: dict[str, Any] | None = None,
    ) -> None:
        self.base = base
        self.overrides = overrides
        self.env = env or {}
        self.store = store
        self.stored: dict[str, Any] = {}
        self.notes: list[str] = []  # start-time warnings about the stored layer
        self.settings, self.sources = self._build({})
        self.listeners: list[Callable[[GatewaySettings], None]] = []

    def layers(self, stored: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {"file": self.base, "stored": stored, "env": self.env, "flag": self.overrides}

    def _effective_stored(self, stored: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The stored layer as applied: an auth downgrade below a given credential is dropped."""
        notes: list[str] = []
        sec = stored.get("security")
        if isinstance(sec, dict) and sec.get("auth_mode") == "none":
            given = flatten(merge_patch(self.env, self.overrides))
            creds = [p for p in ("token", "token_file", "security.password", "security.password_file") if given.get(p)]
            if creds:
                notes.append(
                    "security.auth_mode: the stored override 'none' is ignored because the command line or "
                    f'environment gives {creds[0]}; clear it with config.patch {{"security": {{"auth_mode": null}}}}'
                )
                stored = {**stored, "security": {k: v for k, v in sec.items() if k != "auth_mode"}}
        return stored, notes

    def _build(self, stored: dict[str, Any]) -> tuple[GatewaySettings, dict[str, str]]:
        applied, _ = self._effective_stored(stored)
        merged, sources = merge_layers(self.layers(applied))
        settings = GatewaySettings.model_validate(merged)
        return settings, value_sources(settings, sources)

    async def load(self) -> None:
        assert self.store is not None, "load() needs the store"
        stored = await self.store.get_config()
        cleaned, secrets = _without_secrets(stored)
        if secrets:
            # Written by an older version: a secret must not sit in clear in the database.
            await self.store.put_config(cleaned, now_ms())
            log.warning(
                "removed %s from the stored config (secrets are not kept in the database): %s",
                ", ".join(secrets),
                _secret_hint(secrets[0]),
            )
        try:
            self.use_stored(cleaned)
        except ValidationError as exc:
            log.error("stored config is invalid and was ignored: %s", describe_validation_error(exc))
        for note in self.warnings():
            log.warning("config: %s", note)

    def use_stored(self, stored: dict[str, Any]) -> None:
        """Rebuild the settings over this stored layer (raises ``ValidationError``, changing nothing)."""
        self.settings, self.sources = self._build(stored)
        self.stored = stored
        self.notes = self._effective_stored(stored)[1]

    def public(self) -> dict[str, Any]:
        return self.settings.public_dict()

    def agent_model(self) -> tuple[str, str | None]:
        provider = self.settings.provider
        model = getattr(getattr(self.settings, provider, None), "model", None)
        return provider, model if isinstance(model, str) else None

    def warnings(self) -> list[str]:
        """Stored overrides that shadow the config file, are shadowed themselves, or touch security."""
        out = list(self.notes)
        stored = flatten(self.stored)
        file = flatten(self.base)
        upper = flatten(merge_patch(self.env, self.overrides))
        public = flatten(self.public())
        for path, value in stored.items():
            if path in upper:
                out.append(f"{path}: the stored override is not used: the {self.sources.get(path, 'flag')} sets it")
            elif path in file and file[path] != value:
                out.append(
                    f"{path}: the stored override {_json.dumps_str(value)} (config.patch) shadows the config "
                    f"file's {_json.dumps_str(file[path])}"
                )
            elif security_paths([path]) and self.sources.get(path) == "stored":
                out.append(f"{path} = {_json.dumps_str(public.get(path))} comes from a stored override (config.patch)")
        return out

    def describe(self) -> dict[str, Any]:
        """``config.get``: the effective config (secrets redacted), each value's source, and the warnings."""
        return {"config": self.public(), "sources": dict(self.sources), "warnings": self.warnings()}

    def schema(self) -> dict[str, Any]:
        """``config.schema``: the JSON Schema of every setting."""
        return GatewaySettings.model_json_schema()

    def parse_raw(self, raw: str) -> dict[str, Any]:
        try:
            data = _json.loads(raw)
        except _json.JSONDecodeError:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: raw: not valid JSON") from None
        if not isinstance(data, dict):
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: raw: must be a JSON object")
        return data

    async def replace(self, config: dict[str, Any], *, actor: str = "") -> dict[str, Any]:
        new = _restore_redacted(config, self.stored)
        _, secrets = _without_secrets(new)
        if secrets:
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                f"invalid params: {secrets[0]}: secrets are not stored in the database; {_secret_hint(secrets[0])}",
            )
        if "database_url" in new:  # the stored config lives in that database: it cannot choose it
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                "invalid params: database_url: set the database with --database-url or AGENTHUB_DATABASE_URL",
            )
        for key, flag in (
            ("redis_url", "--redis-url or AGENTHUB_REDIS_URL"),
            ("workers", "--workers or AGENTHUB_WORKERS"),
        ):
            if key in new:  # every process must agree on these before any of them starts
                raise RpcError(ErrorCode.INVALID_REQUEST, f"invalid params: {key}: set it with {flag}")
        try:
            settings, sources = self._build(new)
        except ValidationError as exc:
            raise RpcError(ErrorCode.INVALID_REQUEST, describe_validation_error(exc, "invalid config: ")) from None
        restart = sorted(k for k in RESTART_FIELDS if getattr(settings, k) != getattr(self.settings, k))
        before = flatten(self.public())
        before_stored = flatten(self.stored)
        assert self.store is not None
        await self.store.put_config(new, now_ms())
        self.stored = new
        self.settings, self.sources = settings, sources
        self.notes = self._effective_stored(new)[1]
        after = flatten(self.public())
        for path in security_paths(sorted(set(before) | set(after))):
            if before.get(path) != after.get(path):
                log.warning(
                    "config: security setting %s changed from %s to %s by %s (%s)",
                    path,
                    _json.dumps_str(before.get(path)),
                    _json.dumps_str(after.get(path)),
                    actor or "an admin",
                    "applies at next start" if path.split(".")[0] in RESTART_FIELDS else "applied",
                )
            elif before_stored.get(path) != flatten(new).get(path):
                log.warning(
                    "config: security setting %s override set to %s by %s, not in effect (%s)",
                    path,
                    _json.dumps_str(flatten(new).get(path)),
                    actor or "an admin",
                    "the command line or environment wins" if path in flatten(new) else "removed",
                )
        for listener in self.listeners:
            listener(settings)
        return {"ok": True, "config": self.public(), "restartRequired": restart, "warnings": self.warnings()}

    async def patch(self, patch: dict[str, Any], *, actor: str = "") -> dict[str, Any]:
        return await self.replace(merge_patch(self.stored, patch), actor=actor)


def tls_context(settings: GatewaySettings) -> ssl.SSLContext | None:
    """The server TLS context for ``--tls-cert``/``--tls-key`` (TLS 1.2 or later), or None."""
    sec = settings.security
    if sec.tls_cert is None:
        return None
    if sec.tls_key is None:
        raise ConfigError("--tls-cert needs --tls-key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(sec.tls_cert.expanduser(), sec.tls_key.expanduser())
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS certificate: {exc}") from None
    return ctx


def security_limits(settings: GatewaySettings) -> SecurityLimits:
    sec = settings.security
    return SecurityLimits(
        auth_max_failures=sec.auth_max_failures,
        auth_window_ms=sec.auth_window_ms,
        auth_lockout_ms=sec.auth_lockout_ms,
        max_unauthorized_calls=sec.max_unauthorized_calls,
        max_preauth_per_ip=sec.max_preauth_per_ip,
    )


def door_limits(settings: GatewaySettings) -> DoorLimits:
    lim = settings.limits
    return DoorLimits(lim.header_timeout_s, lim.max_connections, lim.max_connections_per_listener)


def node_limits(settings: GatewaySettings) -> NodeLimits:
    lim = settings.limits
    return NodeLimits(
        max_payload=lim.max_payload,
        max_buffered_bytes=lim.max_buffered_bytes,
        tick_interval_ms=lim.tick_interval_ms,
        handshake_timeout_ms=lim.handshake_timeout_ms,
        pre_connect_max_bytes=lim.pre_connect_max_bytes,
        signature_skew_ms=lim.signature_skew_ms,
        idempotency_ttl_s=lim.idempotency_ttl_s,
        presence_debounce_ms=lim.presence_debounce_ms,
        max_inflight_per_connection=lim.max_inflight_per_connection,
    )


def cron_config(settings: GatewaySettings) -> CronConfig:
    c = settings.cron
    return CronConfig(
        enabled=c.enabled,
        max_jobs=c.max_jobs,
        max_concurrent_runs=c.max_concurrent_runs,
        min_interval_ms=c.min_interval_ms,
        missed_run_policy=c.missed_run_policy,
        catchup_delay_ms=c.catchup_delay_ms,
        runs_per_job=c.runs_per_job,
    )


def heartbeat_config(settings: GatewaySettings) -> HeartbeatConfig:
    h = settings.heartbeat
    return HeartbeatConfig(
        interval_s=h.interval_s,
        sessions=list(h.sessions),
        prompt=h.prompt,
        ack_max_chars=h.ack_max_chars,
        target=h.target,
        to=h.to,
        account_id=h.account_id,
        timeout_s=h.timeout_s,
        max_pending_events=h.max_pending_events,
        max_event_chars=h.max_event_chars,
        max_event_sessions=h.max_event_sessions,
    )


def channel_options(settings: GatewaySettings, env: Mapping[str, str]) -> ChannelsOptions:
    """The ``channels`` section resolved: accounts with their secrets (config, file, then env)."""
    ch = settings.channels
    accounts: list[AccountOptions] = []

    def common(account_id: str, a: Any, env_key: str, typing_ms: int | None) -> dict[str, Any]:
        key = env_key if account_id == "default" else None  # a platform's env variable is its default account's
        token: str | None = None
        source, error = "file", None
        try:
            token, source = a.token(env, key)
        except OSError as exc:
            error = f"cannot read bot_token_file: {exc.strerror or exc}"
        access = AccessOptions(
            dm_policy=a.dm_policy,
            allow_from=tuple(a.allow_from),
            require_mention=a.require_mention,
            edit_interval_ms=a.edit_interval_ms,
            max_retry_wait_s=a.max_retry_wait_s,
            typing_interval_ms=typing_ms,
        )
        return {
            "account_id": account_id,
            "token": token,
            "token_source": source,
            "error": error,
            "name": a.name,
            "enabled": a.enabled,
            "api_base_url": a.api_base_url,
            "max_message_chars": a.max_message_chars,
            "access": access,
        }

    if ch.present("telegram"):
        for account_id, t in ch.telegram.all_accounts().items():
            accounts.append(
                TelegramOptions(
                    **common(account_id, t, "TELEGRAM_BOT_TOKEN", t.typing_interval_ms),
                    mode=t.mode,
                    poll_timeout_s=t.poll_timeout_s,
                    webhook_url=t.webhook_url,
                    webhook_secret=t.webhook_secret.get_secret_value() if t.webhook_secret else None,
                )
            )
    if ch.present("slack"):
        for account_id, sl in ch.slack.all_accounts().items():
            secret, _ = sl.secret(env, "SLACK_SIGNING_SECRET" if account_id == "default" else None)
            path = sl.events_path or ("/slack/events" if account_id == "default" else f"/slack/{account_id}/events")
            accounts.append(
                SlackOptions(**common(account_id, sl, "SLACK_BOT_TOKEN", None), signing_secret=secret, events_path=path)
            )
    if ch.present("discord"):
        for account_id, d in ch.discord.all_accounts().items():
            accounts.append(
                DiscordOptions(**common(account_id, d, "DISCORD_BOT_TOKEN", 8000), gateway_url=d.gateway_url)
            )
    return ChannelsOptions(
        dm_scope=ch.dm_scope,
        pairing_code_ttl_s=ch.pairing_code_ttl_s,
        pairing_max_pending=ch.pairing_max_pending,
        retry_initial_s=ch.retry_initial_s,
        retry_max_s=ch.retry_max_s,
        max_inbound_chars=ch.max_inbound_chars,
        max_queued_runs=ch.max_queued_runs,
        webchat=ch.webchat.enabled,
        accounts=tuple(accounts),
    )


class RuntimeCache:
    """Builds the configured provider once, and again only when its settings change."""

    def __init__(self, service: SettingsService, factory: Callable[[GatewaySettings], AgentRuntime]) -> None:
        self.service = service
        self.factory = factory
        self._key: str | None = None
        self._runtime: AgentRuntime | None = None

    def __call__(self) -> AgentRuntime:
        s = self.service.settings
        key = _json.dumps_str(
            [s.provider, s.demo.model_dump(mode="json"), _secret_view(s.openai), _secret_view(s.anthropic)]
        )
        if self._runtime is None or key != self._key:
            self._runtime = self.factory(s)
            self._key = key
        return self._runtime


def _secret_view(section: Any) -> dict[str, Any]:
    data: dict[str, Any] = section.model_dump(mode="json")
    key = getattr(section, "api_key", None)
    data["api_key"] = hash_secret(key.get_secret_value()) if key is not None else None
    return data


def default_store(settings: GatewaySettings) -> SqlStore:
    """PostgreSQL (or any SQLAlchemy URL) when ``database_url`` is set, else SQLite in the data dir."""
    return SqlStore(
        settings.database_url or settings.resolved_data_dir / "agenthub.db",
        pool_size=settings.database_pool_size,
        pool_timeout_s=settings.database_timeout_s,
    )


def default_runtime(settings: GatewaySettings) -> AgentRuntime:
    provider = settings.provider
    section = settings.openai if provider == "openai" else settings.anthropic
    key = section.api_key.get_secret_value() if section.api_key is not None else None
    return build_runtime(
        provider,
        base_url=section.base_url,
        api_key=key,
        model=section.model,
        word_delay_s=settings.demo.word_delay_ms / 1000,
    )


class Gateway:
    """One gateway process: ``async with Gateway(...) as gw: await gw.serve_forever()``."""

    def __init__(
        self,
        base: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        *,
        runtime_factory: Callable[[GatewaySettings], AgentRuntime] = default_runtime,
        store: Store | None = None,
        edge_options: dict[str, Any] | None = None,
        env: dict[str, Any] | None = None,
        outbound: Outbound | None = None,
        worker: int | None = None,
        worker_of: int | None = None,
    ) -> None:
        """``base`` is the config file's layer, ``env`` the environment's (``config.env_layer()``; not
        read unless given) and ``overrides`` the flags'; stored overrides join at start. ``outbound``
        delivers replies to messaging channels (``Node.outbound``); tests pass a recorder.
        ``worker``/``worker_of``: this process is worker ``worker`` of the ``--workers N`` gateway
        whose supervisor (pid ``worker_of``) holds the data dir's lock for all its workers."""
        self.base = base or {}
        self.overrides = overrides or {}
        self.env = env or {}
        try:
            self.config = SettingsService(self.base, self.overrides, None, env=self.env)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, "invalid config: ")) from None
        first = self.config.settings
        # Checked here on file, environment and flags, and again at start with the stored overrides.
        check_startup(first, self.config.sources)
        self.edge_options = dict(edge_options or {})
        self._check_automation(first)
        self.outbound = outbound
        self.worker = worker
        self.worker_of = worker_of
        self.data_dir = first.resolved_data_dir
        self._own_db = store is None and first.database_url is None
        # Every caller sees the store through the transcript cache, so no transcript write bypasses it.
        self.transcripts = TranscriptCache(
            store or default_store(first),
            sessions=first.limits.transcript_cache_sessions,
            messages=first.limits.transcript_cache_messages,
            max_bytes=first.limits.transcript_cache_bytes,
        )
        self.store: Store = self.transcripts
        self.config.store = self.store
        self.runtime_factory = runtime_factory
        self.counters = FrameCounters()
        # /metrics: histograms fed by the core (RPCs, runs, bus), store timings, per-dialect connections.
        self.metrics = GatewayMetrics()
        self.node: Node | None = None
        self.nodes: NodeRegistry | None = None
        self.scheduler: Scheduler | None = None
        self.canvas: CanvasHost | None = None
        self.channels: ChannelSet | None = None
        self.edge: Edge | None = None
        self.runner: web.AppRunner | None = None
        self.door = ConnectionDoor(fit_to_descriptors(door_limits(first)))
        self.port: int = first.port
        self._stack = contextlib.AsyncExitStack()
        self._stopped = asyncio.Event()
        self._purge: asyncio.Task[None] | None = None

    @property
    def settings(self) -> GatewaySettings:
        return self.config.settings

    def _check_automation(self, first: GatewaySettings) -> None:
        """Hooks need their own token; the canvas host follows the main port's bind rule."""
        if first.hooks.enabled:
            try:
                token_hash = hooks_edge.resolve_token_hash(first.hooks, os.environ)
            except OSError as exc:
                raise ConfigError(f"cannot read hooks.token_file: {exc}") from None
            if token_hash is None:
                raise ConfigError(
                    f"hooks.enabled needs a hook token (hooks.token, hooks.token_file, hooks.token_sha256 "
                    f"or {hooks_edge.TOKEN_ENV})"
                )
            if first.token is not None and token_hash == hash_secret(first.token.get_secret_value()):
                log.warning("the hook token is the gateway token: give hooks their own token")
            self.edge_options["hooks.token_hash"] = token_hash
        canvas = first.canvas
        mode = first.security.resolved_auth_mode(first.token)
        if canvas.enabled and not is_loopback(canvas.host or first.host) and mode == "none":
            raise ConfigError(f"refusing to serve the canvas on {canvas.host or first.host} without a token")

    async def __aenter__(self) -> Gateway:
        await self._stack.__aenter__()
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        self._lock_data_dir()
        await self.store.open()
        self._stack.push_async_callback(self.store.close)
        if self._own_db:
            for suffix in ("-wal", "-shm"):
                secure_file(self.data_dir / f"agenthub.db{suffix}")
        await self.config.load()
        s = self.settings
        check_startup(s, self.config.sources)
        self.transcripts.resize(
            s.limits.transcript_cache_sessions, s.limits.transcript_cache_messages, s.limits.transcript_cache_bytes
        )
        bus, cluster = await self._shared_state(s)
        if not await cluster.others_alive():  # runs marked running by a live process are its own
            failed = await self.store.fail_interrupted_runs("gateway restarted while the run was active", now_ms())
            if failed:
                log.warning("marked %d interrupted run(s) as error", failed)
        await self.store.purge_idempotent(now_ms() - s.limits.idempotency_ttl_s * 1000)
        runtime = RuntimeCache(self.config, self.runtime_factory)
        tools = default_tools()
        # Node commands join the built-in tools of every run (bound once the node registry exists).
        extra_tools: list[Callable[[], list[Any]]] = []
        runs = RunManager(
            bus,
            self.store,
            runtime,
            lambda run: [*tools, *(t for make in extra_tools for t in make())],
            chat_delta_interval_ms=s.limits.chat_delta_interval_ms,
            run_timeout_s=s.limits.run_timeout_s,
            max_message_chars=s.limits.max_message_chars,
            cluster=cluster,
            transcript_blocks_chars=s.limits.transcript_blocks_chars,
            finished_runs=s.limits.finished_runs,
            finished_runs_bytes=s.limits.finished_runs_bytes,
        )
        sec = s.security
        mode = sec.resolved_auth_mode(s.token)
        token_hash = hash_secret(s.token.get_secret_value()) if s.token is not None and mode == "token" else None
        security = security_limits(s)
        pairing = PairingService(self.store, require_pairing=sec.require_pairing, cache_size=sec.device_cache_size)
        self._stack.push_async_callback(pairing.flush)  # runs before store.close (LIFO)
        limiter = RedisAuthLimiter(security, cluster) if isinstance(cluster, RedisCluster) else AuthLimiter(security)
        if isinstance(cluster, RedisCluster):  # the caches other processes keep of what this one writes
            pairing.join(cluster)
            self.transcripts.on_write = lambda key: cluster.invalidate("transcript", key)
            cluster.on_invalidate("transcript", self.transcripts.forget)
        auth = Authenticator(
            self.store,
            token_hash,
            pairing=pairing,
            limiter=limiter,
            password_hash=hash_secret(sec.password.get_secret_value())
            if sec.password is not None and mode == "password"
            else None,
            trusted_proxy_header=sec.trusted_proxy_header if mode == "trusted-proxy" else None,
        )
        if mode == "password" and auth.password_hash is None:
            raise ConfigError("auth mode password needs a password (--password or AGENTHUB_GATEWAY_PASSWORD)")
        if mode == "token" and token_hash is None:
            raise ConfigError("auth mode token needs a token (--token or AGENTHUB_GATEWAY_TOKEN)")
        node = Node(
            bus=bus,
            store=self.store,
            runs=runs,
            auth=auth,
            limits=node_limits(s),
            provider_name=lambda: self.settings.provider,
        )
        self.node = node
        node.security = security
        node.preauth.limits = security
        if isinstance(cluster, RedisCluster):
            await cluster.start()
            self._stack.push_async_callback(cluster.stop)
        if isinstance(bus, RedisBus):
            bus.state_listeners.append(node.health_changed)
        self._watch_database(node)
        pairing.bind(node.hub.broadcast, lambda: node.connections.values())
        if self.outbound is not None:
            node.outbound = self.outbound
        engine = getattr(self.store, "engine", None)
        cron_store: CronStore = SqlCronStore(engine) if engine is not None else MemoryCronStore()
        self.scheduler = scheduler = Scheduler(node, cron_store, cron_config(s), heartbeat_config(s))
        self.nodes = NodeRegistry(node)
        if s.limits.log_buffer_bytes > 0:
            node.log_buffer = LogBuffer(s.limits.log_buffer_bytes)
            gateway_log = logging.getLogger("agenthub")
            gateway_log.addHandler(node.log_buffer)
            self._stack.callback(gateway_log.removeHandler, node.log_buffer)
        api = register_handlers(node, self.config, scheduler)
        register_pairing_handlers(node.dispatcher, pairing, now_ms)
        register_node_handlers(node, self.nodes)
        register_node_pairing_handlers(node.dispatcher, pairing, now_ms)
        approvals = ApprovalService(node.hub.broadcast, timeout_ms=sec.approval_timeout_ms)
        register_approval_handlers(node.dispatcher, approvals)
        registry = self.nodes
        extra_tools.append(lambda: node_tools(registry, approvals))
        if s.canvas.enabled:
            canvas_tool = CanvasWriteTool(self._canvas_root(s), s.canvas.max_file_bytes)
            extra_tools.append(lambda: [canvas_tool])
        self.config.listeners.append(lambda new: self._apply(new))
        self._observe(s, node, runs)
        node.start()

        # Every WebSocket upgrade on the main listener (native and dialect routes) passes the Origin check.
        app = web.Application(
            client_max_size=s.limits.max_payload,
            middlewares=[*self._door(), self.metrics.middleware("main")],
        )
        app.router.add_get("/healthz", healthz(node))
        app.router.add_get("/metrics", metrics_handler(self.metrics.registry, self._metrics_guard(s, node)))
        self.edge = Edge(
            node, self.store, s, self.config, self.counters, app, options=self.edge_options, scheduler=scheduler
        )
        for mount in MOUNTS:
            mount(self.edge)
        app.router.add_get("/", self._root(node))
        engine = getattr(self.store, "engine", None)
        pairing_store: PairingStore = SqlChannelStore(engine) if engine is not None else MemoryPairingStore()
        channels = build_channels(node, channel_options(s, os.environ), pairing_store, api.slash_command)
        for route in channels.manager.routes():
            app.router.add_route(route.method, route.path, route.handler)
        api.channels = channels.control
        if self.outbound is None:  # an embedding program's own Outbound (e.g. a test recorder) wins
            node.outbound = channels.manager
        self.channels = channels
        await channels.manager.start()  # connects in the background; a failing channel only reports its error
        self._stack.push_async_callback(channels.manager.stop)
        self.app = app
        tls = tls_context(s)
        self.runner = await self._serve(app, s.host, s.port, "main", tls)
        self.port = self.edge.bound["main"]
        for extra in self.edge.listeners:
            # Dialect ports (--agentbox, --myagent-port) get the same Origin allow-list (the gateway's own
            # pages live on the main port, so by default only those may open sockets here, plus what the
            # listener itself allows) and, with --tls-cert, the same TLS; their sockets are counted per dialect.
            extra.app.middlewares.extend([*self._door(extra.also_origin), self.metrics.middleware(extra.name)])
            await self._serve(extra.app, extra.host, extra.port, extra.name, tls)
            log.info("%s listening on %s://%s:%d", extra.name, self.scheme, extra.host, self.edge.bound[extra.name])
        if s.canvas.enabled:
            await self._serve_canvas(s, node)
        await scheduler.start()
        # Registered last so it runs first on exit: clients hear "shutdown" before sockets close.
        self._stack.push_async_callback(node.shutdown)
        # ...and the scheduler stops firing before that, so no new run starts during shutdown.
        self._stack.push_async_callback(scheduler.stop)
        self._purge = asyncio.get_running_loop().create_task(self._purge_loop())
        self._stack.callback(self._purge.cancel)
        trim = asyncio.get_running_loop().create_task(
            trim_periodically(lambda: self.settings.limits.malloc_trim_interval_s), name="malloc-trim"
        )
        self._stack.callback(trim.cancel)
        log.info(
            "agenthub gateway listening on %s://%s:%d (provider=%s, auth=%s, data=%s, database=%s)",
            self.scheme,
            s.host,
            self.port,
            s.provider,
            node.auth.auth_mode,
            s.resolved_data_dir,
            getattr(self.transcripts.inner, "display_name", type(self.transcripts.inner).__name__),
        )

    async def _shared_state(self, s: GatewaySettings) -> tuple[EventBus, Cluster]:
        """The bus and the cluster: in memory for one process, on Redis when ``redis_url`` is set."""
        if not s.redis_url:
            bus = MemoryBus(
                s.limits.history_per_stream,
                s.limits.max_streams,
                bytes_per_stream=s.limits.history_bytes_per_stream,
                bytes_total=s.limits.history_bytes_total,
            )
            return bus, LocalCluster(self.worker)
        r = s.redis
        limits = RedisBusLimits(
            history_per_stream=s.limits.history_per_stream,
            bytes_per_stream=s.limits.history_bytes_per_stream,
            stream_ttl_s=r.stream_ttl_s,
            firehose_len=r.firehose_len,
            publish_timeout_s=r.publish_timeout_s,
            max_pending=r.max_pending,
        )
        redis_bus = RedisBus(s.redis_url, prefix=r.prefix, limits=limits)
        try:
            await redis_bus.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                await redis_bus.stop(flush_s=0)
            raise ConfigError(
                f"cannot reach Redis at {mask_url_password(s.redis_url)}: {exc} "
                "(start it, or fix --redis-url / AGENTHUB_REDIS_URL)"
            ) from None
        self._stack.push_async_callback(redis_bus.stop)  # after the cluster and the node (LIFO)
        cluster = RedisCluster(
            redis_bus,
            worker=self.worker,
            node_ttl_ms=r.node_ttl_ms,
            rpc_timeout_s=r.rpc_timeout_s,
            lock_ttl_ms=r.lock_ttl_ms,
        )
        return redis_bus, cluster

    def _watch_database(self, node: Node) -> None:
        """Probe the database now and then: ``health`` shows it, and new runs wait while it is down."""
        ping = getattr(self.transcripts.inner, "ping", None)
        if ping is None:
            return

        async def watch() -> None:
            was_ok = True
            while True:
                try:
                    state = await ping()
                    state["ok"] = True
                except Exception as exc:
                    state = {"ok": False, "error": str(exc) or type(exc).__name__}
                ok = bool(state["ok"])
                node.backends["database"] = state
                if ok:
                    node.runs.unavailable.pop("database", None)
                else:
                    node.runs.unavailable["database"] = f"database unreachable: {state['error']}"
                if ok != was_ok:
                    log.log(logging.INFO if ok else logging.WARNING, "database %s", "reachable again" if ok else state)
                    node.health_changed()
                was_ok = ok
                await asyncio.sleep(self.settings.limits.database_probe_s)

        task = asyncio.get_running_loop().create_task(watch(), name="database-probe")
        self._stack.callback(task.cancel)

    def _observe(self, s: GatewaySettings, node: Node, runs: RunManager) -> None:
        """Plug metrics (and, with ``otel.enabled``, traces) into the core's observation points."""
        self.metrics.registry.register(GatewayCollector(node, self.counters, self.transcripts, self.door))
        engine = getattr(self.store, "engine", None)
        if engine is not None:
            self.metrics.watch_engine(engine)
        observers: list[Observer] = [self.metrics]
        if s.otel.enabled:
            try:
                from .tracing import install
            except ImportError:
                raise ConfigError("otel.enabled needs the otel extra: pip install 'agenthub[otel]'") from None
            observers.append(install(s.otel.service_name, self._stack))
        observer: Observer = observers[0] if len(observers) == 1 else Observers(observers)
        node.dispatcher.observer = observer
        runs.observer = observer

    def _metrics_guard(self, s: GatewaySettings, node: Node) -> Callable[[web.Request], Awaitable[None]] | None:
        """``/metrics`` asks for the gateway's credential when there is one, unless ``security.metrics_public``."""
        if s.security.metrics_public or not node.auth.requires_credential:
            return None
        gate = Gatekeeper(node, s.security.trusted_proxies)

        async def guard(request: web.Request) -> None:
            if not await gate.check(request):
                raise AccessDenied("unauthorized", "credential required: Authorization: Bearer <gateway token>")

        return guard

    def _canvas_root(self, s: GatewaySettings) -> Path:
        return (s.canvas.root or s.resolved_data_dir / "canvas").expanduser()

    async def _serve_canvas(self, s: GatewaySettings, node: Node) -> None:
        """The canvas host on its own port, with the main port's credential and Origin rule (its own origin)."""
        sec = s.security
        auth = CanvasAuth(limiter=node.auth.limiter)
        if node.auth.trusted_proxy_header:
            header = node.auth.trusted_proxy_header

            def identify(request: web.Request) -> str | None:
                return proxy_identity(request, header, sec.trusted_proxies)

            auth.identify = identify
        else:
            auth.secret_hash = node.auth.password_hash or node.auth.token_hash
        host = s.canvas.host or s.host
        self.canvas = canvas = CanvasHost(
            self._canvas_root(s),
            auth,
            max_file_bytes=s.canvas.max_file_bytes,
            max_live_clients=s.canvas.max_live_clients,
            force_polling=s.canvas.force_polling,
            poll_delay_ms=s.canvas.poll_delay_ms,
        )
        door = self._door(origin_host=host, origin_port=lambda: self._bound("canvas"))
        await canvas.start()
        self._stack.push_async_callback(canvas.stop)
        await self._serve(canvas.application(list(door)), host, s.canvas.port, "canvas")

    def _bound(self, name: str) -> int:
        return self.edge.bound.get(name, 0) if self.edge is not None else 0

    def _lock_data_dir(self) -> None:
        """Data dir 0700, database 0600, and an exclusive lock: one gateway per data dir.

        A worker of ``--workers N`` takes no lock of its own: its supervisor holds it for
        the whole gateway, which the worker checks (the lock file names the supervisor).
        """
        try:
            note = secure_dir(self.data_dir)
            if note is not None:
                log.log(logging.WARNING if "chmod" in note else logging.INFO, "%s", note)
            if self.worker_of is not None:
                holder = lock_holder(self.data_dir)
                if holder != self.worker_of:
                    raise ConfigError(
                        f"data dir {self.data_dir} is not held by this worker's supervisor (pid {self.worker_of}, "
                        f"holder: {holder}): workers are started by `agenthub gateway --workers N` only"
                    )
            else:
                lock = DataDirLock(self.data_dir)
                lock.acquire()
                self._stack.callback(lock.release)
        except DataDirBusyError as exc:
            raise ConfigError(str(exc)) from None
        except OSError as exc:
            raise self._data_dir_error(exc) from None
        if self._own_db:
            try:
                secure_file(self.data_dir / "agenthub.db", create=True)
            except OSError as exc:
                raise self._data_dir_error(exc) from None

    def _data_dir_error(self, exc: OSError) -> Exception:
        """An unusable data dir: said as the database's open error when the database lives there."""
        if self._own_db:
            return open_error(exc, self.data_dir / "agenthub.db")
        return ConfigError(f"cannot use data dir {self.data_dir}: {exc.strerror or exc}")

    def _door(
        self,
        also_origin: Callable[[str], bool] | None = None,
        *,
        origin_host: str | None = None,
        origin_port: Callable[[], int] | None = None,
    ) -> list[Middleware]:
        """Every listener's middlewares: a client gone mid-request, the forwarded client (behind trusted
        proxies), then the Origin check (against the main port's own origin, or the canvas host's)."""
        sec = self.settings.security
        host = origin_host or self.settings.host
        origin = origin_middleware(sec.allowed_origins, host, origin_port or (lambda: self.port), also_origin)
        forwarded = [forwarded_middleware(sec.trusted_proxies)] if sec.trusted_proxies else []
        return [peer_gone_middleware, *forwarded, origin]

    @property
    def scheme(self) -> str:
        """``wss`` when the main listener serves TLS (``--tls-cert``), else ``ws``."""
        return "wss" if self.settings.security.tls_cert is not None else "ws"

    async def _serve(
        self, app: web.Application, host: str, port: int, name: str, ssl_context: ssl.SSLContext | None = None
    ) -> web.AppRunner:
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=2.0,
            keepalive_timeout=self.settings.limits.idle_timeout_s,
        )
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        # The workers of one --workers N gateway share the main port (the kernel spreads the connections).
        reuse_port = self.worker is not None and name == "main"
        site = GuardedSite(runner, host, port, self.door, name, ssl_context=ssl_context, reuse_port=reuse_port)
        await site.start()
        assert self.edge is not None
        self.edge.bound[name] = site.port
        return runner

    def _root(self, node: Node) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        sec = self.settings.security
        identify = None
        if sec.resolved_auth_mode(self.settings.token) == "trusted-proxy":

            def identify(request: web.Request) -> str | None:
                return proxy_identity(request, sec.trusted_proxy_header, sec.trusted_proxies)

        ws_handler = native_handler(node, self.counters, identify)

        async def root(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                response: web.StreamResponse = await ws_handler(request)
                return response
            return await ui_edge.index(request)

        return root

    def _apply(self, settings: GatewaySettings) -> None:
        """Apply settings that can change at run time; the rest wait for a restart."""
        node = self.node
        if node is None:
            return
        node.limits = node_limits(settings)
        self.door.limits = fit_to_descriptors(door_limits(settings))
        node.runs.chat_delta_interval_ms = settings.limits.chat_delta_interval_ms
        node.runs.run_timeout_s = settings.limits.run_timeout_s
        node.runs.max_message_chars = settings.limits.max_message_chars
        node.runs.transcript_blocks_chars = settings.limits.transcript_blocks_chars
        node.runs.finished_runs = settings.limits.finished_runs
        node.runs.finished_runs_bytes = settings.limits.finished_runs_bytes
        lim = settings.limits
        self.transcripts.resize(
            lim.transcript_cache_sessions, lim.transcript_cache_messages, lim.transcript_cache_bytes
        )
        if self.scheduler is not None:
            self.scheduler.apply(cron_config(settings), heartbeat_config(settings))
        node.health_changed()

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(300)
            ttl = self.settings.limits.idempotency_ttl_s
            with contextlib.suppress(Exception):
                await self.store.purge_idempotent(now_ms() - ttl * 1000)

    async def serve_forever(self, stop: asyncio.Event) -> None:
        await stop.wait()
