"""Limits on what one client can make the gateway do: message length, CPU per message, requests in flight.

Every test runs a real gateway subprocess and talks to it over real sockets;
the dialect tests use each dialect's own wire format.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from ..conftest import GatewayProc
from ._util import Client, collect_run, start_agent

pytestmark = pytest.mark.timeout(90)

MAX_CHARS = 2_000
MAX_INFLIGHT = 8
STATE_SECRET = "run-limits-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Gateways:
    """A gateway with small limits, its MyAgent and AgentBox ports, and an AgentBox key."""

    def __init__(self, gw: GatewayProc, myagent_port: int, agentbox_port: int) -> None:
        self.gw = gw
        self.myagent_url = f"ws://127.0.0.1:{myagent_port}"
        self.agentbox_http = f"http://127.0.0.1:{agentbox_port}"
        self.agentbox_ws = f"ws://127.0.0.1:{agentbox_port}/api/v1/gateway/ws"
        out = subprocess.run(
            [sys.executable, "-m", "agenthub", "keys", "--data-dir", str(gw.data_dir), "create", "--user", "ann"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        self.agentbox_key = out.stdout.strip()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    myagent_port, agentbox_port = free_port(), free_port()
    gw = GatewayProc(
        tmp_path_factory.mktemp("run-limits"),
        ["--myagent-port", str(myagent_port), "--myagent-secret", STATE_SECRET, "--agentbox-port", str(agentbox_port)],
        {},
        {
            "demo": {"word_delay_ms": 20},
            "limits": {"max_message_chars": MAX_CHARS, "max_inflight_per_connection": MAX_INFLIGHT},
        },
    )
    gw.start()
    try:
        yield Gateways(gw, myagent_port, agentbox_port)
    finally:
        gw.stop()


# -- 1. one message must not freeze the gateway -------------------------------------------


async def _health_round_trips(c: Client, stop: asyncio.Event) -> list[float]:
    """Call ``health`` back to back until ``stop`` is set; the round trip of each call."""
    times = []
    while not stop.is_set():
        t0 = time.monotonic()
        assert (await c.ok("health", timeout=60))["ok"] is True
        times.append(time.monotonic() - t0)
    return times


@pytest.mark.parametrize(
    "hostile",
    [
        "a" + " " * 40_000 + "a",  # the reported one: 12 s of stalled health checks
        "1" * 60_000,  # a digit run: the same quadratic scan
        "1 " + "(" * 60_000 + "x",
    ],
    ids=["spaces", "digits", "brackets"],
)
async def test_a_hostile_message_does_not_delay_another_clients_health(gateway: GatewayProc, hostile: str) -> None:
    async with Client.open_connected(gateway.url) as attacker, Client.open_connected(gateway.url) as honest:
        stop = asyncio.Event()
        pinging = asyncio.create_task(_health_round_trips(honest, stop))
        await asyncio.sleep(0.2)  # a few round trips before, for comparison
        sent = await attacker.ok("chat.send", {"sessionKey": "hostile", "message": hostile, "idempotencyKey": "h-1"})
        assert sent == {"runId": "h-1", "status": "started"}
        run = await collect_run(attacker, "h-1", timeout=60)
        stop.set()
        times = await pinging
    assert run.terminal["state"] == "final"  # the message was read, not refused
    assert len(times) >= 5
    # generous: the stall this guards against was 12 s; a loaded 2-core machine still answers in far less
    assert max(times) < 1.0, f"health round trips while the hostile message was read: max {max(times):.3f}s"


# -- 2. the message cap, one setting for every dialect ------------------------------------


async def test_native_messages_past_the_cap_are_refused_and_the_key_stays_usable(small: Gateways) -> None:
    long = "x" * (MAX_CHARS + 1)
    async with Client.open_connected(small.gw.url) as c:
        for method, params in (
            ("agent", {"message": long, "idempotencyKey": "cap-a"}),
            ("chat.send", {"sessionKey": "cap", "message": long, "idempotencyKey": "cap-c"}),
            ("send", {"sessionKey": "cap", "message": long, "idempotencyKey": "cap-s"}),
        ):
            res = await c.call(method, params)
            assert res["ok"] is False, method
            assert res["error"]["code"] == "INVALID_REQUEST", method
            assert res["error"]["details"] == {"reason": "MESSAGE_TOO_LONG", "maxChars": MAX_CHARS}, method
            assert f"the limit is {MAX_CHARS}" in res["error"]["message"]
        # nothing was recorded: the same keys start runs with a message within the cap
        rid, accepted = await start_agent(c, "x" * MAX_CHARS, "cap-a")
        assert accepted["status"] == "accepted"
        assert (await collect_run(c, "cap-a", rid)).final["status"] == "ok"  # type: ignore[index]
        assert await c.ok("chat.send", {"sessionKey": "cap", "message": "short", "idempotencyKey": "cap-c"}) == {
            "runId": "cap-c",
            "status": "started",
        }
        await collect_run(c, "cap-c")
        assert (await c.ok("status"))["runs"]["stored"].get("error", 0) == 0


async def test_langbot_message_past_the_cap_gets_a_langbot_error(small: Gateways) -> None:
    url = f"{small.gw.url}/api/v1/pipelines/default/ws/connect?session_type=person"
    async with websockets.connect(url) as ws:
        assert json.loads(await ws.recv())["type"] == "connected"
        await ws.send(json.dumps({"type": "message", "message": [{"type": "Plain", "text": "y" * (MAX_CHARS + 1)}]}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["type"] == "error", error
        assert "too long" in error["data"]["message"] and str(MAX_CHARS) in error["data"]["message"]
        # the socket stays usable
        await ws.send(json.dumps({"type": "message", "message": [{"type": "Plain", "text": "hi"}]}))
        while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "response" or not frame["data"][
            "is_final"
        ]:
            pass


async def test_myagent_message_past_the_cap_gets_a_system_error(small: Gateways) -> None:
    async with websockets.connect(small.myagent_url) as ws:
        assert json.loads(await ws.recv())["event"] == "system.connected"
        await ws.send(json.dumps({"event": "user.create_session", "content": "create_session"}))
        sid = json.loads(await ws.recv())["session_id"]
        await ws.send(json.dumps({"event": "user.message", "session_id": sid, "content": "z" * (MAX_CHARS + 1)}))
        err = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert err["event"] == "system.error" and "too long" in err["content"], err
        assert err["session_id"] == sid
        await ws.send(json.dumps({"event": "user.message", "session_id": sid, "content": "ok?"}))
        while (msg := json.loads(await asyncio.wait_for(ws.recv(), 10)))["event"] != "agent.final_answer":
            pass
        assert msg["content"].startswith('You said: "ok?"')
    assert "Traceback" not in small.gw.output()


async def test_agentbox_prompt_past_the_cap_gets_an_agentbox_error(small: Gateways) -> None:
    headers = {"Authorization": f"Bearer {small.agentbox_key}"}
    async with httpx.AsyncClient(base_url=small.agentbox_http, headers=headers, timeout=10) as http:
        refused = await http.post("/api/v1/tasks", json={"prompt": "w" * (MAX_CHARS + 1)})
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "bad_request" and "too long" in refused.json()["message"]
        batch = await http.post("/api/v1/batches", json={"prompts": ["fine", "w" * (MAX_CHARS + 1)]})
        assert batch.status_code == 400 and batch.json()["code"] == "bad_request", batch.text
        task = await http.post("/api/v1/tasks", json={"prompt": "fine"})
        assert task.status_code == 201, task.text
        task_id = task.json()["task_id"]
    async with websockets.connect(small.agentbox_ws) as ws:
        await ws.send(json.dumps({"id": "a1", "type": "auth", "payload": {"token": small.agentbox_key}}))
        assert json.loads(await ws.recv())["type"] == "auth.result"
        action = {"task_id": task_id, "action": "append_turn", "data": "v" * (MAX_CHARS + 1)}
        await ws.send(json.dumps({"id": "a2", "type": "task.action", "payload": action}))
        while (frame := json.loads(await asyncio.wait_for(ws.recv(), 10))).get("id") != "a2":
            pass
        assert frame["type"] == "error" and frame["payload"]["code"] == "bad_request", frame
        assert "too long" in frame["payload"]["message"]


# -- 3. requests in flight per connection ---------------------------------------------------


async def test_requests_in_flight_past_the_cap_get_a_retryable_error_and_the_socket_stays(small: Gateways) -> None:
    async with Client.open_connected(small.gw.url) as c:
        await start_agent(c, "[long] keep going", "inflight-run", session="inflight")
        waits = [
            await c.request("agent.wait", {"runId": "inflight-run", "timeoutMs": 60_000}) for _ in range(MAX_INFLIGHT)
        ]
        refused = await c.call("agent.wait", {"runId": "inflight-run", "timeoutMs": 60_000})
        assert refused["ok"] is False
        assert refused["error"]["code"] == "UNAVAILABLE" and refused["error"]["retryable"] is True
        assert refused["error"]["details"] == {"reason": "TOO_MANY_INFLIGHT", "limit": MAX_INFLIGHT}
        # every request counts while the waits are pending, even a quick one
        assert (await c.call("health"))["error"]["details"]["reason"] == "TOO_MANY_INFLIGHT"
        # the refusals closed nothing: once the run ends, the waits answer and new calls pass
        async with Client.open_connected(small.gw.url) as other:
            assert (await other.ok("chat.abort", {"sessionKey": "inflight"}))["aborted"] is True
        for rid in waits:
            assert (await c.response(rid, timeout=20))["payload"]["status"] == "aborted"
        assert (await c.ok("health"))["ok"] is True


async def test_a_connection_with_pending_waits_does_not_hold_anyone_else(small: Gateways) -> None:
    async with Client.open_connected(small.gw.url) as busy, Client.open_connected(small.gw.url) as other:
        await start_agent(busy, "[long] more", "inflight-2", session="inflight-2")
        for _ in range(MAX_INFLIGHT + 5):
            await busy.request("agent.wait", {"runId": "inflight-2", "timeoutMs": 60_000})
        assert (await other.ok("health"))["ok"] is True
        await other.ok("chat.abort", {"sessionKey": "inflight-2"})
