"""The MyAgent server API (seed 003): ``serve-agent`` with the weather example, and user confirmation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from agenthub.myagent import AgentWebSocketServer, BaseTool, ToolResult, create_toolcall_agent
from agenthub.myagent.agent import ToolCallAgent

from ..conftest import seed_text
from .test_myagent import SEED, Client, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    sockets: list[Any] = []

    async def open_at(url: str) -> Client:
        ws = await websockets.connect(url)
        sockets.append(ws)
        client = Client(ws)
        assert (await client.recv())["event"] == "system.connected"
        return client

    yield open_at
    for ws in sockets:
        await ws.close()


async def test_serve_agent_runs_the_weather_example(tmp_path: Path, client_for: Any) -> None:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "agenthub",
        "serve-agent",
        str(ROOT / "examples/weather_agent.py"),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--dev",
        "--data-dir",
        str(tmp_path),
    ]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while b"serve-agent ready" not in (line := await proc.stdout.readline()):
                assert line, "serve-agent exited"
        c = await client_for(f"ws://127.0.0.1:{port}")
        sid = await c.session()
        await c.send("user.message", session_id=sid, content="What's the weather in Paris?")
        events = await c.until("agent.final_answer")
        call = next(m for m in events if m["event"] == "agent.tool_call")
        assert call["metadata"]["tool_name"] == "get_weather" and call["metadata"]["tool_args"] == {"city": "paris"}
        result = next(m for m in events if m["event"] == "agent.tool_result")
        assert result["content"] == "Weather in Paris: cloudy, 14°C, humidity 65%."
        assert not result["metadata"]["is_error"]
        assert events[-1]["content"] == result["content"]
        await c.send("user.message", session_id=sid, content="and the weather in Atlantis?")
        events = await c.until("agent.final_answer")
        failed = next(m for m in events if m["event"] == "agent.tool_result")
        assert failed["metadata"]["is_error"] and "no weather data" in failed["content"]
    finally:
        proc.terminate()
        await proc.wait()
    refused = await asyncio.create_subprocess_exec(
        *cmd[:-3], "--data-dir", str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, err = await refused.communicate()
    assert refused.returncode == 2 and b"refusing to serve MyAgent without a fixed state key" in err


class DeleteTool(BaseTool):
    name = "delete_files"
    description = "Deletes files (asks first)."
    user_confirm = True

    async def execute(self, **kwargs: Any) -> ToolResult:
        return ToolResult(output="deleted 3 files")


def create_agent() -> ToolCallAgent:
    return create_toolcall_agent(tools=[DeleteTool()], name="janitor", description="cleans up")


async def test_user_confirmation_confirm_decline_and_timeout(tmp_path: Path, client_for: Any) -> None:
    server = AgentWebSocketServer(
        agent_factory_func=create_agent,
        host="127.0.0.1",
        port=free_port(),
        state_secret_key="k",
        data_dir=str(tmp_path),
        confirm_timeout_s=0.5,
    )
    serving = asyncio.get_running_loop().create_task(server.start_server())
    async with asyncio.timeout(10):
        while server.gateway is None:  # noqa: ASYNC110 - polling the public attribute is the simplest probe
            await asyncio.sleep(0.02)
    try:
        c = await client_for(f"ws://127.0.0.1:{server.port}")
        sid = await c.session()

        async def turn(answer: bool | None) -> dict[str, Any]:
            await c.send("user.message", session_id=sid, content="please delete_files in /tmp")
            ask = (await c.until("agent.user_confirm"))[-1]
            assert ask["metadata"]["tool_name"] == "delete_files" and ask["step_id"].startswith("step_")
            if answer is not None:
                await c.send("user.response", session_id=sid, step_id=ask["step_id"], content={"confirmed": answer})
            events = await c.until("agent.final_answer")
            return next(m for m in events if m["event"] == "agent.tool_result")

        done = await turn(True)
        assert done["content"] == "deleted 3 files" and not done["metadata"]["is_error"]
        declined = await turn(False)
        assert declined["metadata"]["is_error"] and "declined" in declined["content"]
        timed_out = await turn(None)
        assert timed_out["metadata"]["is_error"] and "no confirmation" in timed_out["content"]
        await c.send("user.response", session_id=sid, step_id="step_gone", content={"confirmed": True})
        assert (await c.recv())["event"] == "system.error"
    finally:
        await server.shutdown()
        await serving
    assert json.dumps(create_agent().tools[0].parameters)


# -- the seed's own server file, unchanged ------------------------------------------------------

SEED_SERVER = ROOT / "tests/e2e/_myagent_seed_server.py"


def test_seed_server_example_is_verbatim() -> None:
    seed = seed_text(SEED)
    start = seed.index("# my_agent_server.py")
    assert SEED_SERVER.read_text(encoding="utf-8") == seed[start : seed.index("```", start)]


async def _serve_seed_file(cmd: list[str], port: int, client_for: Any) -> tuple[list[dict[str, Any]], bytes, int]:
    """Start ``cmd``, talk to its MyAgent port, stop it with SIGTERM: (events, output, exit code)."""
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while b"serving on ws://" not in (line := await proc.stdout.readline()) and b"ready on ws://" not in line:
                out += line
                assert line, out.decode(errors="replace")
        c = await client_for(f"ws://127.0.0.1:{port}")
        sid = await c.session()
        await c.send("user.message", session_id=sid, content="please use my_tool")
        events = await c.until("agent.final_answer")
    finally:
        proc.terminate()
        rest, _ = await proc.communicate()
        out += rest
    return events, out, proc.returncode if proc.returncode is not None else -1


async def test_seed_server_file_runs_unchanged(tmp_path: Path, client_for: Any) -> None:
    """`agenthub myagent run my_agent_server.py`: the seed's `python my_agent_server.py`, file untouched."""
    port = free_port()
    cmd = [sys.executable, "-m", "agenthub", "myagent", "run", str(SEED_SERVER)]
    cmd += ["--port", str(port), "--host", "127.0.0.1", "--data-dir", str(tmp_path)]
    events, out, code = await _serve_seed_file(cmd, port, client_for)
    call = next(m for m in events if m["event"] == "agent.tool_call")
    assert call["metadata"]["tool_name"] == "my_tool"
    assert events[-1]["content"] == "工具执行成功"
    assert code == 0 and b"Traceback" not in out, out.decode(errors="replace")
    # The script's own state_secret_key is used: no --dev, and no ephemeral-key warning.
    assert b"ephemeral" not in out


