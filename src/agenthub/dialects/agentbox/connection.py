"""One AgentBox socket: ``auth`` first, then requests in and the user's events out.

Requests (the envelope's ``type``): ``auth``, ``ping``, ``subscribe``,
``unsubscribe``, ``task.action`` (``cancel``, ``append_turn``), and two
extensions of seed 002: ``create_task`` (the socket's ``POST /api/v1/tasks``:
same payload, validation and ownership; reply ``create_task.result``) and
``stats`` (reply ``stats.result``, see ``stats.py``).

Channels: ``task`` (topics: task ids), ``session`` (topics: session ids;
every task of the session, as the seed's Session Manager streams sessions) and
``system`` (topics: ``SYSTEM_TOPICS``). Subscribing to a named task or session
first replays what the bus still holds of its runs, after the reply, so a
client that subscribes after creating a task (as the seed's example does)
still sees all of it, even a task that already finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ...core.bus import Publication, ReplayGap
from ...core.connection import Connection, ConnState, Principal
from ...core.node import Node
from ...core.runs import now_ms, run_stream
from ...protocol.errors import CloseCode
from .events import STATS_TOPIC, SYSTEM_TOPICS, Prepared, prepare
from .frames import (
    AgentBoxError,
    AuthPayload,
    Code,
    CreateTask,
    Envelope,
    SubscribePayload,
    TaskActionPayload,
    decode,
    encode,
    parse,
)
from .keys import User, checked_key
from .tasks import Tasks

if TYPE_CHECKING:
    from .hub import AgentBoxHub

__all__ = ["MAX_AUTH_FAILURES", "AgentBoxSession", "ChannelSub"]

log = logging.getLogger(__name__)

MAX_AUTH_FAILURES = 3


@dataclass(slots=True)
class ChannelSub:
    all: bool = False
    topics: set[str] = field(default_factory=set)
    excluded: set[str] = field(default_factory=set)

    def matches(self, topic: str) -> bool:
        return topic in self.topics or (self.all and topic not in self.excluded)


Handler = Callable[["AgentBoxSession", User, Envelope], Awaitable[tuple[str, Any]]]


class AgentBoxSession:
    """One AgentBox socket: ``auth`` first, then requests in and the user's events out."""

    __slots__ = (
        "_after",
        "_deadline",
        "_preauth",
        "_replay",
        "conn",
        "device_id",
        "failures",
        "hub",
        "node",
        "subs",
        "tasks",
        "user",
    )

    def __init__(self, node: Node, conn: Connection, tasks: Tasks, hub: AgentBoxHub) -> None:
        self.node = node
        self.hub = hub
        self.conn = conn
        self.tasks = tasks
        self.user: User | None = None
        self.device_id: str | None = None
        self.failures = 0
        self.subs: dict[str, ChannelSub] = {}
        self._deadline: asyncio.TimerHandle | None = None
        self._replay: list[tuple[str, Publication]] = []  # (channel, publication) to send after the reply
        self._after: list[bytes] = []  # frames to send after the reply (a stats snapshot)
        self._preauth = False  # holds a node.preauth slot until auth succeeds or the socket ends

    def open(self) -> None:
        """Register, and close the socket if it has not authenticated in time.

        Until ``auth`` succeeds the socket holds one of its IP's pre-auth slots
        (``security.max_preauth_per_ip``, shared with the native port); past
        the cap it is closed 1008 at once, as a native socket would be.
        """
        self.node.open_connection(self.conn)
        self._preauth = self.node.preauth.try_enter(self.conn.remote_ip)
        if not self._preauth:
            self.conn.close(CloseCode.POLICY_VIOLATION, "too many unauthenticated connections")
            return
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.node.limits.handshake_timeout_ms / 1000, self._auth_timeout)

    def _auth_timeout(self) -> None:
        if self.user is None:
            self.conn.close(CloseCode.POLICY_VIOLATION, "auth timeout")

    def _leave_preauth(self) -> None:
        if self._preauth:
            self._preauth = False
            self.node.preauth.leave(self.conn.remote_ip)

    def closed(self) -> None:
        self._leave_preauth()
        if self._deadline is not None:
            self._deadline.cancel()
        self.hub.remove(self)
        self.node.close_connection(self.conn)

    async def receive(self, data: str | bytes) -> None:
        """Handle one inbound frame; a bad one gets an ``error`` reply and the socket stays usable."""
        if self.conn.state is not ConnState.AWAITING_CONNECT and self.conn.state is not ConnState.OPEN:
            return
        rid: str | None = None
        try:
            req = decode(data)
            rid = req.id
            if req.type == "auth":
                await self._auth(req)
                return
            if self.user is None:
                raise AgentBoxError(Code.UNAUTHORIZED, "authenticate first: send an auth message")
            handler = self._handlers.get(req.type)
            if handler is None:
                raise AgentBoxError(Code.UNKNOWN_TYPE, f"unknown message type: {req.type}")
            reply_type, payload = await handler(self, self.user, req)
            self.conn.send(encode(reply_type, payload, rid))
            self._flush_after_reply()
        except AgentBoxError as exc:
            self._error(exc.request_id or rid, exc)
        except Exception:  # a bug fails this request only, without details to the peer
            log.exception("agentbox request failed")
            self._error(rid, AgentBoxError(Code.INTERNAL, "internal error"))
        finally:
            self._replay, self._after = [], []

    def _error(self, request_id: str | None, exc: AgentBoxError) -> None:
        self.conn.send(encode("error", exc.body(), request_id))

    async def _auth(self, req: Envelope) -> None:
        if self.user is not None:
            raise AgentBoxError(Code.BAD_REQUEST, "already authenticated", req.id)
        p = parse(AuthPayload, req.payload, req.id)
        try:
            user = await checked_key(self.node, self.conn.remote_ip, p.token, req.id)
        except AgentBoxError as exc:
            self.failures += 1
            self._error(req.id, exc)
            if exc.code is Code.RATE_LIMITED or self.failures >= MAX_AUTH_FAILURES:
                self.conn.close(CloseCode.POLICY_VIOLATION, "too many failed auth attempts")
            return
        if self.conn.state is not ConnState.AWAITING_CONNECT:
            return  # closed while the key was being checked
        self.user = user
        self.device_id = p.device_id or f"device-{self.conn.conn_id}"
        self._leave_preauth()
        if self._deadline is not None:
            self._deadline.cancel()
        self.conn.principal = Principal(
            role="user",
            scopes=user.scopes,
            client_id="agentbox",
            client_mode="agentbox",
            display_name=user.user_id,
            device_id=self.device_id,
            user_id=user.user_id,
        )
        self.conn.state = ConnState.OPEN
        self.conn.connected_at_ms = now_ms()
        payload = {"success": True, "user_id": user.user_id, "device_id": self.device_id}
        self.conn.send(encode("auth.result", payload, req.id))
        self.hub.add(self, user.user_id)
        self.node.announce(self.conn)

    # -- requests ------------------------------------------------------------
    async def _ping(self, user: User, req: Envelope) -> tuple[str, Any]:
        return "pong", {}

    async def _subscribe(self, user: User, req: Envelope) -> tuple[str, Any]:
        p = parse(SubscribePayload, req.payload, req.id)
        turns = await self._check_topics(user, p, req.id)
        sub = self.subs.setdefault(p.channel, ChannelSub())
        # Named topics not yet followed get their retained history after the reply. Reading it and
        # subscribing happen with no await in between, so nothing is missed or repeated.
        fresh = [t for t in p.topics if not sub.matches(t)]
        if p.channel == "session":
            keys = {t: turns[t][0] for t in fresh}
            runs = {t: self.tasks.session_runs(user, key) for t, key in keys.items()}
        else:
            runs = {t: turns[t] for t in fresh if t in turns}
        self._replay = [(p.channel, pub) for t in fresh for run_id in runs.get(t, ()) for pub in self._history(run_id)]
        wants_stats = p.channel == "system" and STATS_TOPIC not in sub.topics
        if not p.topics:
            sub.all, sub.excluded = True, set()
        sub.topics.update(p.topics)
        sub.excluded.difference_update(p.topics)
        if wants_stats and STATS_TOPIC in sub.topics:  # stats only when named: a snapshot now, then periodic
            self._after.append(self.hub.stats_frame(await self.hub.stats(user)))
            self.hub.stats_wanted()
        return "subscribe.result", self._describe(p.channel)

    async def _unsubscribe(self, user: User, req: Envelope) -> tuple[str, Any]:
        p = parse(SubscribePayload, req.payload, req.id)
        sub = self.subs.get(p.channel)
        if not p.topics:
            self.subs.pop(p.channel, None)
        elif sub is not None:
            sub.topics.difference_update(p.topics)
            if sub.all:
                sub.excluded.update(p.topics)
        return "unsubscribe.result", self._describe(p.channel)

    async def _check_topics(self, user: User, p: SubscribePayload, rid: str | None) -> dict[str, list[str]]:
        """Validate the topics (all must be the user's): a task maps to its turns' run ids, a session to its key."""
        if p.channel == "system":
            unknown = sorted(set(p.topics) - SYSTEM_TOPICS.keys())
            if unknown:
                raise AgentBoxError(
                    Code.BAD_REQUEST, f"unknown system topic(s) {unknown}; known: {sorted(SYSTEM_TOPICS)}", rid
                )
            return {}
        out: dict[str, list[str]] = {}
        for topic in p.topics:
            if p.channel == "session":
                out[topic] = [await self.tasks.owned_session(user, topic, rid)]
            else:
                out[topic] = [t.run_id for t in await self.tasks.turns(await self.tasks.owned(user, topic, rid))]
        return out

    def _history(self, run_id: str) -> list[Publication]:
        try:
            return self.node.bus.history(run_stream(run_id), 0)
        except ReplayGap:  # no longer retained (or never published): live events only
            return []

    def _flush_after_reply(self) -> None:
        replay, self._replay = self._replay, []
        for channel, pub in replay:
            prepared = prepare(pub, self.hub.owner_of)
            if prepared is not None and prepared.owner == self.user_id:
                self.push(prepared, pub.droppable, channel)
        after, self._after = self._after, []
        for frame in after:
            self.conn.send(frame)

    @property
    def user_id(self) -> str | None:
        return self.user.user_id if self.user is not None else None

    def _describe(self, channel: str) -> dict[str, Any]:
        sub = self.subs.get(channel)
        if sub is None:
            return {"channel": channel, "subscribed": False, "all": False, "topics": []}
        return {"channel": channel, "subscribed": True, "all": sub.all, "topics": sorted(sub.topics)}

    async def _task_action(self, user: User, req: Envelope) -> tuple[str, Any]:
        p = parse(TaskActionPayload, req.payload, req.id)
        if p.action == "cancel":
            return "task.action.result", await self.tasks.cancel(user, p.task_id, req.id)
        if not p.data or not p.data.strip():
            raise AgentBoxError(Code.BAD_REQUEST, "append_turn needs data: the follow-up prompt", req.id)
        return "task.action.result", await self.tasks.append_turn(user, p.task_id, p.data, req.id)

    async def _create_task(self, user: User, req: Envelope) -> tuple[str, Any]:
        p = parse(CreateTask, req.payload, req.id)
        return "create_task.result", await self.tasks.create_task(user, p.prompt, p.agent, p.session_id, req.id)

    async def _stats(self, user: User, req: Envelope) -> tuple[str, Any]:
        return "stats.result", await self.hub.stats(user)

    _handlers: ClassVar[dict[str, Handler]] = {
        "ping": _ping,
        "subscribe": _subscribe,
        "unsubscribe": _unsubscribe,
        "task.action": _task_action,
        "create_task": _create_task,
        "stats": _stats,
    }

    # -- events --------------------------------------------------------------
    def wants(self, channel: str, topic: str) -> bool:
        sub = self.subs.get(channel)
        return sub is not None and sub.matches(topic) and self.conn.state is ConnState.OPEN

    @property
    def wants_stats(self) -> bool:
        """Stats are periodic snapshots, not events: only a socket that named the topic gets them."""
        sub = self.subs.get("system")
        return sub is not None and STATS_TOPIC in sub.topics and self.conn.state is ConnState.OPEN

    def push(self, prepared: Prepared, droppable: bool, only: str | None = None) -> None:
        """Send an event of this user's on each channel the socket follows it on; never awaits."""
        for channel, topic in prepared.topics.items():
            if (only is None or channel == only) and self.wants(channel, topic):
                frame = prepared.frame(channel)
                if self.conn.next_seq(droppable, len(frame)) is not None:
                    self.conn.send(frame)
