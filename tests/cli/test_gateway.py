"""`agenthub gateway` behaviour a user sees: structured logs, ticks, graceful stop."""

from __future__ import annotations

import json
import signal
from typing import Any

from ..conftest import GatewayProc, RawClient


async def test_json_logs_ticks_and_graceful_stop(make_gateway: Any) -> None:
    gw: GatewayProc = make_gateway("--log-format", "json", config={"limits": {"tick_interval_ms": 200}})
    async with RawClient.open(gw.url) as c:
        await c.connect()
        ticks = [await c.until(lambda f: f.get("event") == "tick") for _ in range(2)]
        assert ticks[1]["payload"]["ts"] > ticks[0]["payload"]["ts"]
        assert ticks[1]["seq"] > ticks[0]["seq"]
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGINT)
        shutdown = await c.until(lambda f: f.get("event") == "shutdown")
        assert shutdown["payload"]["reason"]
        code, _ = await c.closed()
        assert code == 1012
    assert gw.stop() == 0
    records = [json.loads(line) for line in gw.output().splitlines() if line.startswith("{")]
    assert any(r["logger"] == "agenthub.app" and "listening" in r["msg"] for r in records)
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
