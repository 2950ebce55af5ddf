"""Keyboard use of the Control UI in Chromium: shortcuts, the help overlay, the session picker, focus."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import open_ui, send, shot

pytestmark = pytest.mark.browser

FOCUS_STYLE = "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }"


def active(page: Any) -> str:
    return str(page.evaluate("document.activeElement?.id || document.activeElement?.tagName"))


def test_shortcuts_help_and_visible_focus(page: Any, make_gateway: Any) -> None:
    gw = make_gateway(config={"demo": {"word_delay_ms": 60}})
    open_ui(page, gw)
    page.locator("body").click(position={"x": 5, "y": 400})
    # Tab from the top: the skip link, then the controls, each with a visible focus ring.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.evaluate(FOCUS_STYLE) == ["solid", "3px"]
    for _ in range(3):
        page.keyboard.press("Tab")
        assert page.evaluate(FOCUS_STYLE) == ["solid", "3px"], active(page)

    page.locator("#page-chat").click(position={"x": 5, "y": 5})
    page.keyboard.press("/")
    assert active(page) == "composer-input"
    page.keyboard.type("no shortcut fires while typing: g h ?")
    assert page.locator("#page-chat").is_visible() and not page.locator("#help").is_visible()
    page.locator("#composer-input").fill("")

    page.locator("#page-chat").click(position={"x": 5, "y": 5})
    page.keyboard.press("?")
    help_ = page.locator("#help")
    help_.wait_for()
    rows = help_.locator("tbody tr").all_inner_texts()
    assert any("Ctrl + K" in r and "session" in r for r in rows)
    assert any(r.startswith("Esc") and "Stop" in r for r in rows)
    assert any("g then h" in r and "Health" in r for r in rows)
    shot(page, "40-help-overlay", full_page=False)
    page.keyboard.press("Escape")
    help_.wait_for(state="hidden")

    page.keyboard.press("g")
    page.keyboard.press("h")
    page.wait_for_selector("#page-health:not([hidden])")
    assert page.evaluate("location.hash") == "#health"
    assert active(page) == "h-health"  # focus moves to the page's heading
    page.keyboard.press("g")
    page.keyboard.press("c")
    page.wait_for_selector("#page-chat:not([hidden])")

    # Esc stops the running reply, from the message box too.
    send(page, "a long story [long]")
    page.wait_for_function("document.querySelector('.msg.assistant .body')?.textContent.split(' ').length > 5")
    page.keyboard.press("Escape")
    page.wait_for_selector(".msg.assistant[data-state='aborted']")
    assert page.page_errors == []


def test_session_picker(page: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    open_ui(page, gw)
    send(page, "first session message")
    page.wait_for_selector(".msg.assistant[data-state='final']")
    page.locator("#composer-input").click()
    page.keyboard.press("Control+k")  # works while typing, too
    picker = page.locator("#picker")
    picker.wait_for()
    assert active(page) == "picker-filter"
    assert picker.locator("button.session.current").inner_text() == "agent:main:main"
    page.keyboard.type("kbd-session")
    assert picker.locator("button.session.new").inner_text() == 'Open new session "kbd-session"'
    page.keyboard.press("Enter")
    picker.wait_for(state="hidden")
    page.wait_for_function("document.getElementById('session-picker').value === 'agent:main:kbd-session'")
    assert page.locator(".msg").count() == 0
    assert active(page) == "composer-input"
    send(page, "second session message")
    page.wait_for_selector(".msg.assistant[data-state='final']")

    page.keyboard.press("Control+k")
    picker.wait_for()
    page.keyboard.type("main:main")
    assert picker.locator("button.session").all_inner_texts() == ["agent:main:main", 'Open new session "main:main"']
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.textContent") == "agent:main:main"
    shot(page, "41-session-picker", full_page=False)
    page.keyboard.press("Enter")
    picker.wait_for(state="hidden")
    page.locator(".msg.user", has_text="first session message").wait_for()
    # Esc closes the picker without switching.
    page.keyboard.press("Control+k")
    picker.wait_for()
    page.keyboard.press("Escape")
    picker.wait_for(state="hidden")
    assert page.evaluate("window.agenthub.chat.sessionKey") == "agent:main:main"
