"""MyAgent edge (seed 003): its own listener (``--myagent-port``), sessions, replay and state.

Numbering without a private history: ``MyAgentBridge`` (one hub subscriber)
translates core run events of sessions ``myagent:<id>`` into MyAgent messages
and publishes them on the bus stream ``myagent:<id>``, whose seq *is* the
MyAgent ``seq``. Live delivery, ``user.ack`` and ``user.reconnect`` replay all
read that stream (``bus.history``), so the core bus is the only copy; the
transcript itself lives in the store. A session's events stay replayable for
``myagent.retention_s`` after its last socket left (and while the bus retains
the stream). Each publication is encoded once for every socket of the session.

``edge.options["myagent.agent_factory"]`` (set by ``agenthub.myagent``) may
supply a per-session agent: its tools (those with ``user_confirm`` pause for
``user.response``) and a runtime wrapping the configured provider.

Access: seed 003's protocol has no authentication (its clients just open
``ws://host:port``). On a gateway without auth, which only ever binds
loopback (the MyAgent host included), that stays so, and each socket holds one
of its IP's pre-auth slots (``security.max_preauth_per_ip``). On a gateway with
auth, the upgrade must carry the gateway's secret, as ``?token=`` (the seed's
clients take the URL, so ``ws://host:port/?token=...`` works unchanged) or
``Authorization: Bearer``, or come through a trusted proxy with an identity;
wrong secrets count against the IP in the gateway's one auth limiter. A
refused socket gets ``system.error`` (``metadata.code``: ``unauthorized``,
``rate_limited`` or ``too_many_connections``), then close 4401 or 4429.

Browsers: the port takes the gateway's allowed origins (by default its own
pages), so a page elsewhere gets HTTP 403 on the upgrade. In ``--dev`` on a
loopback address it also takes pages opened from a file (``Origin: null``, the
seed's quickstart HTML) and pages on any loopback port, and says so in the log
at start. With ``--tls-cert/--tls-key`` the port serves ``wss://``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from ..core.bus import Publication, ReplayGap
from ..core.connection import Connection, ConnState
from ..core.node import Node
from ..core.runs import now_ms
from ..core.runtime import AgentRuntime, Tool
from ..core.store import MessageRecord
from ..dialects import myagent as ma
from ..protocol import _json
from ..protocol.errors import RpcError
from .access import AccessDenied, Gatekeeper
from .edge import Edge, Listener
from .origin import is_loopback_host, local_page_origin
from .ws import accept, read_frames

__all__ = ["AgentSpec", "MyAgentBridge", "mount"]

log = logging.getLogger(__name__)

ENCODER = "myagent"


class AgentSpec(Protocol):
    """What an agent factory returns: tools, and a runtime built on the configured provider."""

    tools: Sequence[Tool]

    def runtime(self, base: AgentRuntime) -> AgentRuntime: ...


class ToolDeclinedError(RuntimeError):
    """The user answered ``confirmed: false``: the step is skipped."""


@dataclass(eq=False, slots=True)
class MyAgentSocket:
    conn: Connection
    sessions: set[str] = field(default_factory=set)
    n: int = 0

    def send_local(
        self, event: str, content: Any, metadata: dict[str, Any] | None = None, session_id: str | None = None
    ) -> None:
        """A message outside any session stream: ``seq`` 0 and a connection event id."""
        self.n += 1
        msg = ma.message(event, session_id, content, metadata)
        msg["event_id"] = f"conn.{self.conn.conn_id}.{self.n}"
        msg["seq"] = 0
        self.conn.send(_json.dumps(msg))


@dataclass(eq=False, slots=True)
class MyAgentSession:
    session_id: str
    created_ms: int
    agent: AgentSpec | None
    sockets: dict[MyAgentSocket, None] = field(default_factory=dict)
    acked_seq: int = 0
    detached_at: float | None = None
    expiry: asyncio.TimerHandle | None = None


class _ConfirmTool:
    """A tool that asks the user before each call (``user_confirm = True``)."""

    def __init__(self, tool: Tool, ask: Callable[[str, Mapping[str, Any]], Any]) -> None:
        self.tool = tool
        self.name = tool.name
        self.description = tool.description
        self.parameters = tool.parameters
        self._ask = ask

    async def call(self, args: Mapping[str, Any]) -> Any:
        if not await self._ask(self.name, args):
            raise ToolDeclinedError(f"skipped: the user declined {self.name}")
        return await self.tool.call(args)


class MyAgentBridge:
    """Core run events -> session streams, and session streams -> sockets."""

    def __init__(self, node: Node, settings: Any, factory: Callable[[], AgentSpec] | None) -> None:
        self.node = node
        self.settings = settings  # the gateway's MyAgentSettings
        self.factory = factory
        self.sessions: dict[str, MyAgentSession] = {}
        self.pending: dict[str, asyncio.Future[bool]] = {}
        self.key = self._state_key()

    def _state_key(self) -> bytes:
        secret = self.settings.state_secret_key
        if secret is not None:
            return bytes(secret.get_secret_value().encode())
        log.warning(
            "myagent: no state_secret_key, using an ephemeral one (--dev): exported states will not survive a restart"
        )
        return secrets.token_bytes(32)

    # -- fan-out (never awaits) ----------------------------------------------
    def deliver(self, pub: Publication) -> None:
        stream = pub.stream
        if stream.startswith("run:"):
            key = pub.payload.get("sessionKey")
            if isinstance(key, str) and key.startswith("myagent:"):
                msg = ma.translate(pub.event, pub.payload)
                if msg is not None:
                    self.publish(key[len("myagent:") :], msg)
        elif stream.startswith("myagent:"):
            session = self.sessions.get(stream[len("myagent:") :])
            if session is not None and session.sockets:
                data = self.encode(pub)
                for sock in session.sockets:
                    sock.conn.send(data)

    def publish(self, session_id: str, msg: dict[str, Any]) -> None:
        msg["session_id"] = session_id
        self.node.bus.publish(ma.session_stream(session_id), ENCODER, msg)

    def encode(self, pub: Publication) -> bytes:
        data: bytes | None = pub.encoded.get(ENCODER)
        if data is None:
            pub.payload["event_id"] = f"{pub.payload['session_id']}.{pub.epoch}.{pub.seq}"
            data = pub.encoded[ENCODER] = _json.dumps(pub.payload)
        return data

    # -- sessions ------------------------------------------------------------
    async def create(self, sock: MyAgentSocket, session_id: str | None = None) -> MyAgentSession:
        sid = session_id or f"sess_{secrets.token_hex(8)}"
        created = await self.node.store.ensure_session(ma.session_key(sid), now_ms())
        session = MyAgentSession(sid, created.created_ms, self.factory() if self.factory else None)
        self.sessions[sid] = session
        self.attach(sock, session)
        return session

    def attach(self, sock: MyAgentSocket, session: MyAgentSession) -> None:
        session.sockets[sock] = None
        session.detached_at = None
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        sock.sessions.add(session.session_id)

    def detach(self, sock: MyAgentSocket) -> None:
        for sid in sock.sessions:
            session = self.sessions.get(sid)
            if session is None:
                continue
            session.sockets.pop(sock, None)
            if not session.sockets:
                session.detached_at = time.monotonic()
                session.expiry = asyncio.get_running_loop().call_later(self.settings.retention_s, self._expire, sid)

    def _expire(self, sid: str) -> None:
        session = self.sessions.get(sid)
        if session is not None and not session.sockets:
            del self.sessions[sid]

    async def find(self, sid: str) -> MyAgentSession | None:
        """A live session, or one the store still knows (after a restart or expiry)."""
        session = self.sessions.get(sid)
        if session is None:
            record = await self.node.store.get_session(ma.session_key(sid))
            if record is None:
                return None
            session = self.sessions[sid] = MyAgentSession(
                sid, record.created_ms, self.factory() if self.factory else None
            )
            session.detached_at = time.monotonic()
        return session

    async def ask(self, sid: str, tool: str, args: Mapping[str, Any]) -> bool:
        """Pause for the user's ``user.response``; a timeout fails the step."""
        step_id = f"step_{secrets.token_hex(6)}"
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.pending[step_id] = fut
        self.publish(
            sid,
            ma.message(
                "agent.user_confirm",
                sid,
                f"Confirm running {tool}?",
                {"tool_name": tool, "tool_args": dict(args), "requires_confirmation": True},
                step_id,
            ),
        )
        try:
            async with asyncio.timeout(self.settings.confirm_timeout_s):
                return await fut
        except TimeoutError:
            raise TimeoutError(f"no confirmation for {tool} within {self.settings.confirm_timeout_s:g}s") from None
        finally:
            self.pending.pop(step_id, None)

    def tools_for(self, session: MyAgentSession) -> Sequence[Tool] | None:
        if session.agent is None:
            return None
        sid = session.session_id
        return [
            _ConfirmTool(t, lambda name, args: self.ask(sid, name, args)) if getattr(t, "user_confirm", False) else t
            for t in session.agent.tools
        ]


