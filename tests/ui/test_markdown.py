"""Replies as sanitized Markdown, and past turns with their thinking and tool blocks, in Chromium.

The pages bypass the CSP (``conftest``), so what keeps model output inert here is
the sanitizing alone: an injected handler or script would run if it reached the DOM.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import open_ui, send, shot

pytestmark = pytest.mark.browser

# Everything here would set window.__xss if it ever ran.
PAYLOADS = (
    "<img src=x onerror=\"window.__xss='img'\">",
    "<script>window.__xss='script'</script>",
    "[click me](javascript:window.__xss='link')",
    "<a href=\"javascript:window.__xss='a'\">a link</a>",
)
BLOCK_PAYLOAD = """Raw HTML blocks stay text:

<div onmouseover="window.__xss='div'">hover me</div>
<svg onload="window.__xss='svg'"><circle r="5"/></svg>
<iframe src="javascript:window.__xss='iframe'"></iframe>
<style>body { display: none }</style>

![tracker](http://127.0.0.1:9/pixel.png)
"""

MARKDOWN = """Here is **bold**, *italic* and `inline code`:

```python
def add(a, b):
    return a + b  # the sum
```

- one
- two

| a | b |
|---|---|
| 1 | 2 |
"""
CODE = "def add(a, b):\n    return a + b  # the sum"


def post(page: Any, text: str, key: str) -> None:
    """Post ``text`` as an assistant reply to the open session (the ``send`` method: a reply run)."""
    page.evaluate(
        "([text, key]) => window.agenthub.gw.call('send', {sessionKey: window.agenthub.chat.sessionKey,"
        " message: text, idempotencyKey: key})",
        [text, key],
    )


def assert_inert(page: Any) -> None:
    log = page.locator("#messages")
    assert page.evaluate("window.__xss") is None
    for tag in ("script", "img", "iframe", "svg", "style", "[onerror]", "[onload]", "[onmouseover]"):
        assert log.locator(f".msg.assistant .body {tag}").count() == 0, tag
    hrefs = log.locator(".msg.assistant .body a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    assert not any(h and h.strip().lower().startswith("javascript:") for h in hrefs), hrefs


def test_model_output_cannot_inject_script(page: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    open_ui(page, gw)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # A run whose answer contains the payloads: the demo agent quotes the message back.
    send(page, " ".join(PAYLOADS))
    page.wait_for_selector(".msg.assistant[data-state='final']")
    answer = page.locator(".msg.assistant .body").last
    text = answer.inner_text()
    assert "<script>window.__xss='script'</script>" in text and "<img src=x" in text  # shown, as text
    # A reply with raw HTML blocks and a remote image, as an agent might write it.
    post(page, BLOCK_PAYLOAD, "xss-2")
    page.wait_for_function("document.querySelectorAll(\".msg.assistant[data-state='final']\").length === 2")
    last = page.locator(".msg.assistant .body").last
    assert '<div onmouseover="window.__xss=' in last.inner_text()
    assert last.locator("a", has_text="tracker").get_attribute("href") == "http://127.0.0.1:9/pixel.png"
    for link in page.locator("#messages .msg.assistant .body a").all():
        link.hover()
    page.locator("#messages .msg.assistant .body").last.hover()
    assert_inert(page)
    # The same transcript loaded from the gateway (the history path renders it again).
    page.reload()
    page.wait_for_function("document.querySelectorAll(\".msg.assistant[data-state='final']\").length === 2")
    assert_inert(page)
    assert dialogs == [] and page.page_errors == []
    shot(page, "10-sanitized")


def test_markdown_code_blocks_are_highlighted_and_copied(new_page: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    open_ui(page, gw)
    post(page, MARKDOWN, "md-1")
    page.wait_for_selector(".msg.assistant[data-state='final'] .code-block")
    body = page.locator(".msg.assistant .body").last
    assert body.locator("strong").inner_text() == "bold" and body.locator("em").inner_text() == "italic"
    assert body.locator("li").all_inner_texts() == ["one", "two"]
    assert body.locator("table td").all_inner_texts() == ["1", "2"]
    block = body.locator(".code-block")
    assert block.locator(".code-lang").inner_text() == "python"
    assert block.locator("code.language-python .hljs-keyword").first.inner_text() == "def"
    assert block.locator(".hljs-comment").inner_text() == "# the sum"
    assert block.locator("code").inner_text() == CODE
    copy = block.get_by_role("button", name="Copy code (python)")
    copy.click()
    page.wait_for_selector(".code-block button[data-copied='true']")
    assert copy.inner_text() == "Copied"
    assert page.evaluate("navigator.clipboard.readText()") == CODE
    shot(page, "11-markdown")


def test_past_turns_keep_their_thinking_and_tool_blocks(page: Any, make_gateway: Any) -> None:
    gw = make_gateway()
    open_ui(page, gw)
    send(page, "what is 12 times 7?")
    page.wait_for_selector(".msg.assistant[data-state='final']")
    live = page.locator(".msg.assistant").last.inner_text()
    gw.restart()  # from the stored transcript, not the page's memory or the gateway's
    page.reload()
    page.wait_for_selector(".msg.assistant[data-state='final']")
    turn = page.locator(".msg.assistant").last
    thinking = turn.locator("details.thinking")
    thinking.locator("summary").click()
    assert "calculator" in thinking.inner_text()
    tool = turn.locator("details.tool[data-tool='calculator']")
    assert tool.locator(".tool-state").inner_text() == "done"
    tool.locator("summary").click()
    assert "12 * 7" in tool.locator(".tool-args").inner_text()
    assert "84" in tool.locator(".tool-result").inner_text()
    assert "84" in turn.locator(".body").inner_text()
    assert turn.locator(".body").inner_text() in live
    shot(page, "12-past-turn-blocks")
