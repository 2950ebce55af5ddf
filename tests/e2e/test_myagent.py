"""MyAgent dialect (seed 003) against a real gateway: the seed's clients, replay, state, solver, errors."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from agenthub.dialects import myagent as ma

from ..conftest import GatewayProc, RawClient, require_node_ws, seed_text
from . import _myagent_seed_client as seed_py

ROOT = Path(__file__).resolve().parents[2]
SEED = "003_73e93bbce01bfd89.txt"
SECRET = "test-state-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    port = free_port()
    proc = GatewayProc(
        tmp_path_factory.mktemp("myagent"),
        ["--myagent-port", str(port), "--myagent-secret", SECRET],
        {},
        {"demo": {"word_delay_ms": 5}},
    )
    proc.start()
    proc.myagent_url = f"ws://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield proc
    proc.stop()


def url(gw: GatewayProc) -> str:
    return str(gw.myagent_url)  # type: ignore[attr-defined]


class Client:
    """A bare MyAgent client for protocol tests."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, event: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"event": event, **fields}))

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            data: dict[str, Any] = json.loads(await self.ws.recv())
            return data

    async def until(self, event: str) -> list[dict[str, Any]]:
        seen = []
        while True:
            seen.append(await self.recv())
            if seen[-1]["event"] == event:
                return seen

    async def session(self) -> str:
        await self.send("user.create_session", content="create_session")
        msg = await self.recv()
        assert msg["event"] == "agent.session_created" and msg["seq"] == 1
        return str(msg["session_id"])


async def open_client(gw: GatewayProc) -> tuple[Any, Client]:
    ws = await websockets.connect(url(gw))
    client = Client(ws)
    hello = await client.recv()
    assert hello["event"] == "system.connected" and hello["seq"] == 0 and isinstance(hello["event_id"], str)
    return ws, client


def test_seed_clients_are_verbatim() -> None:
    seed = seed_text(SEED)
    assert (ROOT / "tests/js/myagent_client.js").read_text(encoding="utf-8") in seed
    assert (ROOT / "tests/e2e/_myagent_seed_client.py").read_text(encoding="utf-8") in seed