class MyAgentHandler:
    """Turns one socket's decoded commands into core calls and session events."""

    def __init__(self, bridge: MyAgentBridge, sock: MyAgentSocket) -> None:
        self.bridge = bridge
        self.node = bridge.node
        self.sock = sock
        self.tasks: set[asyncio.Task[None]] = set()

    def error(self, text: str, session_id: str | None = None, **meta: Any) -> None:
        self.sock.send_local("system.error", text, meta, session_id)

    async def receive(self, data: str | bytes) -> None:
        try:
            cmd = ma.decode(data)
        except ma.MyAgentInputError as exc:
            self.error(str(exc), exc.session_id)
            return
        try:
            await self._handle(cmd)
        except ma.MyAgentInputError as exc:
            self.error(str(exc), exc.session_id)
        except Exception:  # a failure answers this message only; details stay in the log
            log.exception("myagent: %s failed", type(cmd).__name__)
            self.error("internal error")

    def _attached(self, sid: str) -> MyAgentSession:
        session = self.bridge.sessions.get(sid)
        if session is None or self.sock not in session.sockets:
            raise ma.MyAgentInputError(
                f"unknown session {sid} on this connection (create one, or send user.reconnect)", sid
            )
        return session

    async def _handle(self, cmd: ma.Command) -> None:
        bridge = self.bridge
        if isinstance(cmd, ma.CreateSession):
            session = await bridge.create(self.sock)
            bridge.publish(
                session.session_id,
                ma.message("agent.session_created", None, "Session created", {"created_ms": session.created_ms}),
            )
        elif isinstance(cmd, ma.UserMessage):
            await self._start_run(self._attached(cmd.session_id), cmd.content)
        elif isinstance(cmd, ma.Ack):
            self._ack(cmd)
        elif isinstance(cmd, ma.Reconnect):
            await self._reconnect(cmd)
        elif isinstance(cmd, ma.RequestState):
            await self._export(self._attached(cmd.session_id))
        elif isinstance(cmd, ma.ReconnectWithState):
            await self._restore(cmd.signed_state)
        elif isinstance(cmd, ma.SolveTasks):
            session = self._attached(cmd.session_id)
            task = asyncio.get_running_loop().create_task(self._solve(session, cmd))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            fut = bridge.pending.get(cmd.step_id)
            if fut is None or fut.done():
                raise ma.MyAgentInputError(f"no pending confirmation {cmd.step_id}", cmd.session_id)
            fut.set_result(cmd.confirmed)

    async def _start_run(self, session: MyAgentSession, text: str) -> str:
        run_id = secrets.token_hex(8)
        agent = session.agent
        try:
            await self.node.runs.start(
                run_id,
                ma.session_key(session.session_id),
                text,
                f"myagent:{self.sock.conn.conn_id}",
                runtime=agent.runtime(self.node.runs.runtime()) if agent is not None else None,
                tools=self.bridge.tools_for(session),
            )
        except RpcError as exc:  # the core refused the run (past limits.max_message_chars): a system.error
            raise ma.MyAgentInputError(exc.message, session.session_id) from None
        return run_id

    def _ack(self, cmd: ma.Ack) -> None:
        seq, sid = cmd.last_seq, cmd.session_id
        if cmd.last_event_id is not None:
            parsed = ma.parse_event_id(cmd.last_event_id)
            if parsed is None:
                return  # a connection-level id: nothing to acknowledge
            sid, _epoch, seq = parsed
        if sid is None and len(self.sock.sessions) == 1:
            sid = next(iter(self.sock.sessions))
        session = self.bridge.sessions.get(sid) if sid else None
        if session is None or seq is None:
            raise ma.MyAgentInputError("user.ack: unknown session", sid)
        session.acked_seq = max(session.acked_seq, seq)

    async def _reconnect(self, cmd: ma.Reconnect) -> None:
        bridge = self.bridge
        session = await bridge.find(cmd.session_id)
        if session is None:
            raise ma.MyAgentInputError(f"unknown session {cmd.session_id}", cmd.session_id)
        after, epoch = session.acked_seq, None
        if cmd.last_event_id is not None:
            parsed = ma.parse_event_id(cmd.last_event_id)
            if parsed is None or parsed[0] != cmd.session_id:
                raise ma.MyAgentInputError("last_event_id does not belong to this session", cmd.session_id)
            _sid, epoch, after = parsed
        if cmd.last_seq is not None:
            after = cmd.last_seq
        stream = ma.session_stream(cmd.session_id)
        try:
            replay = (
                []
                if bridge.node.bus.position(stream) is None and after == 0
                else bridge.node.bus.history(stream, after, epoch)
            )
        except ReplayGap as exc:
            replay = []
            self.error(f"cannot replay after seq {after}: {exc.reason}", cmd.session_id, code="REPLAY_GAP")
        # No await between reading history and attaching: nothing published in between is missed.
        for pub in replay:
            self.sock.conn.send(bridge.encode(pub))
        bridge.attach(self.sock, session)
        bridge.publish(
            session.session_id,
            ma.message("agent.session_resumed", None, "Session resumed", {"replayed": len(replay), "after_seq": after}),
        )

    async def _export(self, session: MyAgentSession) -> None:
        sid = session.session_id
        history = await self.node.store.history(ma.session_key(sid), 1000)
        now = now_ms()
        state = {
            "version": ma.STATE_VERSION,
            "session_id": sid,
            "created_ms": session.created_ms,
            "step": sum(1 for m in history if m.role == "user"),
            "messages": [{"role": m.role, "content": m.text, "ts_ms": m.ts_ms} for m in history],
            "exported_ms": now,
            "expires_ms": now + self.bridge.settings.state_ttl_s * 1000,
        }
        signed = ma.sign_state(state, self.bridge.key)
        self.bridge.publish(sid, ma.message("agent.state_exported", None, "State exported", {"signed_state": signed}))

    async def _restore(self, signed: dict[str, Any]) -> None:
        try:
            state = ma.verify_state(signed, self.bridge.key, now_ms())
        except ma.StateError as exc:
            raise ma.MyAgentInputError(f"state not restored: {exc}") from None
        session = await self.bridge.create(self.sock)
        key = ma.session_key(session.session_id)
        for m in state["messages"]:
            if isinstance(m, dict) and m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str):
                await self.node.store.append_message(
                    MessageRecord(
                        key, m["role"], m["content"], int(m.get("ts_ms") or now_ms()), None, {"restored": True}
                    )
                )
        self.bridge.publish(
            session.session_id,
            ma.message(
                "agent.state_restored",
                None,
                "Session restored",
                {
                    "restored_step": state["step"],
                    "original_session_id": state.get("session_id"),
                    "original_created_ms": state.get("created_ms"),
                },
            ),
        )

    async def _solve(self, session: MyAgentSession, cmd: ma.SolveTasks) -> None:
        sid, bridge = session.session_id, self.bridge
        bridge.publish(
            sid,
            ma.message(
                "solver.start",
                None,
                f"Solving {len(cmd.tasks)} task(s)",
                {"tasks": cmd.tasks, "question": cmd.question, "plan_summary": cmd.plan_summary},
            ),
        )
        results = []
        for index, task in enumerate(cmd.tasks):
            title = str(task.get("title") or task.get("name") or f"task {index + 1}")
            objective = str(task.get("objective") or task.get("description") or title)
            prompt = f"{title}: {objective}" + (f"\nContext: {cmd.question}" if cmd.question else "")
            refused: str | None = None
            try:
                run_id = await self._start_run(session, prompt)
            except ma.MyAgentInputError as exc:  # the core refused the step's run: the step fails
                run, refused = None, str(exc)
            else:
                run = await self.node.runs.wait(run_id, self.node.runs.run_timeout_s + 5)
            ok = run is not None and run.status.value == "ok"
            result = {
                "task_id": task.get("id", index + 1),
                "title": title,
                "status": "completed" if ok else "failed",
                "result": run.text if run is not None else "",
                "error": run.error if run else (refused or "lost"),
            }
            results.append(result)
            bridge.publish(
                sid,
                ma.message(
                    "solver.task_completed" if ok else "solver.task_failed",
                    None,
                    result["result"] or result["error"],
                    {"task": task, **result},
                ),
            )
        bridge.publish(
            sid,
            ma.message(
                "solver.completed",
                None,
                {"results": results},
                {"completed": sum(r["status"] == "completed" for r in results), "total": len(results)},
            ),
        )

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.bridge.detach(self.sock)


