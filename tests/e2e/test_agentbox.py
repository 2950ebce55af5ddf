"""AgentBox dialect (seed 002) end to end: one real gateway, real sockets, the seed's JS client.

The gateway runs with ``--agentbox-port``; keys come from ``agenthub keys
create``. The seed's ``AgentBoxGateway`` class runs unmodified under Node
(tests/js/agentbox_run.js) for the happy paths; raw sockets cover bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from agenthub.agents.demo import LONG_ANSWER_WORDS

from ..conftest import GatewayProc, RawClient, require_node_ws, seed_text
from ._util import expected_answer

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]
JS = ROOT / "tests" / "js"
SEED = "002_744938c07d5e283d.txt"
WS_PATH = "/api/v1/gateway/ws"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def keys_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agenthub", "keys", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def make_key(data_dir: Path, user: str, *scopes: str) -> str:
    args = ["create", "--user", user]
    for scope in scopes:
        args += ["--scope", scope]
    out = keys_cli(data_dir, *args)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip()
    assert key.startswith("ab_")
    return key


class Env:
    """The module's gateway and its users' keys."""

    def __init__(self, gw: GatewayProc, agentbox_port: int) -> None:
        self.gw = gw
        self.agentbox_port = agentbox_port
        self.alice = make_key(gw.data_dir, "alice")
        self.bob = make_key(gw.data_dir, "bob")
        self.admin = make_key(gw.data_dir, "root", "admin")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.agentbox_port}{WS_PATH}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.agentbox_port}"

    def rest(self, method: str, path: str, key: str | None, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        content = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        if content is not None:
            headers["Content-Type"] = "application/json"  # anything else is refused 415 (CSRF, issue 16)
        return httpx.request(method, self.http + path, headers=headers, content=content, timeout=10)

    def create_task(self, key: str, prompt: str, **extra: Any) -> str:
        res = self.rest("POST", "/api/v1/tasks", key, {"prompt": prompt, **extra})
        assert res.status_code == 201, res.text
        task_id: str = res.json()["task_id"]
        return task_id

    def js(self, scenario: str, **extra: Any) -> dict[str, Any]:
        node = require_node_ws()
        cfg = {"url": self.url, "http": self.http, "tokenA": self.alice, "tokenB": self.bob, **extra}
        out = subprocess.run(
            [node, str(JS / "agentbox_run.js"), scenario, json.dumps(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 0, out.stderr + self.gw.output()[-3000:]
        result: dict[str, Any] = json.loads(out.stdout)
        return result


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir = tmp_path_factory.mktemp("agentbox")
    port = free_port()
    config = {"demo": {"word_delay_ms": 5}, "agentbox": {"stats_interval_s": 0.3}}
    gw = GatewayProc(data_dir, ["--agentbox-port", str(port)], {}, config)
    gw.start(0)
    try:
        yield Env(gw, port)
    finally:
        gw.stop()


class AB:
    """A raw AgentBox socket: frames by hand, replies matched by id."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.n = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, key: str | None = None, device: str | None = None) -> AsyncIterator[AB]:
        async with websockets.connect(url) as ws:
            client = cls(ws)
            if key is not None:
                payload = {"token": key, **({"device_id": device} if device else {})}
                res = await client.call("auth", payload)
                assert res["type"] == "auth.result", res
            yield client

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            msg: dict[str, Any] = json.loads(await self.ws.recv())
        return msg

    async def call(self, type_: str, payload: Any = None, timeout: float = 10) -> dict[str, Any]:
        self.n += 1
        rid = f"r{self.n}"
        await self.ws.send(json.dumps({"id": rid, "type": type_, "payload": payload or {}, "timestamp": 1}))
        return await self.reply(rid, timeout)

    async def reply(self, rid: str | None, timeout: float = 10) -> dict[str, Any]:
        while True:
            msg = await self.recv(timeout)
            if msg.get("type") == "event":
                self.events.append(msg)
            elif msg.get("id") == rid:
                return msg

    async def raw(self, text: str) -> dict[str, Any]:
        await self.ws.send(text)
        return await self.reply(None)

    async def event(self, pred: Any, timeout: float = 10) -> dict[str, Any]:
        for ev in self.events:
            if pred(ev["payload"]):
                return ev
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.recv(timeout)
                if msg.get("type") == "event":
                    self.events.append(msg)
                    if pred(msg["payload"]):
                        return msg