async def test_seed_node_client_and_operator_sees_the_run(gw: GatewayProc) -> None:
    node = require_node_ws()
    async with RawClient.open(gw.url) as operator:
        assert (await operator.connect())["ok"]
        proc = await asyncio.create_subprocess_exec(
            node, str(ROOT / "tests/js/myagent_run.js"), url(gw), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await proc.communicate()
        result = json.loads(out.decode().strip().splitlines()[-1])
        assert not result["timedOut"], err.decode()
        received, logs = result["received"], [entry["args"] for entry in result["logs"]]
        created = next(m for m in received if m["event"] == "agent.session_created")
        final = next(m for m in received if m["event"] == "agent.final_answer")
        sid = created["session_id"]
        assert ["✅ 聿恥成功"] in logs  # the seed's own (mis-decoded) "connected" label
        assert [seed_label for seed_label, value in (log for log in logs if len(log) == 2) if value == sid]
        assert any(len(log) == 2 and log[1] == final["content"] for log in logs)  # printed by the client
        assert "你好，请介灻一下自己" in final["content"]
        session_events = [m for m in received if m["seq"] > 0]
        assert [m["seq"] for m in session_events] == list(range(1, len(session_events) + 1))
        assert len({m["event_id"] for m in received}) == len(received)
        assert {"agent.thinking", "agent.final_answer"} <= {m["event"] for m in received}
        event = await operator.until(
            lambda f: (
                f.get("event") == "chat"
                and f["payload"]["state"] == "final"
                and f["payload"]["sessionKey"] == f"myagent:{sid}"
            )
        )
        assert event["payload"]["message"]["content"][0]["text"] == final["content"]


async def test_seed_python_client(gw: GatewayProc, capsys: pytest.CaptureFixture[str]) -> None:
    """The seed's Python client class, unmodified, with the steps of its main() (minus the 10 s linger)."""
    client = seed_py.MyAgentClient(url(gw))
    await client.connect()
    deadline = time.monotonic() + 10
    while client.session_id is None and time.monotonic() < deadline:  # noqa: ASYNC110 - the seed class has no event
        await asyncio.sleep(0.05)
    await client.send_message("你好，请介绍一下自己")
    out = ""
    while "Agent偛灔: You said" not in out and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        out += capsys.readouterr().out
    await client.websocket.close()
    await asyncio.sleep(0.1)
    out += capsys.readouterr().out
    sid = client.session_id
    assert sid is not None and sid.startswith("sess_")
    assert "✅ 聿恥成功" in out and f"会话创建成功: {sid}" in out
    history = await _history(gw, sid)
    assert history[-1]["content"].startswith('You said: "你好，请介绍一下自己"')
    assert f"Agent偛灔: {history[-1]['content']}" in out  # the client printed the final answer


async def _history(gw: GatewayProc, sid: str) -> list[dict[str, Any]]:
    async with RawClient.open(gw.url) as op:
        assert (await op.connect())["ok"]
        res = await op.call("chat.history", {"sessionKey": f"myagent:{sid}"})
        assert res["ok"], res
        messages: list[dict[str, Any]] = res["payload"]["messages"]
        return [{"role": m["role"], "content": m["content"][0]["text"]} for m in messages]


async def test_reconnect_replays_what_was_missed_then_continues_live(gw: GatewayProc) -> None:
    async with RawClient.open(gw.url) as operator:
        assert (await operator.connect())["ok"]
        ws, a = await open_client(gw)
        sid = await a.session()
        await a.send("user.message", session_id=sid, content="what is 6 times 7")
        first = await a.recv()
        assert first["event"] == "agent.thinking" and first["seq"] == 2
        await a.send("user.ack", content={"last_event_id": first["event_id"]})
        await ws.close()  # away while the run continues
        # The run ends while nobody of the session is connected: an operator sees it end.
        await operator.until(
            lambda f: (
                f.get("event") == "chat"
                and f["payload"]["sessionKey"] == f"myagent:{sid}"
                and f["payload"]["state"] == "final"
            ),
            timeout=30,
        )

    ws2, b = await open_client(gw)
    await b.send("user.reconnect", session_id=sid)  # no position given: after the acknowledged seq 2
    replay = await b.until("agent.session_resumed")
    seqs = [m["seq"] for m in replay]
    assert seqs == list(range(3, 3 + len(seqs)))
    events = [m["event"] for m in replay]
    assert "agent.tool_call" in events and "agent.tool_result" in events
    final = next(m for m in replay if m["event"] == "agent.final_answer")
    assert "6 * 7 = 42" in final["content"]
    assert replay[-1]["metadata"] == {"replayed": len(replay) - 1, "after_seq": 2}
    # live again, numbering continues
    await b.send("user.message", session_id=sid, content="hello again")
    live = await b.until("agent.final_answer")
    assert live[0]["seq"] == replay[-1]["seq"] + 1
    await b.send("user.ack", content={"last_seq": live[-1]["seq"]})
    await ws2.close()

    ws3, c = await open_client(gw)
    await c.send("user.reconnect", session_id=sid)
    resumed = await c.recv()
    assert resumed["event"] == "agent.session_resumed"
    assert resumed["metadata"] == {"replayed": 0, "after_seq": live[-1]["seq"]}
    # an explicit last_seq replays exactly the events after it, in order
    await c.send("user.reconnect", session_id=sid, last_seq=live[0]["seq"] - 1)
    again = [await c.recv()]
    resumed_at = live[0]["seq"] - 1
    while not (again[-1]["event"] == "agent.session_resumed" and again[-1]["metadata"]["after_seq"] == resumed_at):
        again.append(await c.recv())
    assert [m["event_id"] for m in again[: len(live)]] == [m["event_id"] for m in live]
    # an event id from another epoch is a gap, reported, and the session still resumes
    await c.send("user.reconnect", session_id=sid, content={"last_event_id": f"{sid}.OtherEpo.1"})
    gap = await c.recv()
    assert gap["event"] == "system.error" and gap["metadata"]["code"] == "REPLAY_GAP"
    assert (await c.recv())["event"] == "agent.session_resumed"
    await ws3.close()


async def test_state_export_restore_and_refusals(gw: GatewayProc) -> None:
    ws, c = await open_client(gw)
    sid = await c.session()
    await c.send("user.message", session_id=sid, content="remember the number 12")
    await c.until("agent.final_answer")
    await c.send("user.request_state", session_id=sid, timestamp="2025-01-01T00:00:00")
    exported = (await c.until("agent.state_exported"))[-1]
    signed = exported["metadata"]["signed_state"]
    assert signed["state"]["step"] == 1 and [m["role"] for m in signed["state"]["messages"]] == ["user", "assistant"]

    tampered = json.loads(json.dumps(signed))
    tampered["state"]["messages"][0]["content"] = "forget it"
    expired_state = {**signed["state"], "expires_ms": 1}
    for bad, why in ((tampered, "signature"), (ma.sign_state(expired_state, SECRET.encode()), "expired")):
        await c.send("user.reconnect_with_state", signed_state=bad)
        err = await c.recv()
        assert err["event"] == "system.error" and why in err["content"]

    await c.send("user.reconnect_with_state", signed_state=signed)
    restored = await c.recv()
    assert restored["event"] == "agent.state_restored" and restored["session_id"] != sid
    assert restored["metadata"]["restored_step"] == 1 and restored["seq"] == 1
    new_sid = restored["session_id"]
    history = await _history(gw, new_sid)
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "remember the number 12"
    await c.send("user.message", session_id=new_sid, content="and now?")
    assert (await c.until("agent.final_answer"))[-1]["session_id"] == new_sid
    await ws.close()


async def test_solve_tasks(gw: GatewayProc) -> None:
    ws, c = await open_client(gw)
    sid = await c.session()
    tasks = [{"id": 1, "title": "Sum", "objective": "compute 2+2"}, {"id": 2, "title": "Greet", "objective": "hi"}]
    await c.send("user.solve_tasks", session_id=sid, content={"tasks": tasks, "question": "a test"})
    events = await c.until("solver.completed")
    names = [m["event"] for m in events]
    assert names[0] == "solver.start" and names.count("solver.task_completed") == 2
    done = events[-1]
    results = done["content"]["results"]
    assert [r["task_id"] for r in results] == [1, 2] and all(r["status"] == "completed" for r in results)
    assert "2+2 = 4" in results[0]["result"]
    assert done["metadata"] == {"completed": 2, "total": 2}
    await ws.close()


async def test_bad_input_gets_system_error_and_the_socket_stays_usable(gw: GatewayProc) -> None:
    ws, c = await open_client(gw)
    for bad, expected in (
        ("{not json", "invalid JSON"),
        (json.dumps({"event": "user.teleport"}), "unknown event"),
        (json.dumps({"event": "user.message", "content": "hi"}), "session_id"),
        (json.dumps({"event": "user.message", "session_id": "sess_nope", "content": "hi"}), "unknown session"),
        (json.dumps({"event": "user.reconnect", "session_id": "sess_nope"}), "unknown session"),
        (json.dumps({"event": "user.response", "step_id": "nope", "content": {"confirmed": True}}), "no pending"),
    ):
        await ws.send(bad)
        err = await c.recv()
        assert err["event"] == "system.error" and expected in err["content"], err
    sid = await c.session()
    await c.send("user.message", session_id=sid, content="ok?")
    assert (await c.until("agent.final_answer"))[-1]["content"].startswith('You said: "ok?"')
    await c.send("user.message", session_id=sid, content="[fail] please")
    err = (await c.until("agent.error"))[-1]
    assert "demo failure requested" in err["content"]
    await ws.close()


def test_gateway_refuses_myagent_without_a_fixed_secret(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "agenthub",
            "gateway",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--myagent-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "refusing to serve MyAgent without a fixed state key" in out.stderr
