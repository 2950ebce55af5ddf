"""The gateway node: wires hub, bus, store, runs and auth, and owns presence and ticks.

Dialects and the socket edge talk to the node through its public methods:
``open_connection``, ``authenticate``, ``close_connection``, ``dispatch`` and
``shutdown``. The node knows no dialect and no provider.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..protocol.errors import CloseCode, ErrorCode, HandshakeError
from ..protocol.handshake import Accepted
from ..protocol.methods import EVENT_SCOPES
from .auth import Authenticator
from .bus import EventBus
from .cluster import Cluster
from .connection import Connection, ConnState, Principal
from .hub import Hub
from .logbuffer import LogBuffer
from .outbound import Outbound
from .ratelimit import PreAuthCounter, SecurityLimits
from .rpc import Call, Dispatcher
from .runs import RunManager, now_ms
from .sessions import session_defaults
from .store import Store

__all__ = ["Node", "NodeLimits"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NodeLimits:
    """The limits the node applies; refreshed from settings on config change."""

    max_payload: int = 1024 * 1024
    max_buffered_bytes: int = 4 * 1024 * 1024
    tick_interval_ms: int = 15_000
    handshake_timeout_ms: int = 10_000
    pre_connect_max_bytes: int = 64 * 1024
    signature_skew_ms: int = 120_000
    idempotency_ttl_s: int = 600
    presence_debounce_ms: int = 100
    # Newest entries kept in presence lists and snapshots (OpenClaw's system-presence MAX_ENTRIES).
    max_presence_entries: int = 200
    max_inflight_per_connection: int = 64


class Node:
    def __init__(
        self,
        *,
        bus: EventBus,
        store: Store,
        runs: RunManager,
        auth: Authenticator,
        limits: NodeLimits,
        provider_name: Callable[[], str],
    ) -> None:
        self.bus = bus
        self.store = store
        self.runs = runs
        # The other processes of this gateway (the run manager's): presence, forwarded aborts, waits.
        self.cluster: Cluster = runs.cluster
        self.auth = auth
        self.limits = limits
        self.provider_name = provider_name
        self.hub = Hub()
        self.dispatcher = Dispatcher()
        self.connections: dict[str, Connection] = {}
        self.started_ms = now_ms()
        self.presence_version = 0
        self.health_version = 0
        self.host = socket.gethostname()
        self.dropped_closed = 0  # drops counted on connections that have since closed
        self._tick: asyncio.TimerHandle | None = None
        self._presence_timer: asyncio.TimerHandle | None = None
        self._presence_cache: dict[str, dict[str, Any]] = {}  # conn_id -> presence entry
        self._unlisten = bus.add_listener(self.hub)
        self.stopping = False
        self.security = SecurityLimits()
        self.preauth = PreAuthCounter(self.security)
        # Called with each connection as it closes (core.nodes fails its pending invokes).
        self.close_listeners: list[Callable[[Connection], None]] = []
        # Messaging channels, when configured (the composition root sets it): see core.outbound.
        self.outbound: Outbound | None = None
        # hello-ok features.capabilities: server features OpenClaw's clients check before they use them.
        self.capabilities: set[str] = set()
        # The recent log for logs.tail, when the composition root keeps one (see core.logbuffer).
        self.log_buffer: LogBuffer | None = None
        # Backends other than the bus the composition root watches (the database): name -> state.
        self.backends: dict[str, dict[str, Any]] = {}
        self._presence_local = False  # a local change not yet told to the cluster
        self.cluster.bind(self)

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._tick = loop.call_later(self.limits.tick_interval_ms / 1000, self._on_tick)

    def _on_tick(self) -> None:
        self.hub.broadcast("tick", {"ts": now_ms()}, droppable=True)
        self._schedule_tick()

    async def shutdown(self, reason: str = "gateway stopping", restart_expected_ms: int | None = None) -> None:
        """Tell every client, stop runs, close sockets; the store is closed by the app."""
        self.stopping = True
        if self._tick is not None:
            self._tick.cancel()
        if self._presence_timer is not None:
            self._presence_timer.cancel()
        payload: dict[str, Any] = {"reason": reason}
        if restart_expected_ms is not None:
            payload["restartExpectedMs"] = restart_expected_ms
        self.hub.broadcast("shutdown", payload)
        await self.runs.shutdown()
        for conn in list(self.connections.values()):
            conn.close(CloseCode.SERVICE_RESTART, "gateway restarting")
        self._unlisten()

    # -- connections -----------------------------------------------------------
    def new_conn_id(self) -> str:
        return secrets.token_hex(8)

    def open_connection(self, conn: Connection) -> None:
        self.connections[conn.conn_id] = conn

    async def authenticate(self, conn: Connection, accepted: Accepted) -> Principal:
        """Run auth for a validated connect; on success the connection is OPEN."""
        try:
            principal = await self.auth.authenticate(accepted, conn.remote_ip, now_ms(), conn.proxy_user)
        except HandshakeError as exc:
            log.warning(
                "auth failed: conn=%s ip=%s client=%s: %s %s",
                conn.conn_id,
                conn.remote_ip,
                accepted.params.client.id,
                exc.code,
                (exc.details or {}).get("code", exc.message),
            )
            raise
        log.info(
            "authenticated: conn=%s ip=%s role=%s device=%s",
            conn.conn_id,
            conn.remote_ip,
            principal.role,
            principal.device_id or "-",
        )
        if conn.state is not ConnState.AWAITING_CONNECT:
            raise HandshakeError(ErrorCode.UNAVAILABLE, "connection closed during connect")
        conn.principal = principal
        conn.state = ConnState.OPEN
        conn.connected_at_ms = now_ms()
        return principal

    def announce(self, conn: Connection) -> None:
        """Broadcast presence after the hello-ok has been written."""
        self._presence_changed()

    def close_connection(self, conn: Connection) -> None:
        was_open = conn.principal is not None and conn.state is not ConnState.AWAITING_CONNECT
        conn.state = ConnState.CLOSED
        self.dropped_closed += conn.dropped
        self._presence_cache.pop(conn.conn_id, None)
        if self.connections.pop(conn.conn_id, None) is not None and was_open and not self.stopping:
            self._presence_changed()
        for listener in self.close_listeners:
            try:
                listener(conn)
            except Exception:
                log.exception("close listener failed")

    def _presence_changed(self, local: bool = True) -> None:
        """Bump the version now; broadcast once per ``presence_debounce_ms``.

        A burst of N connects would otherwise send N full presence lists to N
        clients (quadratic); clients only need the latest list and version.
        A local change is also told to the other processes (once per window);
        a change they told us is only broadcast here, so nothing echoes.
        """
        self.presence_version += 1
        self._presence_local = self._presence_local or local
        if self._presence_timer is None:
            delay = self.limits.presence_debounce_ms / 1000
            self._presence_timer = asyncio.get_running_loop().call_later(delay, self._broadcast_presence)

    def remote_presence_changed(self) -> None:
        """Another process's connections changed (or it died): tell this process's clients."""
        if not self.stopping:
            self._presence_changed(local=False)

    def _broadcast_presence(self) -> None:
        self._presence_timer = None
        if self.stopping:
            return
        if self._presence_local:
            self._presence_local = False
            self.cluster.presence_changed(self.local_presence())
        self.hub.broadcast(
            "presence",
            {"presence": self.presence()},
            state_version=self.state_version(),
        )

    def state_version(self) -> dict[str, int]:
        return {"presence": self.presence_version, "health": self.health_version}

    def health_changed(self) -> None:
        self.health_version += 1
        self.hub.broadcast("health", self.health(), state_version=self.state_version())

    # -- snapshots -------------------------------------------------------------
    def presence(self) -> list[dict[str, Any]]:
        """Every process's connections (this one's last), the newest ``max_presence_entries``."""
        remote = self.cluster.remote_presence()
        local = self.local_presence()
        if not remote:
            return local
        return [*remote, *local][-self.limits.max_presence_entries :]

    def local_presence(self) -> list[dict[str, Any]]:
        """The newest ``max_presence_entries`` open connections of this process, oldest first.

        Walks connections newest first and stops at the cap, reusing each
        connection's cached entry, so a snapshot costs O(cap), not O(connections):
        with 10,000 sockets every hello-ok and presence broadcast would otherwise
        rebuild and encode 10,000 entries.
        """
        entries: list[dict[str, Any]] = []
        cap = self.limits.max_presence_entries
        cache = self._presence_cache
        for conn in reversed(self.connections.values()):
            if len(entries) >= cap:
                break
            p = conn.principal
            if p is None or conn.state is not ConnState.OPEN:
                continue
            cached = cache.get(conn.conn_id)
            if cached is None:
                cached = cache[conn.conn_id] = self._presence_entry(conn, p)
            entries.append(cached)
        entries.reverse()
        return entries

    @staticmethod
    def _presence_entry(conn: Connection, p: Principal) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "host": p.display_name or p.client_id,
            "ip": conn.remote_ip or "unknown",
            "version": p.client_version,
            "platform": p.platform,
            "mode": p.client_mode,
            "reason": "connect",
            "ts": conn.connected_at_ms,
            "roles": [p.role],
            "scopes": sorted(p.scopes),
            "instanceId": p.instance_id or conn.conn_id,
        }
        if p.device_family:
            entry["deviceFamily"] = p.device_family
        if p.device_id:
            entry["deviceId"] = p.device_id
        if p.commands:
            entry["tags"] = list(p.commands)
        if p.role == "node":  # when the node was last heard from (core.nodes updates lastSeenMs)
            seen = p.extra.get("lastSeenMs")
            entry["lastActivityAt"] = seen if isinstance(seen, int) else conn.connected_at_ms
        return entry

    def health(self) -> dict[str, Any]:
        """Read from in-memory state (the backends' states are kept by their own probes), so
        ``durationMs`` is 0. ``ok`` is false while a shared backend is unreachable (degraded)."""
        degraded = [name for name, state in self.backends.items() if not state.get("ok", True)]
        why = self.cluster.unavailable()
        if why is not None:
            degraded.insert(0, "redis")
        out: dict[str, Any] = {
            "ok": not degraded,
            "ts": now_ms(),
            "durationMs": 0,
            "heartbeatSeconds": max(1, self.limits.tick_interval_ms // 1000),
            "defaultAgentId": "main",
        }
        if degraded:
            out["degraded"] = degraded
        return out

    def backend(self) -> dict[str, Any]:
        """Which process answered and what it runs on: ``health``, ``status`` and ``/metrics`` show it."""
        return {
            "process": {"pid": os.getpid(), "worker": self.cluster.worker, "nodeId": self.cluster.node_id},
            "bus": self.bus.describe(),
            "cluster": self.cluster.describe(),
            **self.backends,
        }

    # -- what other processes ask of this one (core.cluster.ClusterMember) ---------
    async def serve_abort(self, session_key: str, run_id: str | None, reason: str) -> list[str]:
        return self.runs.abort_local(session_key, run_id, reason)

    async def serve_wait(self, run_id: str, timeout_s: float) -> dict[str, Any] | None:
        run = await self.runs.wait(run_id, timeout_s)
        if run is None:
            return None
        if not run.done.is_set():
            return {"runId": run.run_id, "status": "timeout"}
        return run.result()

    async def fail_orphaned_run(self, run_id: str, reason: str) -> bool:
        return await self.runs.fail_orphaned(run_id, reason)

    def hello(self, conn: Connection, accepted: Accepted) -> dict[str, Any]:
        principal = conn.principal
        assert principal is not None
        return {
            "type": "hello-ok",
            "protocol": accepted.protocol,
            "server": {"version": __version__, "connId": conn.conn_id},
            "features": {
                "methods": self.dispatcher.methods(),
                "events": sorted(EVENT_SCOPES),
                "capabilities": sorted(self.capabilities),
            },
            "snapshot": {
                # Presence is read-scoped like its event: who is connected, from where, is not for everyone.
                "presence": self.presence() if conn.has_scope(EVENT_SCOPES["presence"]) else [],
                "health": self.health(),
                "stateVersion": self.state_version(),
                "uptimeMs": now_ms() - self.started_ms,
                "authMode": self.auth.auth_mode,
                "sessionDefaults": session_defaults(),
            },
            "auth": self._hello_auth(principal),
            "policy": {
                "maxPayload": self.limits.max_payload,
                "maxBufferedBytes": self.limits.max_buffered_bytes,
                "tickIntervalMs": self.limits.tick_interval_ms,
            },
        }

    @staticmethod
    def _hello_auth(principal: Principal) -> dict[str, Any]:
        auth: dict[str, Any] = {"role": principal.role, "scopes": sorted(principal.scopes)}
        # A freshly minted device token is shown once, in this hello-ok, and then forgotten.
        token = principal.extra.pop("deviceToken", None)
        issued = principal.extra.pop("deviceTokenIssuedMs", None)
        if isinstance(token, str):
            auth["deviceToken"] = token
            if isinstance(issued, int):
                auth["issuedAtMs"] = issued
        return auth

    # -- requests --------------------------------------------------------------
    async def dispatch(self, call: Call, params: Any) -> tuple[bool, Any]:
        return await self.dispatcher.dispatch(call, params)
