"""The README's shell commands, run as a newcomer pastes them into a second terminal after ``make run``.

Fenced blocks whose info string is ``bash readme-test`` are run in order, in one bash (``set -e``), from a
directory that looks like a checkout (``.venv`` is the venv running these tests, ``examples/`` the repository's).
``AGENTHUB_URL`` and ``AGENTHUB_DATA_DIR`` point the CLI at a real gateway that plays ``make run``'s (the CLI
honours both), and the README's ``127.0.0.1:18789`` becomes that gateway's port: nothing else is changed.
A ``bash readme-test-myagent`` block starts a server of its own, so it is run on its own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import websockets

from tests.e2e._util import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def blocks(tag: str) -> list[str]:
    return re.findall(rf"^```bash {re.escape(tag)}\n(.*?)^```", README.read_text(), re.S | re.M)


def checkout(tmp_path: Path) -> Path:
    """A directory shaped like a checkout after ``make run``: ``.venv`` and ``examples/``."""
    home = tmp_path / "checkout"
    home.mkdir()
    (home / ".venv").symlink_to(sys.prefix)
    (home / "examples").symlink_to(ROOT / "examples")
    assert (home / ".venv/bin/activate").exists(), "the tests must run from a venv (make test uses .venv)"
    return home


def test_readme_blocks_are_marked() -> None:
    """The quick start, the CLI section and the AgentBox REST example are executed (not just shown)."""
    script = "\n".join(blocks("readme-test"))
    assert script.lstrip().startswith("source .venv/bin/activate")
    for command in ("agenthub call health", "--expect-final", "agenthub protocol schema", "agenthub keys create"):
        assert command in script
    # Nothing in the README starts a second gateway on the port `make run` holds.
    assert not re.search(r"^agenthub gateway .*&\s*$", README.read_text(), re.M)


def test_readme_commands_run_against_a_live_gateway(gateway: Any, tmp_path: Path) -> None:
    home = checkout(tmp_path)
    script = "\n".join(blocks("readme-test")).replace("127.0.0.1:18789", f"127.0.0.1:{gateway.port}")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        "PATH": "/usr/bin:/bin",  # agenthub comes from `source .venv/bin/activate`, as in the README
        "AGENTHUB_URL": gateway.url,
        "AGENTHUB_DATA_DIR": str(gateway.data_dir),
    }
    out = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert '"ok": true' in out.stdout  # agenthub call health
    assert "84" in out.stdout  # --expect-final printed the answer to 12*(3+4)
    assert '"messages"' in out.stdout  # chat.history
    schema = json.loads((home / "protocol.schema.json").read_text())
    assert "definitions" in schema
    task = json.loads(out.stdout.strip().splitlines()[-1])  # the curl to /api/v1/tasks, last
    assert task["status"] == "queued" and task["task_id"].startswith("task-")


def test_readme_serve_agent_command_starts_beside_make_run(gateway: Any, tmp_path: Path) -> None:
    """``serve-agent`` as the README shows it runs while a gateway holds the default port and data dir."""
    (command,) = [line for block in blocks("readme-test-myagent") for line in block.splitlines() if line.strip()]
    port = free_port()
    home = checkout(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        "PATH": f"{home / '.venv/bin'}:/usr/bin:/bin",
        "AGENTHUB_DATA_DIR": str(gateway.data_dir),  # the data dir the running gateway holds
    }
    proc = subprocess.Popen(
        ["bash", "-c", "exec " + command.replace("--port 8081", f"--port {port}")],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "serve-agent ready on" in line:
                break
        else:
            raise AssertionError("serve-agent did not start:\n" + "".join(seen))

        async def ask() -> list[dict[str, Any]]:
            async with websockets.connect(f"ws://127.0.0.1:{port}") as ws:
                frames = [json.loads(await ws.recv())]
                await ws.send(json.dumps({"event": "user.create_session"}))
                while frames[-1]["event"] != "agent.session_created":
                    frames.append(json.loads(await ws.recv()))
                session_id = frames[-1]["session_id"]
                await ws.send(
                    json.dumps({"event": "user.message", "session_id": session_id, "content": "weather in Paris?"})
                )
                while frames[-1]["event"] != "agent.final_answer":
                    frames.append(json.loads(await ws.recv()))
                return frames

        import asyncio

        frames = asyncio.run(asyncio.wait_for(ask(), 60))
        assert "cloudy" in str(frames[-1]["content"]).lower()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
