"""The AgentBox dialect (seed 002): per-user API keys, task events, REST-created tasks.

Wire envelope: ``{id, type, payload, timestamp}``; a reply carries the ``id`` of
the request it answers (``auth.result``, ``subscribe.result``, ...), a failure is
``{id, type: "error", payload: {message, code}}``.

Nothing here is a copy of core state. A task IS a core run (``task_id`` = run
id) owned by a user (``Run.owner``, persisted); a follow-up turn is another run
in the same core session, with id ``<task_id>.<n>``, so its topic is derived
from its id. AgentBox sessions are core sessions keyed
``agentbox:<user_id>:<session_id>``: one user cannot even name another's.
Task events are translated from the core ``agent``/``chat`` events of owned runs
(runs without an owner, i.e. operator runs, are never shown to AgentBox users).
System events travel on the bus as ``agentbox.system`` publications on a
per-user stream (alerts on a shared one), so they fan out like everything else.

System topics: ``tasks`` -> ``task.created``, ``agents`` -> ``agent.created``,
``sessions`` -> ``session.created``, ``batches`` -> ``batch.created``,
``alerts`` -> ``alert``. Agents are announced, not stored: core runs one
configured runtime, so a task's ``agent`` is only echoed in ``task.created``.
One ``AgentBoxHub`` translates and encodes each publication once and offers
it only to the owner's sockets (every socket for alerts). Subscribing to a
named task first replays what the bus still holds of its runs, so a client
that subscribes after ``POST /api/v1/tasks`` (as the seed's example does)
still sees the whole task, even one that already finished.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.bus import Publication, ReplayGap
from ..core.connection import Connection, ConnState, Principal
from ..core.node import Node
from ..core.ratelimit import AuthLockedOut
from ..core.runs import Run, now_ms, run_stream
from ..core.secrets import hash_secret, secret_matches
from ..core.store import ApiKeyRecord, Store
from ..protocol import _json
from ..protocol.errors import CloseCode, RpcError
from ..protocol.frames import describe_validation_error

__all__ = [
    "MAX_AUTH_FAILURES",
    "SYSTEM_TOPICS",
    "AgentBoxError",
    "AgentBoxHub",
    "AgentBoxSession",
    "Code",
    "Tasks",
    "User",
    "authenticate_key",
    "checked_key",
    "decode",
    "encode",
    "hash_key",
    "new_api_key",
    "task_topic",
]

log = logging.getLogger(__name__)

SYSTEM_EVENT = "agentbox.system"  # bus event name of system events (native clients ignore it)
MAX_AUTH_FAILURES = 3
KEY_PREFIX = "ab_"
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
SYSTEM_TOPICS = {
    "tasks": "task.created",
    "agents": "agent.created",
    "sessions": "session.created",
    "batches": "batch.created",
    "alerts": "alert",
}
TASK_STATUS = {
    "queued": "queued",
    "running": "running",
    "ok": "completed",
    "error": "failed",
    "timeout": "failed",
    "aborted": "cancelled",
}
M = TypeVar("M", bound=BaseModel)


class Code(StrEnum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    UNAUTHORIZED = "unauthorized"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    INTERNAL = "internal"


_HTTP_STATUS = {
    Code.BAD_REQUEST: 400,
    Code.UNKNOWN_TYPE: 400,
    Code.UNAUTHORIZED: 401,
    Code.AUTH_FAILED: 401,
    Code.RATE_LIMITED: 429,
    Code.FORBIDDEN: 403,
    Code.NOT_FOUND: 404,
    Code.INTERNAL: 500,
}


class AgentBoxError(Exception):
    """One request failed; rendered as an ``error`` frame (WS) or a JSON error body (REST)."""

    def __init__(
        self, code: Code, message: str, request_id: str | None = None, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after_ms = retry_after_ms

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code.value}
        if self.retry_after_ms is not None:
            body["retry_after_ms"] = self.retry_after_ms
        return body


# -- API keys ----------------------------------------------------------------------


def hash_key(key: str) -> str:
    """What ``api_keys.key_hash`` stores: the key's SHA-256 (``core.secrets``)."""
    return hash_secret(key)


