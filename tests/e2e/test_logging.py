"""Structured logs from a real gateway: every JSON line is JSON, and ids follow connections and runs."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import READY
from tests.e2e._util import Client, collect_run, start_agent

TOKEN = "logging-test-token-0123456789"


async def _wait_for(gw: Any, needle: str) -> None:
    """Log lines arrive through a pipe: wait (bounded) for one containing ``needle``."""
    import asyncio

    for _ in range(200):
        if any(needle.encode() in line for line in gw.log):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log line with {needle!r}:\n{gw.output()}")


async def test_json_mode_every_line_is_json_and_a_request_id_follows_the_run(make_gateway: Any) -> None:
    gw = make_gateway("--log-format", "json", "--token", TOKEN)
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        rid, accepted = await start_agent(c, "what is 2+2", "log-run-1")
        run_id = accepted["runId"]
        await collect_run(c, run_id, rid)
    async with Client.open(gw.url) as bad:  # an auth failure is logged with its connection id
        assert not (await bad.connect(auth={"token": "wrong"}))["ok"]
    await _wait_for(gw, f"run {run_id} ended")
    await _wait_for(gw, "auth failed")
    gw.stop()
    lines = [json.loads(line) for line in gw.log]  # raises on any line that is not JSON
    assert all({"ts", "level", "logger", "msg"} <= set(rec) for rec in lines)
    # The ready banner is a JSON line too, and tests/conftest.py still finds the port in it.
    ready = [rec for rec in lines if READY.search(rec["msg"].encode())]
    assert len(ready) == 1 and ready[0]["level"] == "info"
    assert any(rec["msg"].startswith("Control UI: http://127.0.0.1:") for rec in lines)
    # The request that started the run: <conn_id>/<frame id>, on the accept line and on the end line.
    accepted_line = next(rec for rec in lines if rec["msg"].startswith(f"run {run_id} accepted"))
    ended_line = next(rec for rec in lines if rec["msg"].startswith(f"run {run_id} ended: ok"))
    request_id = accepted_line["request_id"]
    assert request_id == f"{accepted_line['conn_id']}/{rid}"
    assert ended_line["request_id"] == request_id and ended_line["run_id"] == run_id
    # The connection is logged under its id when it authenticates and when it closes.
    conn_id = accepted_line["conn_id"]
    mine = [rec["msg"] for rec in lines if rec.get("conn_id") == conn_id]
    assert any(m.startswith(f"authenticated: conn={conn_id} ip=127.0.0.1 role=operator") for m in mine)
    assert any(m.startswith(f"connection closed: conn={conn_id}") for m in mine)
    failed = next(rec for rec in lines if rec["msg"].startswith("auth failed"))
    assert failed["level"] == "warning" and failed["conn_id"] in failed["msg"]
    assert "wrong" not in failed["msg"] and TOKEN not in gw.output()  # never the secret


async def test_text_mode_lines_carry_the_ids(gateway: Any) -> None:
    async with Client.open_connected(gateway.url) as c:
        rid, accepted = await start_agent(c, "hello", "log-run-2")
        await collect_run(c, accepted["runId"], rid)
    await _wait_for(gateway, f"run {accepted['runId']} ended")
    ended = next(line.decode() for line in gateway.log if f"run {accepted['runId']} ended".encode() in line)
    assert f"run_id={accepted['runId']}" in ended and f"/{rid}" in ended and "request_id=" in ended
    assert any(line.startswith(b"agenthub gateway ready on ws://127.0.0.1:") for line in gateway.log)


async def test_dialect_sockets_are_logged_with_a_connection_id(gateway: Any) -> None:
    import websockets

    url = gateway.url + "/api/v1/pipelines/default/ws/connect?session_type=person"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] in ("pong", "connected")
    await _wait_for(gateway, "connection closed: dialect=langbot")
    opened = next(line.decode() for line in gateway.log if b"connection open: dialect=langbot" in line)
    assert "conn_id=" in opened and "token" not in opened
