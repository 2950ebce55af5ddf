"""The seed dialects through a gateway process that does not own the run (issue 12).

Gateways A and B share one Redis and one PostgreSQL. Each test starts a run
on one process and follows, replays or stops it through the other, in the
dialect's own protocol: AgentBox ``subscribe`` (history, then live), MyAgent
``user.reconnect`` (replay after the last event id, then live), LangBot
chunks (a run on B's pipeline socket, reset over REST on A).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest
import websockets

from ..conftest import GatewayProc
from ._util import Client, free_port

pytestmark = pytest.mark.timeout(120)

TOKEN = "cluster-dialects-token"
SECRET = "cluster-dialects-state-key-0123456789"


@pytest.fixture
def pair(make_gateway: Any, redis_url: str, pg_url: str) -> tuple[GatewayProc, GatewayProc, str]:
    procs = []
    for _ in range(2):
        port = free_port()
        gw = make_gateway(
            "--workers",
            "1",
            "--redis-url",
            redis_url,
            "--database-url",
            pg_url,
            "--token",
            TOKEN,
            "--myagent-port",
            str(port),
            "--myagent-secret",
            SECRET,
            config={"demo": {"word_delay_ms": 15}, "redis": {"node_ttl_ms": 1500}},
        )
        gw.myagent_port = port  # type: ignore[attr-defined]
        procs.append(gw)
    return procs[0], procs[1], pg_url


def _keys(pg_url: str, user: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "agenthub", "keys", "--database-url", pg_url, "create", "--user", user],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


async def _recv(ws: Any, timeout: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        data: dict[str, Any] = json.loads(await ws.recv())
        return data


async def test_agentbox_subscribe_on_b_follows_a_task_running_on_a(
    pair: tuple[GatewayProc, GatewayProc, str],
) -> None:
    a, b, pg_url = pair
    key = await asyncio.to_thread(_keys, pg_url, "alice")
    res = await asyncio.to_thread(
        httpx.post,
        f"{a.http}/api/v1/tasks",
        headers={"Authorization": f"Bearer {key}"},
        json={"prompt": "count for me [long:150]"},
        timeout=10,
    )
    assert res.status_code == 201, res.text
    task_id = res.json()["task_id"]
    async with websockets.connect(f"{b.url}/api/v1/gateway/ws") as ws:
        await ws.send(json.dumps({"id": "1", "type": "auth", "payload": {"token": key}, "timestamp": 1}))
        assert (await _recv(ws))["type"] == "auth.result"
        sub = {"channel": "task", "topics": [task_id]}
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": sub, "timestamp": 1}))
        types: list[str] = []
        while not types or types[-1] not in ("task.completed", "task.failed", "task.cancelled"):
            msg = await _recv(ws)
            if msg.get("type") == "event" and msg["payload"]["topic"] == task_id:
                types.append(msg["payload"]["event_type"])
    # History from Redis, then live from A through Redis: started once, completed once, nothing twice.
    assert types[0] == "task.started" and types.count("task.started") == 1, types
    assert types[-1] == "task.completed" and types.count("task.completed") == 1


async def test_myagent_reconnect_on_b_replays_a_session_begun_on_a(pair: tuple[GatewayProc, GatewayProc, str]) -> None:
    a, b, _ = pair

    def url(gw: GatewayProc) -> str:
        return f"ws://127.0.0.1:{gw.myagent_port}/?token={TOKEN}"  # type: ignore[attr-defined]

    async with websockets.connect(url(a)) as ws:
        assert (await _recv(ws))["event"] == "system.connected"
        await ws.send(json.dumps({"event": "user.create_session", "content": "create_session"}))
        sid = (await _recv(ws))["session_id"]
        await ws.send(json.dumps({"event": "user.message", "session_id": sid, "content": "tell me a lot [long:200]"}))
        first = await _recv(ws)
        assert first["seq"] == 2
    async with Client.open_connected(a.url, auth={"token": TOKEN}) as op:  # wait for the run's end on A
        await op.until(
            lambda f: (
                f.get("event") == "chat"
                and f["payload"].get("sessionKey") == f"myagent:{sid}"
                and f["payload"]["state"] == "final"
            ),
            timeout=60,
        )
    async with websockets.connect(url(b)) as ws:
        assert (await _recv(ws))["event"] == "system.connected"
        await ws.send(
            json.dumps({"event": "user.reconnect", "session_id": sid, "content": {"last_event_id": first["event_id"]}})
        )
        replay = []
        while not replay or replay[-1]["event"] != "agent.session_resumed":
            replay.append(await _recv(ws))
        seqs = [m["seq"] for m in replay]
        assert seqs == list(range(3, 3 + len(seqs))), "every event after the last one seen, once, in order"
        assert any(m["event"] == "agent.final_answer" for m in replay)
        assert replay[-1]["metadata"]["replayed"] == len(replay) - 1
        # Live on B now: a new turn runs on B and numbering continues on the shared stream.
        await ws.send(json.dumps({"event": "user.message", "session_id": sid, "content": "and now?"}))
        live = []
        while not live or live[-1]["event"] != "agent.final_answer":
            live.append(await _recv(ws))
        assert live[0]["seq"] == replay[-1]["seq"] + 1


async def test_langbot_chunks_on_b_and_a_reset_on_a_stops_them(pair: tuple[GatewayProc, GatewayProc, str]) -> None:
    a, b, _ = pair
    connect = f"{b.url}/api/v1/pipelines/default/ws/connect?session_type=person&token={TOKEN}"
    async with Client.open_connected(a.url, auth={"token": TOKEN}) as op:
        async with websockets.connect(connect) as ws:
            assert (await _recv(ws))["type"] == "connected"
            msg = {"type": "message", "message": [{"type": "Plain", "text": "go on and on [long:2000]"}]}
            await ws.send(json.dumps(msg))
            chunk = await _recv(ws)
            while chunk.get("type") != "response":
                chunk = await _recv(ws)
            assert chunk["data"]["is_final"] is False
            # An operator on A sees B's run stream...
            started = await op.until(
                lambda f: (
                    f.get("event") == "agent"
                    and f["payload"].get("sessionKey") == "langbot:default:person"
                    and f["payload"]["stream"] == "assistant"
                )
            )
            assert started["payload"]["data"]["text"]
            # ...and a reset sent to A reaches the run's owner, B: its chunks end with a final one.
            res = await asyncio.to_thread(
                httpx.post,
                f"{a.http}/api/v1/pipelines/default/ws/reset/person",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )
            assert res.status_code == 200, res.text
            while not (chunk.get("type") == "response" and chunk["data"]["is_final"]):
                chunk = await _recv(ws)
            assert len(chunk["data"]["content"].split()) < 2000, "stopped before the end"
        end = await op.until(
            lambda f: (
                f.get("event") == "chat"
                and f["payload"].get("sessionKey") == "langbot:default:person"
                and f["payload"]["state"] in ("aborted", "final", "error")
            ),
            timeout=30,
        )
        assert end["payload"]["state"] == "aborted"
