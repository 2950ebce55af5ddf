"""OpenClaw's own CLI against agenthub: ``openclaw cron ...`` and ``openclaw system ...`` unchanged."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from ..conftest import GatewayProc
from ..e2e._util import Client
from ..e2e.test_openclaw_cli import OPENCLAW, openclaw_env

__all__ = ["openclaw_env"]  # the fixture, shared with the e2e CLI test

TOKEN = "openclaw-automation-token"


def openclaw(env: dict[str, str], gw: GatewayProc, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(OPENCLAW), *args, "--url", gw.url, "--token", TOKEN]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


async def test_openclaw_cron_and_system_commands(make_gateway: Any, openclaw_env: dict[str, str]) -> None:
    gw: GatewayProc = make_gateway("--token", TOKEN)
    env = openclaw_env
    job = ok_json(openclaw(env, gw, "cron", "add", "--name", "nightly", "--every", "1h", "--message", "what is 2+2"))
    assert job["schedule"] == {"kind": "every", "everyMs": 3_600_000} and job["sessionTarget"] == "isolated"
    assert job["payload"] == {"kind": "agentTurn", "message": "what is 2+2"}

    table = openclaw(env, gw, "cron", "list")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith(job["id"]))
    assert "nightly" in row and "every 1h" in row and "idle" in row
    listed = ok_json(openclaw(env, gw, "cron", "list", "--json"))
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["jobs"][0]["status"] == "idle"

    status = ok_json(openclaw(env, gw, "cron", "status"))
    assert status["enabled"] is True and status["jobs"] == 1 and status["nextWakeAtMs"] == job["state"]["nextRunAtMs"]

    quiet = ok_json(
        openclaw(env, gw, "cron", "add", "--name", "quiet", "--every", "2h", "--message", "3*3", "--no-deliver")
    )
    ran = ok_json(openclaw(env, gw, "cron", "run", quiet["id"], "--wait", "--wait-timeout", "60s"))
    assert ran["status"] == "ok" and ran["completionStatus"] == "succeeded" and "9" in ran["run"]["summary"]

    assert openclaw(env, gw, "system", "heartbeat", "last").stdout.strip() == "null"
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as op:
        queued = openclaw(env, gw, "system", "event", "--text", "[alert] deploy finished")
        assert queued.returncode == 0 and queued.stdout.strip() == "ok", queued.stderr
        now = openclaw(env, gw, "system", "event", "--text", "check the deploy", "--mode", "now", "--json")
        assert ok_json(now) == {"ok": True}
        beat = await op.until(lambda f: f.get("event") == "heartbeat", timeout=30)
    last = ok_json(openclaw(env, gw, "system", "heartbeat", "last"))
    assert last["runId"] == beat["payload"]["runId"]
    # No channel is configured for heartbeats here, so the alert is reported as undeliverable, not dropped.
    assert last["status"] == "skipped" and last["reason"] == "no-route" and "deploy finished" in last["preview"]
    assert ok_json(openclaw(env, gw, "system", "heartbeat", "disable")) == {"ok": True, "enabled": False}
