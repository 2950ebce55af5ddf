"""The composition root: builds every component from settings and wires them. Wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import ValidationError

from .agents import build_runtime
from .agents.tools import default_tools
from .config import REDACTED, RESTART_FIELDS, GatewaySettings, is_loopback, merge_patch
from .core.api import register_handlers
from .core.approvals import ApprovalService, node_tools, register_approval_handlers
from .core.auth import Authenticator, hash_secret
from .core.bus import MemoryBus
from .core.logbuffer import LogBuffer
from .core.node import Node, NodeLimits
from .core.node_pairing import register_node_pairing_handlers
from .core.nodes import NodeRegistry, register_node_handlers
from .core.pairing import PairingService, register_pairing_handlers
from .core.ratelimit import AuthLimiter, SecurityLimits
from .core.runs import RunManager, now_ms
from .core.runtime import AgentRuntime
from .core.store import Store
from .core.transcripts import TranscriptCache
from .protocol import _json
from .protocol.errors import ErrorCode, RpcError
from .protocol.frames import describe_validation_error
from .storage.sqlite import SqliteStore
from .web import agentbox as agentbox_edge
from .web import langbot as langbot_edge
from .web import myagent as myagent_edge
from .web import ui as ui_edge
from .web.edge import Edge
from .web.http import healthz, metrics_handler
from .web.origin import forwarded_middleware, origin_middleware, proxy_identity
from .web.ws import FrameCounters, native_handler

# Edge modules mounted on the gateway, in order: each is ``mount(edge: Edge) -> None``.
MOUNTS: list[Callable[[Edge], None]] = [agentbox_edge.mount, langbot_edge.mount, myagent_edge.mount, ui_edge.mount]

__all__ = ["ConfigError", "Gateway", "SettingsService"]

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """The gateway refuses to start with these settings."""


def _deep_merge(*layers: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        out = merge_patch(out, layer)
    return out


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


class SettingsService:
    """Owns the effective settings: defaults < file < stored overrides < env and CLI."""

    def __init__(self, base: dict[str, Any], overrides: dict[str, Any], store: Store) -> None:
        self.base = base
        self.overrides = overrides
        self.store = store
        self.stored: dict[str, Any] = {}
        self.settings = self._build({})
        self.listeners: list[Callable[[GatewaySettings], None]] = []

    def _build(self, stored: dict[str, Any]) -> GatewaySettings:
        return GatewaySettings.model_validate(_deep_merge(self.base, stored, self.overrides))

    async def load(self) -> None:
        self.stored = await self.store.get_config()
        try:
            self.settings = self._build(self.stored)
        except ValidationError as exc:
            log.error("stored config is invalid and was ignored: %s", describe_validation_error(exc))

    def public(self) -> dict[str, Any]:
        return self.settings.public_dict()

    def schema(self) -> dict[str, Any]:
        return GatewaySettings.model_json_schema()

    def parse_raw(self, raw: str) -> dict[str, Any]:
        try:
            data = _json.loads(raw)
        except _json.JSONDecodeError:
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: raw: not valid JSON") from None
        if not isinstance(data, dict):
            raise RpcError(ErrorCode.INVALID_REQUEST, "invalid params: raw: must be a JSON object")
        return data

    async def replace(self, config: dict[str, Any]) -> dict[str, Any]:
        if "token" in config:
            raise RpcError(
                ErrorCode.INVALID_REQUEST,
                "invalid params: token: set the gateway token with --token or AGENTHUB_GATEWAY_TOKEN",
            )
        new = _restore_redacted(config, self.stored)
        try:
            settings = self._build(new)
        except ValidationError as exc:
            raise RpcError(ErrorCode.INVALID_REQUEST, describe_validation_error(exc, "invalid config: ")) from None
        restart = sorted(k for k in RESTART_FIELDS if getattr(settings, k) != getattr(self.settings, k))
        await self.store.put_config(new, now_ms())
        self.stored = new
        self.settings = settings
        for listener in self.listeners:
            listener(settings)
        return {"ok": True, "config": self.public(), "restartRequired": restart}

    async def patch(self, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.replace(merge_patch(self.stored, patch))


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
    ) -> None:
        self.base = base or {}
        self.overrides = overrides or {}
        first = GatewaySettings.model_validate(_deep_merge(self.base, self.overrides))
        mode = first.security.resolved_auth_mode(first.token)
        if not is_loopback(first.host) and (mode == "none" or (mode == "token" and first.token is None)):
            raise ConfigError(f"refusing to bind {first.host} without a token (--token or AGENTHUB_GATEWAY_TOKEN)")
        if first.myagent.port is not None and first.myagent.state_secret_key is None and not first.dev:
            raise ConfigError(
                "refusing to serve MyAgent without a fixed state key "
                "(--myagent-secret or AGENTHUB_MYAGENT_SECRET), unless --dev is given"
            )
        self.edge_options = edge_options or {}
        data_dir = first.resolved_data_dir
        # Every caller sees the store through the transcript cache, so no transcript write bypasses it.
        self.transcripts = TranscriptCache(
            store or SqliteStore(str(Path(data_dir) / "agenthub.db")),
            sessions=first.limits.transcript_cache_sessions,
            messages=first.limits.transcript_cache_messages,
            max_bytes=first.limits.transcript_cache_bytes,
        )
        self.store: Store = self.transcripts
        self.config = SettingsService(self.base, self.overrides, self.store)
        self.runtime_factory = runtime_factory
        self.counters = FrameCounters()
        self.node: Node | None = None
        self.nodes: NodeRegistry | None = None
        self.edge: Edge | None = None
        self.runner: web.AppRunner | None = None
        self.port: int = first.port
        self._stack = contextlib.AsyncExitStack()
        self._stopped = asyncio.Event()
        self._purge: asyncio.Task[None] | None = None

    @property
    def settings(self) -> GatewaySettings:
        return self.config.settings

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
        await self.store.open()
        self._stack.push_async_callback(self.store.close)
        await self.config.load()
        s = self.settings
        self.transcripts.resize(
            s.limits.transcript_cache_sessions, s.limits.transcript_cache_messages, s.limits.transcript_cache_bytes
        )
        failed = await self.store.fail_interrupted_runs("gateway restarted while the run was active", now_ms())
        if failed:
            log.warning("marked %d interrupted run(s) as error", failed)
        await self.store.purge_idempotent(now_ms() - s.limits.idempotency_ttl_s * 1000)
        bus = MemoryBus(s.limits.history_per_stream, s.limits.max_streams)
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
        )
        sec = s.security
        mode = sec.resolved_auth_mode(s.token)
        token_hash = hash_secret(s.token.get_secret_value()) if s.token is not None and mode == "token" else None
        security = security_limits(s)
        pairing = PairingService(self.store, require_pairing=sec.require_pairing, cache_size=sec.device_cache_size)
        self._stack.push_async_callback(pairing.flush)  # runs before store.close (LIFO)
        auth = Authenticator(
            self.store,
            token_hash,
            pairing=pairing,
            limiter=AuthLimiter(security),
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
        pairing.bind(node.hub.broadcast, lambda: node.connections.values())
        self.nodes = NodeRegistry(node)
        if s.limits.log_buffer_bytes > 0:
            node.log_buffer = LogBuffer(s.limits.log_buffer_bytes)
            gateway_log = logging.getLogger("agenthub")
            gateway_log.addHandler(node.log_buffer)
            self._stack.callback(gateway_log.removeHandler, node.log_buffer)
        register_handlers(node, self.config)
        register_pairing_handlers(node.dispatcher, pairing, now_ms)
        register_node_handlers(node, self.nodes)
        register_node_pairing_handlers(node.dispatcher, pairing, now_ms)
        approvals = ApprovalService(node.hub.broadcast, timeout_ms=sec.approval_timeout_ms)
        register_approval_handlers(node.dispatcher, approvals)
        registry = self.nodes
        extra_tools.append(lambda: node_tools(registry, approvals))
        self.config.listeners.append(lambda new: self._apply(new))
        node.start()

        # Every WebSocket upgrade on the main listener (native and dialect routes) passes the Origin check.
        app = web.Application(
            client_max_size=s.limits.max_payload,
            middlewares=self._door(),
        )
        app.router.add_get("/healthz", healthz(node))
        app.router.add_get("/metrics", metrics_handler(node, self.counters, self.transcripts))
        self.edge = Edge(node, self.store, s, self.config, self.counters, app, options=self.edge_options)
        for mount in MOUNTS:
            mount(self.edge)
        app.router.add_get("/", self._root(node))
        self.app = app
        self.runner = await self._serve(app, s.host, s.port, "main", tls_context(s))
        self.port = self.edge.bound["main"]
        for extra in self.edge.listeners:
            # Dialect ports (--agentbox-port, --myagent-port) get the same Origin allow-list: the gateway's
            # own pages live on the main port, so by default only those may open sockets here.
            extra.app.middlewares.extend(self._door())
            await self._serve(extra.app, extra.host, extra.port, extra.name)
        # Registered last so it runs first on exit: clients hear "shutdown" before sockets close.
        self._stack.push_async_callback(node.shutdown)
        self._purge = asyncio.get_running_loop().create_task(self._purge_loop())
        self._stack.callback(self._purge.cancel)
        log.info(
            "agenthub gateway listening on %s://%s:%d (provider=%s, auth=%s, data=%s)",
            self.scheme,
            s.host,
            self.port,
            s.provider,
            node.auth.auth_mode,
            s.resolved_data_dir,
        )

    def _door(self) -> list[Middleware]:
        """Every listener's middlewares: the forwarded client (behind trusted proxies), then the Origin check."""
        sec = self.settings.security
        door = [origin_middleware(sec.allowed_origins, self.settings.host, lambda: self.port)]
        return [forwarded_middleware(sec.trusted_proxies), *door] if sec.trusted_proxies else door

    @property
    def scheme(self) -> str:
        """``wss`` when the main listener serves TLS (``--tls-cert``), else ``ws``."""
        return "wss" if self.settings.security.tls_cert is not None else "ws"

    async def _serve(
        self, app: web.Application, host: str, port: int, name: str, ssl_context: ssl.SSLContext | None = None
    ) -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, host, port, reuse_address=True, backlog=4096, ssl_context=ssl_context)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        assert self.edge is not None
        self.edge.bound[name] = sockets[0].getsockname()[1] if sockets else port
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
        node.runs.chat_delta_interval_ms = settings.limits.chat_delta_interval_ms
        node.runs.run_timeout_s = settings.limits.run_timeout_s
        lim = settings.limits
        self.transcripts.resize(
            lim.transcript_cache_sessions, lim.transcript_cache_messages, lim.transcript_cache_bytes
        )
        node.health_changed()

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(300)
            ttl = self.settings.limits.idempotency_ttl_s
            with contextlib.suppress(Exception):
                await self.store.purge_idempotent(now_ms() - ttl * 1000)

    async def serve_forever(self, stop: asyncio.Event) -> None:
        await stop.wait()
