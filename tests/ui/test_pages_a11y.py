"""Every page of the Control UI, with data on it, checked by axe-core in both colour schemes at
desktop (1280x800) and phone (375 px) sizes: no serious or critical violation, nothing wider
than the screen. The same tour writes the README's screenshots.

Screenshots go to ``test-output/ui/pages/``; with ``AGENTHUB_SCREENSHOTS_DIR`` set (``make
screenshots`` sets it to ``docs/screenshots``) they go there, as ``<page>-desktop.png`` and
``<page>-mobile.png`` (light), plus ``<page>-desktop-dark.png`` for a few pages.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from agenthub.client import DeviceIdentity

from .conftest import DESKTOP, PHONE, ROOT, axe, go, in_thread, open_ui, send
from .test_control_pages import _ask_pairing, call, node_host

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SHOTS = Path(os.environ.get("AGENTHUB_SCREENSHOTS_DIR") or ROOT / "test-output" / "ui" / "pages")
DARK_SHOTS = {"chat", "health", "settings"}

MARKDOWN = """Here is a **Markdown** answer with code:

```python
def greet(name: str) -> str:
    return f"hello {name}"  # a greeting
```

| check | result |
|---|---|
| sanitized | yes |
"""

# What each page shows once loaded (the tour waits for it before checking).
READY = {
    "chat": ".msg.assistant[data-state='final']",
    "runs": "#page-runs-body tbody tr",
    "presence": "#page-presence-body tbody tr",
    "health": "#page-health-body .card",
    "nodes": "#page-nodes-body li.node form",
    "devices": "#page-devices-body tbody tr",
    "channels": "#page-channels-body tbody tr",
    "langbot": ".lb-reply[data-final='true']",
    "settings": "#settings-form",
}


def populate(page: Any) -> None:
    """Chat turns (a tool call, Markdown), a run, and a LangBot exchange, from the page itself."""
    send(page, "what is 12 times 7?")
    page.wait_for_selector(".msg.assistant[data-state='final']")
    page.evaluate(
        "t => window.agenthub.gw.call('send', {sessionKey: window.agenthub.chat.sessionKey, message: t,"
        " idempotencyKey: 'tour-md'})",
        MARKDOWN,
    )
    page.wait_for_function("document.querySelectorAll(\".msg.assistant[data-state='final']\").length === 2")
    page.locator(".msg.assistant details.tool summary").first.click()


def langbot_exchange(page: Any) -> None:
    page.locator("#lb-connect").click()
    page.wait_for_selector(".lb-status .dot[data-state='connected']")
    page.locator("#lb-input").fill("hello pipeline")
    page.locator("#lb-input").press("Enter")
    page.wait_for_selector(".lb-reply[data-final='true']")


def tour(page: Any, label: str, shots: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Visit every page; axe each one (and the two overlays); returns the violations per page."""
    found: dict[str, list[dict[str, Any]]] = {}
    width = page.viewport_size["width"]
    for name, ready in READY.items():
        go(page, name)
        if name == "langbot" and page.locator(".lb-reply").count() == 0:
            langbot_exchange(page)
        if name == "runs" and page.locator("#page-runs-body tbody tr").count() == 0:
            # The table lists runs seen since the page opened: one from elsewhere, as a user would see it.
            page.evaluate(
                "() => window.agenthub.gw.call('chat.send', {sessionKey: 'elsewhere', message: 'what time is it?',"
                " idempotencyKey: crypto.randomUUID()})"
            )
            page.locator("#page-runs-body .badge.ok").first.wait_for()
        if name == "nodes" and page.locator("#page-nodes-body .invoke-payload").count() == 0:
            form = page.locator("#page-nodes-body form.invoke-form").first
            form.wait_for()
            form.get_by_role("button", name="Invoke").click()
            form.locator(".invoke-payload").wait_for()
        page.locator(ready).first.wait_for()
        page.wait_for_timeout(300)  # let a live re-render settle before checking
        found[f"{label}:{name}"] = axe(page)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{label}:{name} is {overflow} px wide on a {width} px screen"
        if name in shots:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.evaluate("document.querySelectorAll('#toasts .toast').forEach(t => t.remove())")
            page.screenshot(path=str(SHOTS / f"{name}-{shots[name]}.png"))
    go(page, "chat")
    page.keyboard.press("?")
    page.locator("#help").wait_for()
    found[f"{label}:help"] = axe(page)
    page.keyboard.press("Escape")
    page.keyboard.press("Control+k")
    page.locator("#picker").wait_for()
    found[f"{label}:picker"] = axe(page)
    page.keyboard.press("Escape")
    return found


def test_every_page_passes_axe_in_both_schemes_and_sizes(new_page: Any, make_gateway: Any, tmp_path: Path) -> None:
    gw = make_gateway("--require-pairing")
    pending = in_thread(_ask_pairing, gw.url, DeviceIdentity.generate())
    assert pending["error"]["details"]["code"] == "PAIRING_REQUIRED"
    with node_host(gw, tmp_path / "node", "build-box"):
        waiting: list[dict[str, Any]] = []
        for _ in range(100):  # the node asks to be paired; the operator approves it
            waiting = call(gw, "node.pair.list")["pending"]
            if waiting:
                break
            time.sleep(0.1)
        call(gw, "node.pair.approve", {"requestId": waiting[0]["requestId"]})
        violations: dict[str, list[dict[str, Any]]] = {}
        first = True
        for scheme in ("light", "dark"):
            for size, viewport in (("desktop", DESKTOP), ("mobile", PHONE)):
                page = new_page(viewport=viewport, color_scheme=scheme)
                open_ui(page, gw)
                if first:
                    populate(page)
                    first = False
                else:
                    page.wait_for_selector(".msg.assistant[data-state='final']")
                    page.locator(".msg.assistant details.tool summary").first.click()
                if scheme == "light":
                    shots = dict.fromkeys(READY, size)
                elif size == "desktop":
                    shots = dict.fromkeys(DARK_SHOTS, "desktop-dark")
                else:
                    shots = {}
                violations.update(tour(page, f"{scheme}/{size}", shots))
                assert page.page_errors == []
                page.context.close()
    bad = {where: v for where, v in violations.items() if v}
    assert bad == {}, bad
    assert len(violations) == 4 * (len(READY) + 2)
