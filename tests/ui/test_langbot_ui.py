"""LangBot in the browser (seed 004): the front-end ``WebSocketClient`` and the pipeline debug page.

Both run in Chromium against a real gateway: the client class is the one the UI
bundles (``window.agenthub.WebSocketClient``), driven through its seed API.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

import httpx
import pytest

from ..conftest import GatewayProc
from .conftest import go, open_ui, shot

pytestmark = pytest.mark.browser
TOKEN = "lb-ui-token"

# Drives one client from the page; everything it hears is kept on window.lb (JSON-friendly).
SETUP = """([pipeline, token, opts]) => {
  const WebSocketClient = window.agenthub.WebSocketClient;
  const lb = window.lb = {msgs: [], broadcasts: [], connected: [], disconnects: [], errors: [], rejected: null};
  const client = lb.client = new WebSocketClient(pipeline, 'person', {token, ...opts});
  client.onMessage((m) => lb.msgs.push(m));
  client.onBroadcast((b) => lb.broadcasts.push(b));
  client.onConnected((i) => lb.connected.push(i));
  client.onDisconnected((d) => lb.disconnects.push(d));
  client.onError((e) => lb.errors.push(e));
  return client.connect().then(() => true, (e) => { lb.rejected = String(e.message); return false; });
}"""


def create_pipeline(gw: GatewayProc, name: str) -> tuple[str, str]:
    """A private pipeline through the CLI: its uuid and its key (shown once)."""
    out = subprocess.run(
        [sys.executable, "-m", "agenthub", "pipelines", "--data-dir", str(gw.data_dir), "create", "--name", name],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    return out[0], out[1]


def finals(page: Any) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = page.evaluate("window.lb.msgs")
    return [m for m in msgs if m["is_final"]]


def assert_streamed(msgs: list[dict[str, Any]]) -> None:
    """Chunks of one reply: cumulative, not final until the last, which is final."""
    assert len(msgs) >= 3 and all(not m["is_final"] for m in msgs[:-1]) and msgs[-1]["is_final"], msgs
    assert len({m["id"] for m in msgs}) == 1
    assert all(b["content"].startswith(a["content"]) for a, b in itertools.pairwise(msgs))


def test_seed_websocket_client_streams_beats_and_reconnects(new_page: Any, make_gateway: Any) -> None:
    gw = make_gateway("--token", TOKEN, config={"demo": {"word_delay_ms": 20}, "langbot": {"heartbeat_interval_s": 1}})
    uuid, key = create_pipeline(gw, "seed-client")
    page = new_page()
    open_ui(page, gw, token=TOKEN)
    # The seed's defaults: person sessions, a 30 s heartbeat, 5 reconnect attempts.
    defaults = page.evaluate(
        "(() => { const c = new window.agenthub.WebSocketClient('p');"
        " return [c.sessionType, c.heartbeatIntervalMs, c.maxReconnectAttempts, c.isConnected]; })()"
    )
    assert defaults == ["person", 30_000, 5, False]

    assert page.evaluate(SETUP, [uuid, key, {"heartbeatIntervalMs": 300}]) is True
    info = page.evaluate("window.lb.connected[0]")
    assert info["pipeline_uuid"] == uuid and info["session_type"] == "person" and info["connection_id"]
    page.evaluate("window.lb.client.sendMessage([{type: 'Plain', text: 'hello there [long:25]'}])")
    page.wait_for_function("window.lb.msgs.some(m => m.is_final)")
    assert_streamed(page.evaluate("window.lb.msgs"))
    assert "hello there" in finals(page)[0]["content"]

    # The gateway closes a socket silent for two of its 1 s periods; the client's pings keep this one.
    page.wait_for_function("window.lb.client.pongs >= 10", timeout=30_000)
    assert page.evaluate("[window.lb.disconnects.length, window.lb.client.isConnected]") == [0, True]

    res = httpx.post(
        f"{gw.http}/api/v1/pipelines/{uuid}/ws/broadcast",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"message": "maintenance at noon"},
    )
    assert res.json()["sent"] >= 1
    page.wait_for_function("window.lb.broadcasts.length === 1")
    assert page.evaluate("window.lb.broadcasts[0].message") == "maintenance at noon"

    gw.restart()  # same port: the client comes back by itself
    page.wait_for_function("window.lb.connected.length === 2", timeout=40_000)
    first = page.evaluate("window.lb.disconnects[0]")
    assert first["willReconnect"] is True and first["attempt"] == 1 and first["gaveUp"] is False
    assert page.evaluate("window.lb.client.reconnectAttempts") == 0
    page.evaluate("window.lb.msgs = []; window.lb.client.sendMessage([{type: 'Plain', text: 'still there?'}])")
    page.wait_for_function("window.lb.msgs.some(m => m.is_final)")
    assert "still there?" in finals(page)[0]["content"]

    page.evaluate("window.lb.client.disconnect()")
    page.wait_for_function("window.lb.disconnects.some(d => !d.willReconnect)")
    assert page.evaluate("window.lb.disconnects.at(-1)")["gaveUp"] is False
    assert page.evaluate("window.lb.client.isConnected") is False
    assert page.page_errors == []


def test_refusals_are_final_and_retries_stop_after_five(new_page: Any, make_gateway: Any) -> None:
    gw = make_gateway("--token", TOKEN)
    uuid, key = create_pipeline(gw, "retries")
    page = new_page()
    open_ui(page, gw, token=TOKEN)
    for pipeline, token, code in ((uuid, "lbk_not-the-key", 4401), ("no-such-pipeline", key, 4404)):
        assert page.evaluate(SETUP, [pipeline, token, {"reconnectDelayMs": 50}]) is False
        page.wait_for_function("window.lb.disconnects.length === 1")
        lb = page.evaluate("({d: window.lb.disconnects, e: window.lb.errors, r: window.lb.rejected})")
        assert lb["d"] == [
            {"code": code, "reason": lb["d"][0]["reason"], "willReconnect": False, "attempt": 0, "gaveUp": True}
        ]
        assert lb["r"]
        if code == 4401:  # explained in an error frame before the close
            assert lb["e"][0]["code"] == "unauthorized"

    # The gateway token works for a private pipeline too; then the gateway goes away for good.
    assert page.evaluate(SETUP, [uuid, TOKEN, {"reconnectDelayMs": 50}]) is True
    gw.stop()
    page.wait_for_function("window.lb.disconnects.some(d => d.gaveUp)", timeout=30_000)
    tries = page.evaluate("window.lb.disconnects")
    assert [d["attempt"] for d in tries] == [1, 2, 3, 4, 5, 5]
    assert [d["willReconnect"] for d in tries] == [True] * 5 + [False]
    assert tries[-1]["gaveUp"] is True and page.evaluate("window.lb.connected.length") == 1


# Records every distinct text of the newest pipeline reply and its data-final value.
WATCH = """() => {
  window.__lb = [];
  const log = document.getElementById('lb-messages');
  new MutationObserver(() => {
    const replies = log.querySelectorAll('.lb-reply');
    const last = replies[replies.length - 1];
    if (!last) return;
    const entry = [last.querySelector('.body').textContent, last.dataset.final];
    const prev = window.__lb[window.__lb.length - 1];
    if (!prev || prev[0] !== entry[0] || prev[1] !== entry[1]) window.__lb.push(entry);
  }).observe(log, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def toasts(page: Any) -> list[str]:
    texts: list[str] = page.locator("#toasts .toast").all_inner_texts()
    return texts


def test_pipeline_debug_page(page: Any, make_gateway: Any) -> None:
    gw = make_gateway("--token", TOKEN, config={"demo": {"word_delay_ms": 30}})
    uuid, _ = create_pipeline(gw, "debug-page")
    open_ui(page, gw, "langbot", token=TOKEN)
    dot = page.locator(".lb-status .dot")
    assert dot.get_attribute("data-state") == "down"
    assert page.locator("#lb-send").is_disabled()
    page.locator("#lb-pipeline").fill(uuid)
    page.locator("#lb-connect").click()  # no key typed: the gateway token from Settings is used
    page.wait_for_selector(".lb-status .dot[data-state='connected']")
    page.locator(".toast.ok", has_text=f"Connected to pipeline {uuid}").wait_for()
    assert page.locator("#lb-connect").inner_text() == "Disconnect" and page.locator("#lb-pipeline").is_disabled()

    page.evaluate(WATCH)
    page.locator("#lb-input").fill("what is 6 times 7? [long:30]")
    page.locator("#lb-input").press("Enter")
    page.wait_for_selector(".lb-reply[data-final='true']", timeout=30_000)
    renders: list[list[str]] = page.evaluate("window.__lb")
    streaming = [text for text, final in renders if final == "false" and text and text != "Generating…"]
    assert len(streaming) >= 3, renders
    assert all(b.startswith(a) for a, b in itertools.pairwise(streaming))
    final = page.locator(".lb-reply").last.locator(".body").inner_text()
    assert "42" in final and final.startswith(streaming[-1].strip()[:20])
    assert page.locator("#lb-messages .msg.user").inner_text().endswith("what is 6 times 7? [long:30]")
    shot(page, "30-langbot-debug")

    gw.restart()
    page.locator(".toast.bad", has_text="Reconnecting (attempt 1 of 5)").first.wait_for(timeout=20_000)
    page.wait_for_selector(".lb-status .dot[data-state='connected']", timeout=40_000)
    page.wait_for_function(
        "[...document.querySelectorAll('#toasts .toast.ok')].some(t => t.textContent.startsWith('Connected'))"
    )
    page.locator("#lb-input").fill("back again")
    page.locator("#lb-input").press("Enter")
    page.wait_for_function("document.querySelectorAll(\".lb-reply[data-final='true']\").length === 2", timeout=30_000)

    page.locator("#lb-connect").click()  # Disconnect
    page.wait_for_selector(".lb-status .dot[data-state='down']")
    page.locator("#toasts .toast.info").get_by_text("Disconnected.", exact=True).wait_for()
    assert page.locator("#lb-send").is_disabled()

    page.locator("#lb-key").fill("lbk_wrong")
    page.locator("#lb-connect").click()
    page.wait_for_selector(".lb-status .dot[data-state='down']")
    page.locator(".toast.bad", has_text="Disconnected: ").last.wait_for()
    assert page.locator("#lb-status-label").inner_text().startswith("Disconnected: ")
    # Leaving the page closes its socket.
    page.locator("#lb-key").fill("")
    page.locator("#lb-connect").click()
    page.wait_for_selector(".lb-status .dot[data-state='connected']")
    url = f"{gw.http}/api/v1/pipelines/{uuid}/ws/connections"
    assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).json()["total"] == 1
    go(page, "chat")
    for _ in range(200):  # the close reaches the gateway soon; 20 s is the ceiling
        total = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).json()["total"]
        if total == 0:
            break
        page.wait_for_timeout(100)
    assert total == 0
    assert page.page_errors == []
