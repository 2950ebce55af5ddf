"""What the Control UI's browser tests share: Debian's Chromium, pages, axe-core, and helpers.

The browser is Debian's Chromium driven by Playwright's sync API (never a
Playwright-downloaded browser). Pages bypass the CSP because the tests evaluate
JavaScript; ``test_ui_browser.test_serves_*`` checks the page under its real CSP.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import playwright.sync_api as playwright_sync
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AGENTHUB_CHROMIUM", "/usr/bin/chromium")
OUT = ROOT / "test-output" / "ui"
AXE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}

T = TypeVar("T")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):  # a failure, not a skip: `make test` installs it
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make {CHROMIUM}` (part of `make test`)", pytrace=False)
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(viewport=..., color_scheme=...)``: a fresh context's page; all closed at teardown."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] | None = None, color_scheme: str = "light", **kw: Any) -> Any:
        ctx = browser.new_context(viewport=viewport or DESKTOP, color_scheme=color_scheme, bypass_csp=True, **kw)
        contexts.append(ctx)
        pg = ctx.new_page()
        pg.set_default_timeout(20_000)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.page_errors = errors
        return pg

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page(viewport={"width": 1100, "height": 800})


def shot(page: Any, name: str, full_page: bool = True) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)


def wait_dot(page: Any, state: str, timeout: float = 20_000) -> None:
    page.wait_for_selector(f"#status-dot[data-state='{state}']", timeout=timeout)


def send(page: Any, text: str) -> None:
    box = page.locator("#composer-input")
    box.fill(text)
    box.press("Enter")


def open_ui(page: Any, gw: Any, hash_: str = "", token: str | None = None) -> None:
    """Load the UI (optionally with a saved token and on a page) and wait until it is connected."""
    if token is not None:
        page.goto(gw.http + "/healthz")  # same origin, to write localStorage before the app runs
        page.evaluate("t => localStorage.setItem('agenthub.token', t)", token)
    page.goto(gw.http + "/" + (f"#{hash_}" if hash_ else ""))
    wait_dot(page, "connected")


def go(page: Any, name: str) -> None:
    """Open a page from the navigation, as a user does."""
    page.locator(f"nav [data-page='{name}']").click()
    page.wait_for_selector(f"#page-{name}:not([hidden])")


def axe(page: Any, context: str = "document") -> list[dict[str, Any]]:
    """Serious and critical accessibility violations axe-core finds on the page as it is now."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `make ui-deps` (part of `make test`)", pytrace=False)
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        """async (ctx) => {
            const r = await axe.run(ctx === 'document' ? document : document.querySelector(ctx),
                                    {resultTypes: ['violations']});
            return {violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}))};
        }""",
        context,
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def in_thread(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, timeout: float = 60) -> T:
    """Run an async helper to completion on its own loop (Playwright's sync API holds this thread's)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = asyncio.run(fn(*args))
        except BaseException as exc:  # handed to the caller
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"{fn.__name__} did not finish in {timeout} s")
    if "error" in out:
        raise out["error"]
    value: T = out["value"]
    return value