def _types(events: list[dict[str, Any]], task_id: str) -> list[str]:
    return [e["event_type"] for e in events if e["topic"] == task_id]


# -- the seed's JavaScript client ---------------------------------------------------------


def test_js_client_is_the_seed_verbatim() -> None:
    seed = seed_text(SEED)
    start = seed.index("class AgentBoxGateway {")
    end = seed.index("\n\n// 使用示例", start)
    assert (JS / "agentbox_gateway.js").read_text(encoding="utf-8") == seed[start:end] + "\n"


async def test_js_task_events_reach_every_device_of_the_owner_only(env: Env) -> None:
    prompt = "hello there"
    out = env.js("complete", tokenA=env.alice, prompt=prompt)
    task_id = out["taskId"]
    assert out["auth"]["success"] is True and out["auth"]["user_id"] == "alice" and out["auth"]["device_id"]
    assert out["subscribed"]["channel"] == "task" and out["subscribed"]["all"] is True
    answer = await expected_answer(prompt)
    for device in ("a1", "a2"):
        events = out[device]
        types = _types(events, task_id)
        assert types[0] == "task.started" and types[-1] == "task.completed", types
        assert "agent.message" in types
        messages = [e["data"] for e in events if e["event_type"] == "agent.message" and e["topic"] == task_id]
        assert "".join(m["content"] for m in messages) == answer
        completed = next(e for e in events if e["event_type"] == "task.completed")
        assert completed["channel"] == "task" and completed["data"]["result"] == answer
    # a1 subscribed to system "tasks"; a2 did not.
    created = [e for e in out["a1"] if e["event_type"] == "task.created"]
    assert [(e["channel"], e["topic"], e["data"]["task_id"]) for e in created] == [("system", "tasks", task_id)]
    assert not [e for e in out["a2"] if e["channel"] == "system"]
    # bob subscribed to every task and every system topic, and saw nothing of alice's.
    assert out["b"] == []


def test_js_cancel_stops_the_task_midstream(env: Env) -> None:
    out = env.js("cancel")
    task_id = out["taskId"]
    assert out["reply"] == {"task_id": task_id, "action": "cancel", "cancelled": True, "turn_ids": [task_id]}
    # Stopped, not finished: task.cancelled ends the stream before the 200-word answer was out, and no
    # message follows it. (The scenario also reports cancelMs, the cancel -> task.cancelled time; on a
    # shared machine that is a measurement, not something to assert.)
    types = _types(out["events"], task_id)
    assert types[-1] == "task.cancelled" and "task.completed" not in types, types
    assert 0 < types.count("agent.message") < LONG_ANSWER_WORDS
    assert out["messagesAfterCancel"] == 0
    status = env.rest("GET", f"/api/v1/tasks/{task_id}", env.alice).json()
    assert status["status"] == "cancelled" and status["result"] is None


async def test_js_append_turn_continues_the_same_task(env: Env) -> None:
    out = env.js("append")
    task_id = out["taskId"]
    assert out["reply"] == {"task_id": task_id, "action": "append_turn", "turn_id": f"{task_id}.2"}
    completed = [e for e in out["events"] if e["event_type"] == "task.completed"]
    assert [(e["topic"], e["data"]["turn_id"]) for e in completed] == [(task_id, task_id), (task_id, f"{task_id}.2")]
    assert "4" in completed[1]["data"]["result"]
    assert "agent.tool_call" in _types(out["events"], task_id)  # the demo agent used its calculator
    status = env.rest("GET", f"/api/v1/tasks/{task_id}", env.alice).json()
    assert status["status"] == "completed" and status["result"] == completed[1]["data"]["result"]
    assert [t["turn_id"] for t in status["turns"]] == [task_id, f"{task_id}.2"]


