"""Every program in examples/ runs against a real gateway and does what its docstring says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from agenthub.client import GatewayClient
from tests.conftest import GatewayProc
from tests.e2e._util import free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
    )


def start_example(name: str, ready: str, *args: str, **env: str) -> subprocess.Popen[str]:
    """Start a long-running example; returns once it printed a line containing ``ready``."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args],
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if ready in line:
            return proc
    proc.wait(timeout=10)
    raise AssertionError(f"{name} did not start:\n{''.join(seen)}")


def stop_example(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_examples_are_all_tested() -> None:
    tested = {
        "sdk_streaming.py",
        "custom_agent.py",
        "node.py",
        "agentbox_client.py",
        "langbot_client.py",
        "myagent_client.py",
        "weather_agent.py",  # tests/test_readme.py serves it with `agenthub serve-agent`
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested
    index = (EXAMPLES / "README.md").read_text()
    assert all(name in index for name in tested)


def test_sdk_streaming(gateway: GatewayProc) -> None:
    out = run_example("sdk_streaming.py", "what is 12*(3+4)?", AGENTHUB_URL=gateway.url)
    assert out.returncode == 0, out.stderr
    assert "accepted" in out.stdout and "(thinking)" in out.stdout and "84" in out.stdout
    assert out.stdout.rstrip().endswith("status: ok")


async def test_custom_agent_embeds_the_gateway(tmp_path: Path) -> None:
    port = free_port()
    proc = start_example("custom_agent.py", "ready on", "--port", str(port), "--data-dir", str(tmp_path))
    try:
        async with GatewayClient(f"ws://127.0.0.1:{port}") as gw:
            items = [item async for item in gw.run_agent("hello there", session_key="custom")]
        tools = [i for i in items if i.get("event") == "agent" and i["payload"]["stream"] == "tool"]
        assert tools and tools[0]["payload"]["data"]["name"] == "reverse"
        result = items[-1]
        assert result["type"] == "result" and result["status"] == "ok"
        assert result["summary"].strip() == "Reversed: ereht olleh"
    finally:
        assert stop_example(proc) == 0


async def test_node_serves_its_command(gateway: GatewayProc, tmp_path: Path) -> None:
    proc = start_example("node.py", "connected to", AGENTHUB_URL=gateway.url, NODE_KEY_FILE=str(tmp_path / "node.pem"))
    try:
        async with GatewayClient(gateway.url) as op:
            nodes = (await op.call("node.list"))["nodes"]
            node = next(n for n in nodes if "weather.get" in (n.get("commands") or []))
            answer: Any = await op.call(
                "node.invoke",
                {
                    "nodeId": node["nodeId"],
                    "command": "weather.get",
                    "params": {"city": "Paris"},
                    "idempotencyKey": "example-node-1",
                },
            )
        payload = answer.get("payload", answer)
        assert payload["weather"] == "cloudy, 14°C"
    finally:
        assert stop_example(proc) == 0


def test_agentbox_client(gateway: GatewayProc) -> None:
    key = subprocess.run(
        [sys.executable, "-m", "agenthub", "keys", "create", "--user", "alice", "--data-dir", str(gateway.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    out = run_example("agentbox_client.py", "what is 2+2", AGENTBOX_URL=gateway.http, AGENTBOX_KEY=key)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "task.completed" in out.stdout and "2+2 = 4" in out.stdout


def test_langbot_client(gateway: GatewayProc) -> None:
    url = gateway.url + "/api/v1/pipelines/default/ws/connect?session_type=person"
    out = run_example("langbot_client.py", "what is 3+4", LANGBOT_URL=url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "final:" in out.stdout and "3+4 = 7" in out.stdout


def test_myagent_client(make_gateway: Any) -> None:
    port = free_port()
    gw = make_gateway("--myagent-port", str(port), "--dev")
    assert gw.port
    out = run_example("myagent_client.py", "what is 5+6", MYAGENT_URL=f"ws://127.0.0.1:{port}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "system.connected" in out.stdout and "answer:" in out.stdout and "5+6 = 11" in out.stdout