def mount(edge: Edge) -> None:
    """Serve MyAgent on its own listener when ``myagent.port`` is set."""
    settings = edge.settings.myagent
    if settings.port is None:
        return
    node = edge.node
    bridge = MyAgentBridge(node, settings, edge.options.get("myagent.agent_factory"))
    node.hub.add(bridge)
    gate = Gatekeeper(node, edge.settings.security.trusted_proxies)

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(text="MyAgent WebSocket endpoint: connect a WebSocket client to this URL\n")
        ws, conn = await accept(request, node, edge.counters)
        if conn is None:
            return ws
        try:
            admission = await gate.admit(request, anonymous_ok=not node.auth.requires_credential)
        except AccessDenied as exc:
            log.info("myagent refused conn=%s: %s", conn.conn_id, exc.code)
            meta: dict[str, Any] = {"code": exc.code}
            if exc.retry_after_ms is not None:
                meta["retry_after_ms"] = exc.retry_after_ms
            MyAgentSocket(conn).send_local("system.error", exc.message, meta)
            await ws.close(code=exc.close_code, message=exc.message.encode()[:120])
            return ws
        try:
            return await serve(ws, conn)
        finally:
            admission.release()  # an anonymous socket's pre-auth slot is held until it closes

    async def serve(ws: web.WebSocketResponse, conn: Connection) -> web.StreamResponse:
        conn.state = ConnState.OPEN
        node.open_connection(conn)
        sock = MyAgentSocket(conn)
        handler = MyAgentHandler(bridge, sock)
        log.info("myagent open conn=%s", conn.conn_id)
        sock.send_local("system.connected", "Connected to agenthub (MyAgent protocol)", {"connection_id": conn.conn_id})
        try:
            await read_frames(ws, handler.receive, edge.counters)
        finally:
            handler.close()
            node.close_connection(conn)
            log.info("myagent close conn=%s", conn.conn_id)
        return ws

    app = web.Application(client_max_size=node.limits.max_payload)
    app.router.add_get("/", handle)
    app.router.add_get("/ws", handle)
    host = settings.host or edge.settings.host
    also_origin = None
    if edge.settings.dev and is_loopback_host(host):
        also_origin = local_page_origin
        log.warning(
            "myagent: --dev on loopback: the MyAgent port also accepts browser pages opened from a file "
            "(Origin: null) and pages from any loopback port (http://localhost:*, http://127.0.0.1:*); "
            "without --dev, or on another address, only the gateway's allowed origins may"
        )
    edge.listeners.append(Listener(app, host, settings.port, "myagent", also_origin))