async def test_js_late_subscriber_to_a_finished_task_gets_its_events(env: Env) -> None:
    prompt = "late but complete"
    out = env.js("late", prompt=prompt)
    task_id = out["taskId"]
    assert out["subscribed"]["topics"] == [task_id]
    types = _types(out["events"], task_id)
    assert types[0] == "task.started" and types[-1] == "task.completed" and types.count("task.completed") == 1
    assert out["events"][-1]["data"]["result"] == await expected_answer(prompt)


def test_js_errors_reject_with_the_server_message(env: Env) -> None:
    out = env.js("errors")
    assert out["messages"][0] == "task not found: task-nope"
    assert out["messages"][1].startswith("invalid payload: channel")
    assert "unknown system topic" in out["messages"][2]
    assert out["stillUsable"]["topics"] == ["alerts"]
    assert out["badAuth"] == "invalid API key"


async def test_js_socket_only_tasks_session_stream_and_stats(env: Env) -> None:
    """The seed's class, unmodified, with no HTTP: create_task, the session channel and stats (extensions)."""
    prompt = "hello socket"
    out = env.js("socketOnly", prompt=prompt)
    first, second = out["first"], out["second"]
    sid = first["session_id"]
    assert first["status"] == "queued" and sid == first["task_id"] and second["session_id"] == sid
    assert out["subscribed"] == {"channel": "session", "subscribed": True, "all": False, "topics": [sid]}
    completed = [e for e in out["events"] if e["event_type"] == "task.completed"]
    assert [(e["channel"], e["topic"], e["data"]["task_id"]) for e in completed] == [
        ("session", sid, first["task_id"]),
        ("session", sid, second["task_id"]),
    ]
    assert completed[0]["data"]["result"] == await expected_answer(prompt)
    assert "42" in completed[1]["data"]["result"]
    assert {e["channel"] for e in out["events"]} == {"session"}
    created = env.rest("GET", f"/api/v1/tasks/{second['task_id']}", env.alice).json()
    assert created["session_id"] == sid and created["status"] == "completed"
    for stats in (out["stats"][0], out["onDemand"]):
        assert stats["scope"] == "user" and stats["connections"] == {"agentbox": 1}
        assert set(stats["tasks"]) == {"queued", "running", "completed", "failed", "cancelled"}
        assert stats["tasks"]["completed"] >= 2 and stats["interval_s"] == 0.3


async def test_stats_arrive_on_a_fixed_interval_and_only_for_their_user(env: Env) -> None:
    async with AB.open(env.url, env.bob) as b, AB.open(env.url, env.admin) as root:
        await b.call("subscribe", {"channel": "system", "topics": ["stats"]})
        await root.call("subscribe", {"channel": "system", "topics": ["stats"]})
        async with asyncio.timeout(10):
            while len(seen := [e["payload"] for e in b.events if e["payload"]["topic"] == "stats"]) < 3:
                msg = await b.recv()
                if msg.get("type") == "event":
                    b.events.append(msg)
        assert [(p["channel"], p["event_type"]) for p in seen] == [("system", "stats")] * 3
        stamps = [p["data"]["ts"] for p in seen]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3
        assert all(p["data"]["scope"] == "user" and p["data"]["connections"] == {"agentbox": 1} for p in seen)
        gateway = (await root.event(lambda p: p["topic"] == "stats"))["payload"]["data"]
        assert gateway["scope"] == "gateway" and gateway["connections"]["agentbox"] >= 2
        assert gateway["connections"]["total"] >= 2
        res = await b.call("stats")
        assert res["type"] == "stats.result" and res["payload"]["scope"] == "user"


