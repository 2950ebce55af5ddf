"""``AgentBoxSession`` driven frame by frame against a real in-process node, with no socket.

The transport records what would go on the wire, so every rejection path is a
few lines; the end-to-end file covers the same behaviour over real sockets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agenthub.agents.demo import DemoRuntime
from agenthub.core.auth import Authenticator
from agenthub.core.bus import MemoryBus
from agenthub.core.connection import Connection, ConnState
from agenthub.core.node import Node, NodeLimits
from agenthub.core.pairing import PairingService
from agenthub.core.runs import RunManager
from agenthub.dialects import agentbox as ab
from agenthub.storage.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(30)


class Wire:
    """A Transport that keeps every frame and the close, as the socket glue would send them."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    def write(self, data: bytes) -> None:
        self.frames.append(json.loads(data))

    def buffered(self) -> int:
        return 0

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            f["payload"]
            for f in self.frames
            if f["type"] == "event" and event_type in (None, f["payload"]["event_type"])
        ]


class World:
    def __init__(self, node: Node, hub: ab.AgentBoxHub, tasks: ab.Tasks) -> None:
        self.node, self.hub, self.tasks = node, hub, tasks
        self.keys: dict[str, str] = {}

    async def key(self, user: str) -> str:
        if user not in self.keys:
            key, record = ab.new_api_key(user, ["tasks"], 1)
            await self.node.store.put_api_key(record)
            self.keys[user] = key
        return self.keys[user]

    def socket(self) -> tuple[ab.AgentBoxSession, Wire]:
        wire = Wire()
        conn = Connection(self.node.new_conn_id(), wire, "127.0.0.1", 1 << 20)
        session = ab.AgentBoxSession(self.node, conn, self.tasks, self.hub)
        session.open()
        return session, wire

    async def authed(self, user: str) -> tuple[ab.AgentBoxSession, Wire]:
        session, wire = self.socket()
        await session.receive(json.dumps({"id": "a", "type": "auth", "payload": {"token": await self.key(user)}}))
        assert wire.frames[-1]["type"] == "auth.result", wire.frames
        return session, wire


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = SqliteStore(":memory:")
    await store.open()
    bus = MemoryBus()
    runs = RunManager(bus, store, lambda: DemoRuntime(word_delay_s=0.002))
    auth = Authenticator(store, None, PairingService(store))
    node = Node(bus=bus, store=store, runs=runs, auth=auth, limits=NodeLimits(), provider_name=lambda: "demo")
    hub = ab.AgentBoxHub(node)
    node.hub.add(hub)
    try:
        yield World(node, hub, ab.Tasks(node))
    finally:
        await runs.shutdown()
        await store.close()


async def send(session: ab.AgentBoxSession, wire: Wire, type_: str, payload: Any = None) -> dict[str, Any]:
    await session.receive(json.dumps({"id": f"q{len(wire.frames)}", "type": type_, "payload": payload or {}}))
    reply: dict[str, Any] = wire.frames[-1]
    return reply