def new_api_key(user_id: str, scopes: list[str], created_ms: int) -> tuple[str, ApiKeyRecord]:
    """A fresh ``ab_<key_id>_<secret>`` key and the record that stores only its hash."""
    if not USER_ID.match(user_id):
        raise ValueError(f"invalid user id {user_id!r}: use letters, digits and _.@- (max 128)")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return key, ApiKeyRecord(key_id, user_id, hash_key(key), sorted(set(scopes)), created_ms)


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    scopes: frozenset[str]
    key_id: str


async def authenticate_key(store: Store, token: object) -> User:
    """Look the key up by its id, then compare hashes in constant time."""
    if not isinstance(token, str) or not token.startswith(KEY_PREFIX) or len(token) < 20 or token[15] != "_":
        raise AgentBoxError(Code.AUTH_FAILED, "invalid API key")
    record = await store.get_api_key(token[3:15])
    if record is None or not secret_matches(token, record.key_hash):
        raise AgentBoxError(Code.AUTH_FAILED, "invalid API key")
    if record.revoked_ms is not None:
        raise AgentBoxError(Code.AUTH_FAILED, "API key revoked")
    return User(record.user_id, frozenset(record.scopes), record.key_id)


async def checked_key(node: Node, ip: str, token: object, request_id: str | None = None) -> User:
    """``authenticate_key`` under the gateway's one auth limiter (shared with every other port and route).

    A wrong or revoked key counts as a failed guess for ``ip``; past the limit,
    and for as long as the lockout lasts, the answer is ``rate_limited`` with
    ``retry_after_ms`` and no key is even looked up.
    """
    try:
        return await node.auth.limiter.attempt(
            ip,
            now_ms(),
            lambda: authenticate_key(node.store, token),
            lambda exc: isinstance(exc, AgentBoxError) and exc.code is Code.AUTH_FAILED,
        )
    except AuthLockedOut as exc:
        raise AgentBoxError(
            Code.RATE_LIMITED, "too many failed authentication attempts", request_id, exc.retry_after_ms
        ) from None
    except AgentBoxError as exc:
        exc.request_id = exc.request_id or request_id
        raise


# -- envelope ----------------------------------------------------------------------


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Envelope(_Payload):
    id: Annotated[str, Field(max_length=256)] | None = None
    type: Annotated[str, Field(min_length=1, max_length=64)]
    payload: dict[str, Any] = Field(default_factory=dict)
    timestamp: int | float | None = None


class AuthPayload(_Payload):
    token: str
    device_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class SubscribePayload(_Payload):
    channel: Literal["task", "system"]
    topics: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=1000)] = []


class TaskActionPayload(_Payload):
    task_id: Annotated[str, Field(min_length=1, max_length=256)]
    action: Literal["cancel", "append_turn"]
    data: str | None = None


def parse(model: type[M], data: Any, request_id: str | None = None) -> M:
    """Validate a payload; the first bad field becomes a ``bad_request`` message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AgentBoxError(Code.BAD_REQUEST, describe_validation_error(exc, "invalid payload: "), request_id) from None


def decode(data: str | bytes) -> Envelope:
    """Parse one inbound frame. Only ``AgentBoxError`` escapes (with the request id when readable)."""
    try:
        obj = _json.loads(data)
    except _json.JSONDecodeError:
        raise AgentBoxError(Code.BAD_REQUEST, "invalid JSON") from None
    if not isinstance(obj, dict):
        raise AgentBoxError(Code.BAD_REQUEST, "a message must be a JSON object")
    rid = obj.get("id")
    return parse(Envelope, obj, rid if isinstance(rid, str) else None)


def encode(type_: str, payload: Any, request_id: str | None = None) -> bytes:
    msg: dict[str, Any] = {"type": type_, "payload": payload, "timestamp": now_ms()}
    if request_id is not None:
        msg["id"] = request_id
    return _json.dumps(msg)


# -- core events -> AgentBox events --------------------------------------------------


def task_topic(run_id: str) -> str:
    """Follow-up turns are ``<task_id>.<n>``: their events belong to the task's topic."""
    return run_id.partition(".")[0]