async def test_seed_cli_form_serves_a_seed_style_file(tmp_path: Path, client_for: Any) -> None:
    """`agenthub myagent server FILE --port N`: the seed's `python -m myagent.cli.server server FILE --port N`."""
    port = free_port()
    cmd = [sys.executable, "-m", "agenthub", "myagent", "server", str(SEED_SERVER), "--port", str(port)]
    cmd += ["--host", "127.0.0.1", "--dev", "--data-dir", str(tmp_path)]
    events, out, code = await _serve_seed_file(cmd, port, client_for)
    assert events[-1]["content"] == "工具执行成功"
    assert code == 0 and b"Traceback" not in out, out.decode(errors="replace")


def test_compat_layer_is_installed_only_by_the_runner() -> None:
    code = "import importlib.util, sys; print(importlib.util.find_spec('myagent'))"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert plain.stdout.strip() == "None"  # agenthub installs no top-level myagent package
    probe = (
        "from agenthub.myagent import compat; compat.install()\n"
        "from myagent import create_toolcall_agent, AgentWebSocketServer\n"
        "from myagent.ws.server import AgentWebSocketServer as S\n"
        "from myagent.tool import BaseTool, ToolResult\n"
        "assert S is AgentWebSocketServer\n"
        "try:\n    import myagent.llm\nexcept ModuleNotFoundError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    assert "No module named 'myagent.llm': agenthub's MyAgent compatibility layer provides" in out.stdout
