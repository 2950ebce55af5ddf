"""The browser UI in Debian's Chromium (Playwright), against a real gateway process.

Screenshots of each step go to ``test-output/ui/`` (git-ignored).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from .conftest import send, shot, wait_dot

pytestmark = pytest.mark.browser

# Collects every distinct text the newest assistant bubble shows, as the DOM changes.
WATCH_RENDERS = """() => {
  window.__renders = [];
  const log = document.getElementById('messages');
  new MutationObserver(() => {
    const bodies = log.querySelectorAll('.msg.assistant .body');
    const last = bodies[bodies.length - 1];
    if (!last) return;
    const text = last.textContent;
    if (window.__renders[window.__renders.length - 1] !== text) window.__renders.push(text);
  }).observe(log, {subtree: true, childList: true, characterData: true});
}"""


def dot(page: Any) -> Any:
    return page.locator("#status-dot")


def test_serves_the_ui_and_keeps_the_websocket_path(browser: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    ctx = browser.new_context()
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    resp = page.goto(gw.http + "/")
    assert resp is not None and resp.ok
    assert "Content-Security-Policy" in {k.title(): v for k, v in resp.headers.items()} or resp.headers.get(
        "content-security-policy"
    )
    wait_dot(page, "connected")
    assert page.locator("#status-label").inner_text() == "Connected"
    assert errors == []  # nothing the CSP refused
    ctx.close()


def test_streams_a_reply_incrementally_with_tool_and_thinking(page: Any, make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 25}})
    page.goto(gw.http + "/")
    wait_dot(page, "connected")
    page.evaluate(WATCH_RENDERS)
    send(page, "what is 12 times 7? [long]")
    page.wait_for_selector(".msg.user >> text=what is 12 times 7?")
    page.wait_for_function("document.querySelectorAll('.msg.assistant .body')[0]?.textContent.length > 20")
    shot(page, "01-streaming")
    page.wait_for_selector(".msg.assistant[data-state='final']", timeout=30_000)
    renders: list[str] = page.evaluate("window.__renders")
    final = page.locator(".msg.assistant .body").last.inner_text()
    intermediate = {r for r in renders if r and r != final}
    assert len(intermediate) >= 3, renders
    # Each render extends the previous one: streamed, never duplicated.
    texts = [r for r in renders if r]
    assert all(b.startswith(a.rstrip("…")) for a, b in itertools.pairwise(texts)), texts[:5]
    assert "84" in final
    tool = page.locator("details.tool").first
    assert "calculator" in tool.inner_text().lower() or tool.get_attribute("data-tool")
    tool.locator("summary").click()
    assert "84" in tool.inner_text()
    assert page.locator("details.thinking").count() == 1
    shot(page, "02-final-with-tool")


def test_abort_mid_stream_shows_aborted(page: Any, make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 60}})
    page.goto(gw.http + "/")
    wait_dot(page, "connected")
    send(page, "tell me a story [long]")
    page.wait_for_function("document.querySelector('.msg.assistant .body')?.textContent.split(' ').length > 5")
    assert page.locator("#abort").is_enabled()
    page.locator("#abort").click()
    page.wait_for_selector(".msg.assistant[data-state='aborted']")
    assert "aborted" in page.locator(".msg.assistant .badge").last.inner_text()
    assert page.locator("#abort").is_disabled()
    words = len(page.locator(".msg.assistant .body").last.inner_text().split())
    assert 5 <= words < 150
    shot(page, "03-aborted")


def test_reconnects_after_gateway_restart_with_history_intact(page: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    page.goto(gw.http + "/")
    wait_dot(page, "connected")
    send(page, "remember the word pineapple")
    page.wait_for_selector(".msg.assistant[data-state='final']")
    before = page.locator("#messages").inner_text()
    port = gw.port
    gw.kill()
    wait_dot(page, "reconnecting")
    assert page.locator("#status-error").inner_text() != ""
    shot(page, "04-reconnecting")
    gw.start(port)
    wait_dot(page, "connected", timeout=30_000)
    page.wait_for_selector(".msg.user >> text=remember the word pineapple")
    page.wait_for_selector(".msg.assistant[data-state='final']")
    assert page.locator(".msg.user").count() == 1
    assert page.locator(".msg.assistant").count() == 1
    assert page.locator("#messages").inner_text().replace("\n", "").count("pineapple") == before.replace(
        "\n", ""
    ).count("pineapple")
    shot(page, "05-reconnected")


def test_wrong_token_is_refused_with_a_visible_message(page: Any, make_gateway: Any) -> None:
    gw = make_gateway("--token", "right-token")
    page.goto(gw.http + "/")
    wait_dot(page, "down")
    assert "token" in page.locator("#auth-error").inner_text().lower()
    page.locator("#token-input").fill("wrong-token")
    page.locator("#token-form button[type=submit]").click()
    page.wait_for_selector("#auth-error >> text=Wrong gateway token")
    wait_dot(page, "down")
    shot(page, "06-wrong-token")
    page.locator("#token-input").fill("right-token")
    page.locator("#token-form button[type=submit]").click()
    wait_dot(page, "connected")
    assert page.evaluate("localStorage.getItem('agenthub.token')") == "right-token"


def test_control_pages_and_narrow_screen(browser: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    ctx = browser.new_context(viewport={"width": 375, "height": 740}, bypass_csp=True)
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(gw.http + "/")
        wait_dot(page, "connected")
        box = page.locator("#composer-input")
        box.fill("line one")
        box.press("Shift+Enter")  # a newline, not a send
        box.press_sequentially("line two")
        assert box.input_value() == "line one\nline two"
        assert page.locator(".msg.user").count() == 0
        send(page, "what is 2 plus 3")
        page.wait_for_selector(".msg.assistant[data-state='final']")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shot(page, "07-narrow-chat")
        page.get_by_role("button", name="Nodes").click()
        # node.list is optional: a table when the gateway has it, "Not available" when not.
        page.wait_for_selector("#page-nodes-body table, #page-nodes-body p")
        assert "Could not load" not in page.locator("#page-nodes-body").inner_text()
        page.get_by_role("button", name="Runs").click()
        page.wait_for_selector("#page-runs-body .badge")
        shot(page, "08-narrow-runs")
        page.get_by_role("button", name="Presence").click()
        page.wait_for_selector("#page-presence-body table")
        page.get_by_role("button", name="Health").click()
        page.wait_for_selector("#page-health-body .card")
        assert page.locator("#page-health-body pre").count() == 0  # cards, not raw JSON
        page.get_by_role("button", name="Devices").click()
        page.wait_for_selector("#page-devices-body p, #page-devices-body table")
        assert "Could not load" not in page.locator("#page-devices-body").inner_text()
        page.get_by_role("button", name="Channels").click()
        page.wait_for_selector("#page-channels-body p, #page-channels-body table")
        assert "Could not load" not in page.locator("#page-channels-body").inner_text()
    finally:
        ctx.close()


def test_resumes_a_run_in_flight_after_a_dropped_socket_without_duplicates(page: Any, make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 30}})
    page.goto(gw.http + "/")
    wait_dot(page, "connected")
    page.evaluate(WATCH_RENDERS)
    send(page, "keep going [long]")
    page.wait_for_function("document.querySelector('.msg.assistant .body')?.textContent.split(' ').length > 10")
    page.evaluate("window.agenthub.gw.ws.close()")  # the socket drops; the run goes on server-side
    page.wait_for_selector(".msg.assistant[data-state='final']", timeout=40_000)
    assert dot(page).get_attribute("data-state") == "connected"
    assert page.locator("#banner").is_hidden()
    streamed = page.locator(".msg.assistant .body").last.inner_text()
    renders: list[str] = page.evaluate("window.__renders")
    texts = [r for r in renders if r]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts)), "text never repeats or rewinds"
    page.reload()
    wait_dot(page, "connected")
    page.wait_for_selector(".msg.assistant[data-state='final']")
    assert page.locator(".msg.assistant .body").last.inner_text() == streamed
    assert page.evaluate("window.agenthub.gw.connections") == 1


def test_missed_events_show_a_banner_and_reload_history(page: Any, make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 40}})
    page.goto(gw.http + "/")
    wait_dot(page, "connected")
    send(page, "a long one [long]")
    page.wait_for_function("document.querySelector('.msg.assistant .body')?.textContent.split(' ').length > 5")
    port = gw.port
    gw.kill()  # the run and its retained events die with the gateway: replay answers REPLAY_GAP
    wait_dot(page, "reconnecting")
    gw.start(port)
    page.wait_for_selector("#banner:not([hidden])", timeout=30_000)
    assert (
        "missed" in page.locator("#banner-text").inner_text().lower()
        or "lost" in page.locator("#banner-text").inner_text().lower()
    )
    page.wait_for_selector(".msg.user >> text=a long one [long]")
    # The interrupted run is not left "streaming" after the reload.
    page.wait_for_function("!document.querySelector(\".msg.assistant[data-state='streaming']\")")
    assert page.locator("#abort").is_disabled()
    shot(page, "09-missed-events-banner")