async def until(pred: Any, timeout: float = 10) -> None:
    """Let the runs progress until ``pred()`` holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_nothing_but_auth_before_auth_and_three_failures_close(world: World) -> None:
    session, wire = world.socket()
    for type_ in ("ping", "subscribe", "task.action", "bogus"):
        reply = await send(session, wire, type_)
        assert (reply["type"], reply["payload"]["code"]) == ("error", "unauthorized")
    for attempt in range(3):
        assert wire.closed is None
        reply = await send(session, wire, "auth", {"token": f"ab_{attempt:012d}_x"})
        assert reply["payload"] == {"message": "invalid API key", "code": "auth_failed"}
    assert wire.closed == (1008, "too many failed auth attempts")
    session.closed()


async def test_owner_devices_get_task_events_and_others_nothing(world: World) -> None:
    (a1, w1), (a2, w2), (b, wb) = await world.authed("alice"), await world.authed("alice"), await world.authed("bob")
    for session, wire in ((a1, w1), (a2, w2), (b, wb)):
        assert (await send(session, wire, "subscribe", {"channel": "task"}))["payload"]["all"] is True
    alice = ab.User("alice", frozenset(), "k")
    task_id = (await world.tasks.create_task(alice, "what is 6*7"))["task_id"]
    await until(lambda: bool(w1.events("task.completed")) and bool(w2.events("task.completed")))
    for wire in (w1, w2):
        types = [e["event_type"] for e in wire.events()]
        assert types[0] == "task.started" and types[-1] == "task.completed" and "agent.tool_call" in types
        assert "42" in wire.events("task.completed")[0]["data"]["result"]
        assert {e["topic"] for e in wire.events()} == {task_id}
    assert wb.events() == []
    reply = await send(b, wb, "subscribe", {"channel": "task", "topics": [task_id]})
    assert reply["payload"] == {"message": f"task not found: {task_id}", "code": "not_found"}
    for s in (a1, a2, b):
        s.closed()
    assert world.hub.users == {}


async def test_cancel_and_append_turn(world: World) -> None:
    session, wire = await world.authed("alice")
    alice = ab.User("alice", frozenset(), "k")
    task_id = (await world.tasks.create_task(alice, "[long] go on"))["task_id"]
    await send(session, wire, "subscribe", {"channel": "task", "topics": [task_id]})
    await until(lambda: bool(wire.events("agent.message")))
    reply = await send(session, wire, "task.action", {"task_id": task_id, "action": "cancel"})
    assert reply["type"] == "task.action.result" and reply["payload"]["cancelled"] is True
    run = world.node.runs.get(task_id)
    assert run is not None
    await asyncio.wait_for(run.done.wait(), 10)  # the cancelled run has ended, and said so
    types = [e["event_type"] for e in wire.events()]
    assert types[-1] == "task.cancelled" and "task.completed" not in types, types
    reply = await send(session, wire, "task.action", {"task_id": task_id, "action": "append_turn", "data": "2+2?"})
    assert reply["payload"]["turn_id"] == f"{task_id}.2"
    await until(lambda: bool(wire.events("task.completed")))
    done = wire.events("task.completed")[0]
    assert done["topic"] == task_id and done["data"]["turn_id"] == f"{task_id}.2"
    status = await world.tasks.get_task(alice, task_id)
    assert [t["status"] for t in status["turns"]] == ["cancelled", "completed"] and status["status"] == "completed"
    session.closed()
    assert session.conn.state is ConnState.CLOSED


async def test_subscribing_to_a_named_task_replays_it_once(world: World) -> None:
    session, wire = await world.authed("alice")
    alice = ab.User("alice", frozenset(), "k")
    task_id = (await world.tasks.create_task(alice, "hello"))["task_id"]
    run = world.node.runs.get(task_id)
    assert run is not None
    await run.done.wait()
    assert wire.events() == []
    reply_at = len(wire.frames)
    await send(session, wire, "subscribe", {"channel": "task", "topics": [task_id]})
    assert wire.frames[reply_at]["type"] == "subscribe.result"  # replayed events follow the reply
    replayed = [f["payload"]["event_type"] for f in wire.frames[reply_at + 1 :]]
    assert replayed[0] == "task.started" and replayed[-1] == "task.completed" and "agent.message" in replayed
    assert wire.events("task.completed")[0]["data"]["result"] == run.text
    before = len(wire.frames)
    await send(session, wire, "subscribe", {"channel": "task", "topics": [task_id]})  # already followed
    await send(session, wire, "subscribe", {"channel": "task"})  # "all" does not replay
    assert [f["type"] for f in wire.frames[before:]] == ["subscribe.result", "subscribe.result"]
    session.closed()


async def finished(world: World, run_id: str) -> None:
    run = world.node.runs.get(run_id)
    assert run is not None
    await run.done.wait()


async def test_session_channel_replays_then_streams_every_task_of_the_session(world: World) -> None:
    session, wire = await world.authed("alice")
    alice = ab.User("alice", frozenset(), "k")
    sid = (await world.tasks.create_session(alice, "work"))["session_id"]
    first = (await send(session, wire, "create_task", {"prompt": "one", "session_id": sid}))["payload"]
    assert first["session_id"] == sid and first["status"] == "queued"
    await finished(world, first["task_id"])
    reply_at = len(wire.frames)
    await send(session, wire, "subscribe", {"channel": "session", "topics": [sid]})
    reply = wire.frames[reply_at]
    assert reply["type"] == "subscribe.result" and reply["payload"]["topics"] == [sid]
    replayed = wire.frames[reply_at + 1 :]  # the finished task, after the reply
    assert {(f["payload"]["channel"], f["payload"]["topic"]) for f in replayed} == {("session", sid)}
    assert [f["payload"]["event_type"] for f in replayed][-1] == "task.completed"
    second = (await send(session, wire, "create_task", {"prompt": "two", "session_id": sid}))["payload"]
    await until(lambda: any(e["data"]["task_id"] == second["task_id"] for e in wire.events("task.completed")))
    done = [(e["topic"], e["data"]["task_id"]) for e in wire.events("task.completed")]
    assert done == [(sid, first["task_id"]), (sid, second["task_id"])]
    other = (await send(session, wire, "create_task", {"prompt": "elsewhere"}))["payload"]  # its own session
    await finished(world, other["task_id"])
    assert all(e["topic"] == sid for e in wire.events())
    session.closed()


async def test_session_channel_is_per_user(world: World) -> None:
    (a, wa), (b, wb) = await world.authed("alice"), await world.authed("bob")
    sid = (await world.tasks.create_session(ab.User("alice", frozenset(), "k"), None))["session_id"]
    reply = await send(b, wb, "subscribe", {"channel": "session", "topics": [sid]})
    assert reply["payload"] == {"message": f"session not found: {sid}", "code": "not_found"}
    await send(b, wb, "subscribe", {"channel": "session"})  # all of bob's sessions: none of alice's events
    task = (await send(a, wa, "create_task", {"prompt": "mine", "session_id": sid}))["payload"]
    await finished(world, task["task_id"])
    assert wb.events() == []
    reply = await send(b, wb, "create_task", {"prompt": "x", "session_id": sid})
    assert reply["payload"]["code"] == "not_found"
    a.closed()
    b.closed()


async def test_create_task_validates_like_rest(world: World) -> None:
    session, wire = await world.authed("alice")
    for payload, code in (({}, "bad_request"), ({"prompt": ""}, "bad_request"), ({"prompt": 5}, "bad_request")):
        reply = await send(session, wire, "create_task", payload)
        assert (reply["type"], reply["payload"]["code"]) == ("error", code), payload
    world.node.runs.max_message_chars = 10
    reply = await send(session, wire, "create_task", {"prompt": "x" * 11})
    assert reply["payload"]["code"] == "bad_request" and "too long" in reply["payload"]["message"]
    session.closed()


async def test_stats_on_subscribe_on_demand_and_on_a_timer(world: World) -> None:
    world.hub.stats_interval_s = lambda: 0.05
    session, wire = await world.authed("alice")
    other, _ = await world.authed("bob")
    alice = ab.User("alice", frozenset(), "k")
    task_id = (await world.tasks.create_task(alice, "count me"))["task_id"]
    await finished(world, task_id)
    reply = await send(session, wire, "stats")
    assert reply["type"] == "stats.result"
    stats = reply["payload"]
    assert stats["scope"] == "user" and stats["connections"] == {"agentbox": 1}  # bob's socket is not counted
    assert stats["tasks"] == {"queued": 0, "running": 0, "completed": 1, "failed": 0, "cancelled": 0}
    assert stats["queue_depth"] == 0 and stats["uptime_s"] >= 0 and stats["interval_s"] == 0.05
    await send(session, wire, "subscribe", {"channel": "system"})  # "all" does not include stats
    await asyncio.sleep(0.2)
    assert wire.events("stats") == []
    reply_at = len(wire.frames)
    await send(session, wire, "subscribe", {"channel": "system", "topics": ["stats"]})
    assert [f["type"] for f in wire.frames[reply_at:]] == ["subscribe.result", "event"]  # one snapshot at once
    assert wire.frames[-1]["payload"]["topic"] == "stats"
    await until(lambda: len(wire.events("stats")) >= 3)  # then one per period
    await send(session, wire, "unsubscribe", {"channel": "system"})
    await asyncio.sleep(0.1)
    seen = len(wire.events("stats"))
    await asyncio.sleep(0.2)
    assert len(wire.events("stats")) == seen
    session.closed()
    other.closed()


async def test_admin_stats_cover_the_gateway(world: World) -> None:
    key, record = ab.new_api_key("root", ["admin"], 1)
    await world.node.store.put_api_key(record)
    world.keys["root"] = key
    (admin, wire), (alice, _) = await world.authed("root"), await world.authed("alice")
    task_id = (await world.tasks.create_task(ab.User("alice", frozenset(), "k"), "hi"))["task_id"]
    await finished(world, task_id)
    stats = (await send(admin, wire, "stats"))["payload"]
    assert stats["scope"] == "gateway" and stats["connections"] == {"agentbox": 2, "total": 2}
    assert stats["tasks"]["completed"] == 1
    admin.closed()
    alice.closed()