async def test_create_task_over_the_socket_refuses_what_rest_refuses(env: Env) -> None:
    bob_session = env.rest("POST", "/api/v1/sessions", env.bob, {"title": "b"}).json()["session_id"]
    async with AB.open(env.url, env.alice) as c:
        for payload, code in (
            ({}, "bad_request"),
            ({"prompt": ""}, "bad_request"),
            ({"prompt": "x", "session_id": bob_session}, "not_found"),
        ):
            res = await c.call("create_task", payload)
            assert res["type"] == "error" and res["payload"]["code"] == code and res["id"] == f"r{c.n}", res
            rest = env.rest("POST", "/api/v1/tasks", env.alice, payload)
            assert rest.json()["code"] == code
        res = await c.call("subscribe", {"channel": "session", "topics": [bob_session]})
        assert res["payload"] == {"message": f"session not found: {bob_session}", "code": "not_found"}
        assert (await c.call("ping"))["type"] == "pong"


def test_agentbox_flag_alone_serves_the_seed_port(tmp_path: Path) -> None:
    """``--agentbox`` listens on 18080. Run in a private network namespace, so the seed's fixed port is
    free whatever else runs on this machine (needs root, as CI and the dev machines are)."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed"
    script = Path(__file__).with_name("_agentbox_seed_port.py")
    cmd = [unshare, "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, str(script), str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["auth"]["success"] is True and result["pong"] == "pong"
    assert result["task_status"] == 201 and result["listening"]
    assert "Traceback" not in result["log"]


# -- other clients of the same runs ------------------------------------------------------


async def test_native_operator_sees_agentbox_task_runs(env: Env) -> None:
    async with RawClient.open(env.gw.url) as op:
        assert (await op.connect())["ok"]
        task_id = env.create_task(env.alice, "hi operator")
        final = await op.until(
            lambda f: f.get("event") == "chat" and f["payload"]["runId"] == task_id and f["payload"]["state"] == "final"
        )
        assert final["payload"]["sessionKey"] == f"agentbox:alice:{task_id}"
        assert any(e["event"] == "agent" and e["payload"]["runId"] == task_id for e in op.events)


async def test_main_listener_serves_the_same_endpoint(env: Env) -> None:
    async with AB.open(f"{env.gw.url}{WS_PATH}", env.alice) as c:
        assert (await c.call("ping"))["type"] == "pong"


# -- bad input over a real socket ---------------------------------------------------------


async def test_frames_before_auth_are_refused(env: Env) -> None:
    async with AB.open(env.url) as c:
        for type_ in ("subscribe", "ping", "task.action"):
            res = await c.call(type_, {"channel": "task"})
            assert res["type"] == "error" and res["payload"]["code"] == "unauthorized", res
        ok = await c.call("auth", {"token": env.alice, "device_id": "phone"})
        assert ok["payload"] == {"success": True, "user_id": "alice", "device_id": "phone"}
        assert ok["id"] == f"r{c.n}"


async def test_bad_input_gets_errors_and_the_socket_stays_usable(env: Env) -> None:
    bobs_task = env.create_task(env.bob, "bob's secret")
    async with AB.open(env.url, env.alice) as c:
        cases: list[tuple[str, Any, str]] = [
            ("nope", {}, "unknown_type"),
            ("subscribe", {}, "bad_request"),
            ("subscribe", {"channel": "weather"}, "bad_request"),
            ("subscribe", {"channel": "task", "topics": "x"}, "bad_request"),
            ("subscribe", {"channel": "task", "topics": [bobs_task]}, "not_found"),
            ("task.action", {"task_id": bobs_task, "action": "cancel"}, "not_found"),
            ("task.action", {"task_id": bobs_task}, "bad_request"),
            ("task.action", {"task_id": bobs_task, "action": "explode"}, "bad_request"),
            ("auth", {"token": env.alice}, "bad_request"),  # already authenticated
        ]
        for type_, payload, code in cases:
            res = await c.call(type_, payload)
            assert res["type"] == "error" and res["payload"]["code"] == code, (type_, payload, res)
            assert res["id"] == f"r{c.n}" and res["payload"]["message"]
        for text in ("not json", "[1, 2]", '{"payload": {}}', '{"type": 5}'):
            res = await c.raw(text)
            assert res["type"] == "error" and res["payload"]["code"] == "bad_request", (text, res)
        own = env.create_task(env.alice, "hello")
        res = await c.call("task.action", {"task_id": own, "action": "append_turn"})
        assert res["payload"]["code"] == "bad_request" and "append_turn needs data" in res["payload"]["message"]
        pong = await c.call("ping")
        assert pong["type"] == "pong" and pong["id"] == f"r{c.n}"
    assert env.rest("GET", f"/api/v1/tasks/{bobs_task}", env.alice).status_code == 404
    assert env.rest("GET", f"/api/v1/tasks/{bobs_task}", env.bob).status_code == 200


async def test_unsubscribe_stops_delivery(env: Env) -> None:
    async with AB.open(env.url, env.alice) as c:
        await c.call("subscribe", {"channel": "task"})
        first = env.create_task(env.alice, "one")
        await c.event(lambda p: p["topic"] == first and p["event_type"] == "task.completed")
        res = await c.call("unsubscribe", {"channel": "task", "topics": []})
        assert res["type"] == "unsubscribe.result" and res["payload"]["subscribed"] is False
        c.events.clear()
        second = env.create_task(env.alice, "two")
        await c.call("subscribe", {"channel": "task", "topics": [second]})
        await c.event(lambda p: p["topic"] == second and p["event_type"] == "task.completed")
        assert {e["payload"]["topic"] for e in c.events} == {second}


def test_rest_errors(env: Env) -> None:
    assert env.rest("POST", "/api/v1/tasks", None, {"prompt": "x"}).status_code == 401
    assert env.rest("POST", "/api/v1/tasks", "ab_000000000000_nope", {"prompt": "x"}).status_code == 401
    bad_json = env.rest("POST", "/api/v1/tasks", env.alice, b"{nope")
    assert bad_json.status_code == 400 and bad_json.json() == {"message": "invalid JSON", "code": "bad_request"}
    missing = env.rest("POST", "/api/v1/tasks", env.alice, {"agent": "a"})
    assert missing.status_code == 400 and "prompt" in missing.json()["message"]
    # a session id is per user: bob's session does not exist for alice
    bob_session = env.rest("POST", "/api/v1/sessions", env.bob, {"title": "b"}).json()["session_id"]
    wrong = env.rest("POST", "/api/v1/tasks", env.alice, {"prompt": "x", "session_id": bob_session})
    assert wrong.status_code == 404 and wrong.json()["code"] == "not_found"
    assert env.rest("GET", "/api/v1/tasks/task-unknown", env.alice).status_code == 404
    assert env.rest("POST", "/api/v1/alerts", env.alice, {"message": "hi"}).status_code == 403


async def test_system_events_for_sessions_agents_batches_and_alerts(env: Env) -> None:
    async with AB.open(env.url, env.alice) as a, AB.open(env.url, env.bob) as b:
        await a.call("subscribe", {"channel": "system"})
        await b.call("subscribe", {"channel": "system", "topics": ["alerts"]})
        session = env.rest("POST", "/api/v1/sessions", env.alice, {"title": "work"}).json()
        ev = await a.event(lambda p: p["event_type"] == "session.created")
        assert ev["payload"]["topic"] == "sessions" and ev["payload"]["data"]["session_id"] == session["session_id"]
        agent = env.rest("POST", "/api/v1/agents", env.alice, {"name": "helper", "model": "demo"}).json()
        ev = await a.event(lambda p: p["event_type"] == "agent.created")
        assert ev["payload"]["data"] == agent and agent["name"] == "helper"
        # two tasks in one session share its conversation
        t1 = env.create_task(env.alice, "my name is Ada", session_id=session["session_id"])
        batch = env.rest("POST", "/api/v1/batches", env.alice, {"prompts": ["one", "two"]}).json()
        ev = await a.event(lambda p: p["event_type"] == "batch.created")
        assert ev["payload"]["data"]["task_ids"] == batch["task_ids"] and len(batch["task_ids"]) == 2
        created = await a.event(lambda p: p["event_type"] == "task.created" and p["data"]["task_id"] == t1)
        assert created["payload"]["data"]["session_id"] == session["session_id"]
        alert = env.rest("POST", "/api/v1/alerts", env.admin, {"message": "disk full", "level": "warn"})
        assert alert.status_code == 201
        for client in (a, b):
            ev = await client.event(lambda p: p["event_type"] == "alert")
            assert ev["payload"]["topic"] == "alerts" and ev["payload"]["data"]["message"] == "disk full"
        # bob only subscribed to alerts, and never sees alice's system events anyway
        assert [e["payload"]["event_type"] for e in b.events] == ["alert"]
        deadline = time.monotonic() + 10
        while env.rest("GET", f"/api/v1/tasks/{batch['task_ids'][1]}", env.alice).json()["status"] != "completed":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


# -- keys ------------------------------------------------------------------------------------


async def test_three_failed_auths_close_the_socket(env: Env) -> None:
    async with websockets.connect(env.url) as ws:
        c = AB(ws)
        for i in range(3):
            res = await c.call("auth", {"token": f"ab_{i:012d}_wrong"})
            assert res["type"] == "error" and res["payload"]["code"] == "auth_failed"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await c.recv(5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_keys_list_and_revoke(env: Env) -> None:
    key = make_key(env.gw.data_dir, "carol")
    key_id = key[3:15]
    listed = keys_cli(env.gw.data_dir, "list")
    line = next(line for line in listed.stdout.splitlines() if line.startswith(key_id))
    assert "carol" in line and line.rstrip().endswith("-")
    assert key not in listed.stdout  # only ids, never the keys
    async with AB.open(env.url, key) as c:
        assert (await c.call("ping"))["type"] == "pong"
    revoked = keys_cli(env.gw.data_dir, "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert keys_cli(env.gw.data_dir, "revoke", key_id).returncode == 1
    async with websockets.connect(env.url) as ws:
        res = await AB(ws).call("auth", {"token": key})
        assert res["payload"] == {"message": "API key revoked", "code": "auth_failed"}
    assert env.rest("POST", "/api/v1/tasks", key, {"prompt": "x"}).status_code == 401


def test_stored_keys_are_hashed(env: Env) -> None:
    import sqlite3

    with contextlib.closing(sqlite3.connect(env.gw.data_dir / "agenthub.db")) as db:
        rows = dict(db.execute("SELECT key_id, key_hash FROM api_keys").fetchall())
        dump = "\n".join(db.iterdump())
    assert rows[env.alice[3:15]] == hashlib.sha256(env.alice.encode()).hexdigest()
    assert env.alice not in dump and env.alice[16:] not in dump  # the secret part is nowhere in the file


# -- restart (last: it restarts the module's gateway) ----------------------------------------


async def test_ownership_and_results_survive_restart(env: Env) -> None:
    task_id = env.create_task(env.alice, "remember me")
    deadline = time.monotonic() + 10
    while env.rest("GET", f"/api/v1/tasks/{task_id}", env.alice).json()["status"] != "completed":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    env.gw.restart()
    status = env.rest("GET", f"/api/v1/tasks/{task_id}", env.alice)
    assert status.status_code == 200
    assert status.json()["result"] == await expected_answer("remember me")
    assert env.rest("GET", f"/api/v1/tasks/{task_id}", env.bob).status_code == 404
    async with AB.open(env.url, env.bob) as c:
        res = await c.call("task.action", {"task_id": task_id, "action": "append_turn", "data": "x"})
        assert res["payload"]["code"] == "not_found"