def _translate_run(pub: Publication) -> tuple[str, dict[str, Any]] | None:
    p = pub.payload
    run_id = p.get("runId", "")
    base = {"task_id": task_topic(run_id), "turn_id": run_id}
    if pub.event == "agent":
        stream, data = p.get("stream"), p.get("data") or {}
        if stream == "lifecycle" and data.get("phase") == "start":
            return "task.started", base
        if stream == "assistant":
            return "agent.message", {**base, "content": data.get("delta", ""), "text": data.get("text", "")}
        if stream == "thinking":
            return "agent.thinking", {**base, "content": data.get("delta", ""), "text": data.get("text", "")}
        if stream == "tool":
            out = {**base, "phase": data.get("phase"), "name": data.get("name"), "tool_call_id": data.get("toolCallId")}
            if "args" in data:
                out["args"] = data["args"]
            if "result" in data:
                out["result"] = data["result"]
                out["is_error"] = bool(data.get("isError"))
            return "agent.tool_call", out
        return None
    state = p.get("state")
    if state == "final":
        return "task.completed", {**base, "result": _message_text(p.get("message"))}
    if state == "aborted":
        return "task.cancelled", {**base, "partial": _message_text(p.get("message"))}
    if state == "error":
        return "task.failed", {**base, "error": p.get("errorMessage") or "task failed"}
    return None


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    return "".join(c.get("text", "") for c in message.get("content") or () if isinstance(c, dict))


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One publication as AgentBox sees it, encoded once for every subscriber."""

    owner: str | None  # None: every user (alerts)
    channel: str
    topic: str
    frame: bytes


def _prepare(pub: Publication, owner_of: Callable[[str, object], str | None]) -> _Prepared | None:
    if pub.event == SYSTEM_EVENT:
        p = pub.payload
        channel, topic, event_type, data, owner = "system", p["topic"], p["event_type"], p["data"], p["owner"]
    elif pub.event in ("agent", "chat") and pub.stream.startswith("run:"):
        owner = owner_of(pub.payload.get("runId", ""), pub.payload.get("sessionKey"))
        translated = _translate_run(pub) if owner is not None else None
        if translated is None:
            return None
        channel, topic = "task", task_topic(pub.payload["runId"])
        event_type, data = translated
    else:
        return None
    payload = {"channel": channel, "topic": topic, "event_type": event_type, "data": data}
    return _Prepared(owner, channel, topic, encode("event", payload))


# -- tasks: the operations both the socket and REST expose ---------------------------


def run_stream_names(run_ids: list[str]) -> frozenset[str]:
    return frozenset(run_stream(r) for r in run_ids)


def session_key(user_id: str, session_id: str) -> str:
    return f"agentbox:{user_id}:{session_id}"


@dataclass(slots=True)
class _Turn:
    run_id: str
    session_key: str
    status: str
    text: str | None
    created_ms: int


class Tasks:
    """Task, session, agent, batch and alert operations on top of core runs and sessions."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def emit(self, owner: str | None, topic: str, data: dict[str, Any]) -> None:
        """Publish a system event; ``owner=None`` reaches every user (alerts)."""
        stream = f"agentbox:user:{owner}" if owner is not None else "agentbox:alerts"
        payload = {"owner": owner, "topic": topic, "event_type": SYSTEM_TOPICS[topic], "data": data}
        self.node.bus.publish(stream, SYSTEM_EVENT, payload, seq_field=False)

    async def _turn(self, run_id: str) -> tuple[str | None, _Turn] | None:
        run = self.node.runs.get(run_id)
        if run is not None:
            return run.owner, _Turn(run_id, run.session_key, run.status.value, run.text, run.created_ms)
        record = await self.node.store.get_run(run_id)
        if record is None:
            return None
        return record.owner, _Turn(run_id, record.session_key, record.status, None, record.created_ms)

    async def owned(self, user: User, task_id: str, request_id: str | None = None) -> _Turn:
        """The task's first turn; another user's task is reported exactly like a missing one."""
        found = await self._turn(task_id) if "." not in task_id else None
        if found is None or found[0] != user.user_id:
            raise AgentBoxError(Code.NOT_FOUND, f"task not found: {task_id}", request_id)
        return found[1]

    async def turns(self, first: _Turn) -> list[_Turn]:
        """Every turn of the task, found by id (``<task_id>.2``, ...): core keeps the list, not us."""
        out = [first]
        while (found := await self._turn(f"{first.run_id}.{len(out) + 1}")) is not None:
            out.append(found[1])
        return out

    async def _start(self, user: User, run_id: str, key: str, prompt: str, request_id: str | None = None) -> Run:
        try:
            return await self.node.runs.start(run_id, key, prompt, f"agentbox:{user.user_id}", owner=user.user_id)
        except RpcError as exc:  # the core refused the run (a prompt past limits.max_message_chars)
            raise AgentBoxError(Code.BAD_REQUEST, exc.message, request_id) from None

    async def create_task(
        self, user: User, prompt: str, agent: str | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        task_id = f"task-{secrets.token_hex(8)}"
        if session_id is not None:
            if await self.node.store.get_session(session_key(user.user_id, session_id)) is None:
                raise AgentBoxError(Code.NOT_FOUND, f"session not found: {session_id}")
        else:
            session_id = task_id
        await self._start(user, task_id, session_key(user.user_id, session_id), prompt)
        result = {"task_id": task_id, "session_id": session_id, "status": "queued"}
        self.emit(user.user_id, "tasks", {**result, "agent": agent, "prompt": prompt})
        return result

    async def get_task(self, user: User, task_id: str) -> dict[str, Any]:
        turns = await self.turns(await self.owned(user, task_id))
        last = turns[-1]
        result = last.text if last.text is not None else await self._stored_answer(last)
        return {
            "task_id": task_id,
            "session_id": last.session_key.split(":", 2)[2],
            "status": TASK_STATUS.get(last.status, last.status),
            "result": result if last.status == "ok" else None,
            "turns": [{"turn_id": t.run_id, "status": TASK_STATUS.get(t.status, t.status)} for t in turns],
            "created_at": turns[0].created_ms,
        }

    async def _stored_answer(self, turn: _Turn) -> str | None:
        for msg in reversed(await self.node.store.history(turn.session_key, 200)):
            if msg.run_id == turn.run_id and msg.role == "assistant":
                return msg.text
        record = await self.node.store.get_run(turn.run_id)
        return record.summary if record is not None else None

    async def cancel(self, user: User, task_id: str, request_id: str | None = None) -> dict[str, Any]:
        turns = await self.turns(await self.owned(user, task_id, request_id))
        aborted: list[str] = []
        for turn in turns:
            aborted += await self.node.runs.abort(turn.session_key, turn.run_id, "cancelled by user")
        return {"task_id": task_id, "action": "cancel", "cancelled": bool(aborted), "turn_ids": aborted}

    async def append_turn(self, user: User, task_id: str, text: str, request_id: str | None = None) -> dict[str, Any]:
        turns = await self.turns(await self.owned(user, task_id, request_id))
        n = len(turns) + 1
        while self.node.runs.get(f"{task_id}.{n}") is not None:  # a concurrent append took this number
            n += 1
        turn_id = f"{task_id}.{n}"
        # No await between that check and RunManager.start registering the run: the id is ours.
        await self._start(user, turn_id, turns[0].session_key, text, request_id)
        return {"task_id": task_id, "action": "append_turn", "turn_id": turn_id}

    async def create_session(self, user: User, title: str | None) -> dict[str, Any]:
        session_id = f"sess-{secrets.token_hex(8)}"
        await self.node.store.ensure_session(session_key(user.user_id, session_id), now_ms())
        result = {"session_id": session_id, "title": title}
        self.emit(user.user_id, "sessions", result)
        return result

    def create_agent(self, user: User, spec: dict[str, Any]) -> dict[str, Any]:
        result = {**spec, "agent_id": f"agent-{secrets.token_hex(8)}"}
        self.emit(user.user_id, "agents", result)
        return result

    async def create_batch(self, user: User, prompts: list[str], agent: str | None) -> dict[str, Any]:
        batch_id = f"batch-{secrets.token_hex(8)}"
        for prompt in prompts:  # all or nothing: refuse the batch before any task starts
            try:
                self.node.runs.check_message(prompt)
            except RpcError as exc:
                raise AgentBoxError(Code.BAD_REQUEST, exc.message) from None
        task_ids = [(await self.create_task(user, prompt, agent))["task_id"] for prompt in prompts]
        result = {"batch_id": batch_id, "task_ids": task_ids}
        self.emit(user.user_id, "batches", result)
        return result

    def alert(self, user: User, data: dict[str, Any]) -> dict[str, Any]:
        if "admin" not in user.scopes:
            raise AgentBoxError(Code.FORBIDDEN, "alerts need an API key with the admin scope")
        result = {**data, "alert_id": f"alert-{secrets.token_hex(8)}", "ts": now_ms()}
        self.emit(None, "alerts", result)
        return result


# -- one socket ----------------------------------------------------------------------


@dataclass(slots=True)
class _ChannelSub:
    all: bool = False
    topics: set[str] = field(default_factory=set)
    excluded: set[str] = field(default_factory=set)

    def matches(self, topic: str) -> bool:
        return topic in self.topics or (self.all and topic not in self.excluded)


class AgentBoxSession:
    """One AgentBox socket: ``auth`` first, then requests in and the user's events out."""

    __slots__ = (
        "_deadline",
        "_holding",
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
        self.subs: dict[str, _ChannelSub] = {}
        self._deadline: asyncio.TimerHandle | None = None
        self._replay: list[Publication] = []
        # Run streams whose history is being read: their live events wait here (see _subscribe).
        self._holding: dict[frozenset[str], list[Publication]] = {}
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
            self._flush_replay()
        except AgentBoxError as exc:
            self._error(exc.request_id or rid, exc)
        except Exception:  # a bug fails this request only, without details to the peer
            log.exception("agentbox request failed")
            self._error(rid, AgentBoxError(Code.INTERNAL, "internal error"))

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

    async def _ping(self, user: User, req: Envelope) -> tuple[str, Any]:
        return "pong", {}

    async def _subscribe(self, user: User, req: Envelope) -> tuple[str, Any]:
        p = parse(SubscribePayload, req.payload, req.id)
        turns = await self._check_topics(user, p, req.id)
        sub = self.subs.setdefault(p.channel, _ChannelSub())
        # Named tasks not yet followed get their retained history after the reply. The socket
        # follows them first and holds their live events while the history is read (a cluster
        # bus reads it from Redis), then the two are merged without repeats (centrifuge's
        # PubSubSync): nothing is missed or repeated.
        fresh = [t for t in p.topics if t in turns and not sub.matches(t)]
        run_ids = [run_id for t in fresh for run_id in turns[t]]
        held: list[Publication] = []
        if run_ids:
            self._holding[run_stream_names(run_ids)] = held
        if not p.topics:
            sub.all, sub.excluded = True, set()
        sub.topics.update(p.topics)
        sub.excluded.difference_update(p.topics)
        try:
            replay = [pub for run_id in run_ids for pub in await self._history(run_id)]
        finally:
            self._holding = {k: v for k, v in self._holding.items() if v is not held}
        seen = {(pub.stream, pub.seq, pub.event) for pub in replay}
        self._replay = replay + [pub for pub in held if (pub.stream, pub.seq, pub.event) not in seen]
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
        """Validate the topics; for tasks, map each to its turns' run ids (all must be the user's)."""
        if p.channel == "system":
            unknown = sorted(set(p.topics) - SYSTEM_TOPICS.keys())
            if unknown:
                raise AgentBoxError(
                    Code.BAD_REQUEST, f"unknown system topic(s) {unknown}; known: {sorted(SYSTEM_TOPICS)}", rid
                )
            return {}
        turns: dict[str, list[str]] = {}
        for topic in p.topics:
            turns[topic] = [t.run_id for t in await self.tasks.turns(await self.tasks.owned(user, topic, rid))]
        return turns

    async def _history(self, run_id: str) -> list[Publication]:
        try:
            return await self.node.bus.history(run_stream(run_id), 0)
        except ReplayGap:  # no longer retained (or never published): live events only
            return []

    def _flush_replay(self) -> None:
        replay, self._replay = self._replay, []
        for pub in replay:
            prepared = _prepare(pub, self.hub.owner_of)
            if prepared is not None and prepared.owner == self.user_id:
                self.push(prepared, pub.droppable)

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

    _handlers: ClassVar[dict[str, Callable[[AgentBoxSession, User, Envelope], Awaitable[tuple[str, Any]]]]] = {
        "ping": _ping,
        "subscribe": _subscribe,
        "unsubscribe": _unsubscribe,
        "task.action": _task_action,
    }

    def hold(self, pub: Publication) -> bool:
        """Keep a live event of a run whose history is being read; True when held."""
        for streams, held in self._holding.items():
            if pub.stream in streams:
                held.append(pub)
                return True
        return False

    def push(self, prepared: _Prepared, droppable: bool) -> None:
        """Send an event of this user's if the socket subscribed to its topic; never awaits."""
        sub = self.subs.get(prepared.channel)
        if sub is None or not sub.matches(prepared.topic) or self.conn.state is not ConnState.OPEN:
            return
        if self.conn.next_seq(droppable, len(prepared.frame)) is not None:
            self.conn.send(prepared.frame)


class AgentBoxHub:
    """The one hub subscriber for every AgentBox socket, indexed by user.

    Each publication is translated and encoded once, then offered only to the
    owner's sockets (every socket for alerts), so fan-out never scans other users.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.users: dict[str, dict[AgentBoxSession, None]] = {}

    def add(self, session: AgentBoxSession, user_id: str) -> None:
        self.users.setdefault(user_id, {})[session] = None

    def remove(self, session: AgentBoxSession) -> None:
        user = session.user
        if user is None:
            return
        sessions = self.users.get(user.user_id)
        if sessions is not None:
            sessions.pop(session, None)
            if not sessions:
                del self.users[user.user_id]

    def owner_of(self, run_id: str, session_key: object = None) -> str | None:
        """The AgentBox user a run belongs to: the local run's owner, else (a run on another
        gateway process) the user its session key names (``agentbox:<user>:<session>``)."""
        run = self.node.runs.get(run_id)
        if run is not None:
            return run.owner
        if isinstance(session_key, str) and session_key.startswith("agentbox:"):
            user, _, _ = session_key[len("agentbox:") :].partition(":")
            return user or None
        return None

    def deliver(self, pub: Publication) -> None:
        if not self.users:
            return
        prepared = _prepare(pub, self.owner_of)
        if prepared is None:
            return
        if prepared.owner is None:
            targets = [s for sessions in self.users.values() for s in sessions]
        else:
            targets = list(self.users.get(prepared.owner, ()))
        for session in targets:
            if session._holding and session.hold(pub):
                continue
            session.push(prepared, pub.droppable)
